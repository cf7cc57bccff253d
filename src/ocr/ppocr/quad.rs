//! A detected text line as a rotated rectangle: photos of receipts are
//! rarely square to the camera, and an axis-aligned box around a slanted
//! line holds parts of its neighbours. The rectangle follows the principal
//! axis of the region's pixels; crops are sampled along it, upright.

use image::GrayImage;

use crate::ocr::page::BBox;

/// Lines steeper than this (radians, ~30°) are taken as level: a short
/// region's principal axis says little about the text direction.
const MAX_SLANT: f32 = 0.52;

/// A rotated rectangle: centre, extent along and across its axis, and the
/// axis angle (radians, 0 = level, positive = descending to the right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    pub cx: f32,
    pub cy: f32,
    pub length: f32,
    pub thickness: f32,
    pub angle: f32,
}

impl TextBox {
    /// The tightest rectangle along the pixels' principal axis.
    pub fn from_pixels(pixels: &[(f32, f32)]) -> TextBox {
        let n = pixels.len().max(1) as f32;
        let mx = pixels.iter().map(|p| p.0).sum::<f32>() / n;
        let my = pixels.iter().map(|p| p.1).sum::<f32>() / n;
        let moment = |f: &dyn Fn(f32, f32) -> f32| {
            pixels.iter().map(|p| f(p.0 - mx, p.1 - my)).sum::<f32>() / n
        };
        let (xx, yy, xy) = (
            moment(&|x, _| x * x),
            moment(&|_, y| y * y),
            moment(&|x, y| x * y),
        );
        let mut angle = 0.5 * (2.0 * xy).atan2(xx - yy);
        if angle.abs() > MAX_SLANT {
            angle = 0.0;
        }
        let (cos, sin) = (angle.cos(), angle.sin());
        let along = |p: &(f32, f32)| (p.0 - mx) * cos + (p.1 - my) * sin;
        let across = |p: &(f32, f32)| -(p.0 - mx) * sin + (p.1 - my) * cos;
        let (u0, u1) = extent(pixels.iter().map(along));
        let (v0, v1) = extent(pixels.iter().map(across));
        let (u, v) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
        TextBox {
            cx: mx + u * cos - v * sin,
            cy: my + u * sin + v * cos,
            length: u1 - u0 + 1.0,
            thickness: v1 - v0 + 1.0,
            angle,
        }
    }

    /// Grown by area × ratio / perimeter on every side (DB predicts shrunk
    /// text kernels).
    pub fn unclipped(self, ratio: f32) -> TextBox {
        let (l, t) = (self.length, self.thickness);
        let grow = l * t * ratio / (2.0 * (l + t));
        TextBox {
            length: l + 2.0 * grow,
            thickness: t + 2.0 * grow,
            ..self
        }
    }

    /// The same rectangle after scaling x by `sx` and y by `sy`.
    pub fn scaled(self, sx: f32, sy: f32) -> TextBox {
        let (cos, sin) = (self.angle.cos(), self.angle.sin());
        TextBox {
            cx: (self.cx + 0.5) * sx - 0.5,
            cy: (self.cy + 0.5) * sy - 0.5,
            length: self.length * (sx * cos).hypot(sy * sin),
            thickness: self.thickness * (sx * sin).hypot(sy * cos),
            angle: (sy * sin).atan2(sx * cos),
        }
    }

    /// The point `s` pixels along the axis from the left end, `t` across
    /// from the top edge.
    pub fn point(&self, s: f32, t: f32) -> (f32, f32) {
        let (cos, sin) = (self.angle.cos(), self.angle.sin());
        let (u, v) = (s - self.length / 2.0, t - self.thickness / 2.0);
        (self.cx + u * cos - v * sin, self.cy + u * sin + v * cos)
    }

    /// The axis-aligned box around it, within a `width` × `height` image.
    /// Rectangle coordinates count pixel centres (pixel `i` is at `i`); a
    /// box counts pixel edges, hence the half pixel.
    pub fn bbox(&self, width: u32, height: u32) -> BBox {
        let corners = [
            self.point(0.0, 0.0),
            self.point(self.length, 0.0),
            self.point(0.0, self.thickness),
            self.point(self.length, self.thickness),
        ];
        let (x0, x1) = extent(corners.iter().map(|c| c.0));
        let (y0, y1) = extent(corners.iter().map(|c| c.1));
        let edge = |v: f32, limit: u32| (v + 0.5).round().clamp(0.0, limit as f32) as u32;
        let (left, top) = (edge(x0, width), edge(y0, height));
        let (right, bottom) = (edge(x1, width), edge(y1, height));
        BBox::new(
            left,
            top,
            right.saturating_sub(left),
            bottom.saturating_sub(top),
        )
    }

    /// The rectangle's content, upright, `out_width` × `out_height` pixels
    /// (bilinear; outside the image reads as white paper).
    pub fn sample(&self, image: &GrayImage, out_width: u32, out_height: u32) -> GrayImage {
        let (sx, sy) = (
            self.length / out_width as f32,
            self.thickness / out_height as f32,
        );
        GrayImage::from_fn(out_width, out_height, |x, y| {
            let (px, py) = self.point((x as f32 + 0.5) * sx, (y as f32 + 0.5) * sy);
            image::Luma([bilinear(image, px, py)])
        })
    }
}

fn extent(values: impl Iterator<Item = f32>) -> (f32, f32) {
    values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

fn bilinear(image: &GrayImage, x: f32, y: f32) -> u8 {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let at = |xi: i64, yi: i64| -> f32 {
        match xi >= 0 && yi >= 0 && xi < w && yi < h {
            true => image.get_pixel(xi as u32, yi as u32).0[0] as f32,
            false => 255.0,
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (xi, yi) = (x0 as i64, y0 as i64);
    let top = at(xi, yi) * (1.0 - fx) + at(xi + 1, yi) * fx;
    let bottom = at(xi, yi + 1) * (1.0 - fx) + at(xi + 1, yi + 1) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slanted_band_of_pixels_gives_a_rectangle_along_it() {
        // A band 40 long and 4 thick, descending 1 pixel every 10.
        let pixels: Vec<(f32, f32)> = (0..40)
            .flat_map(|x| (0..4).map(move |t| (x as f32, x as f32 / 10.0 + t as f32)))
            .collect();
        let text_box = TextBox::from_pixels(&pixels);
        assert!(
            (text_box.angle - 0.1f32.atan()).abs() < 0.02,
            "{text_box:?}"
        );
        assert!((text_box.length - 40.0).abs() < 1.5, "{text_box:?}");
        assert!(text_box.thickness < 5.0, "{text_box:?}");
    }

    #[test]
    fn a_level_box_maps_to_its_axis_aligned_box() {
        let text_box = TextBox {
            cx: 20.0,
            cy: 10.0,
            length: 20.0,
            thickness: 6.0,
            angle: 0.0,
        };
        assert_eq!(text_box.bbox(100, 100), BBox::new(11, 8, 20, 6));
        let grown = text_box.unclipped(1.6).scaled(2.0, 2.0);
        // 20 × 6 grows by 20·6·1.6 / 52 ≈ 3.7 a side, then doubles.
        assert_eq!(grown.bbox(1000, 1000), BBox::new(14, 8, 54, 26));
    }
}
