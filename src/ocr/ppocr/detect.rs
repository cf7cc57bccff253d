//! Text detection (PP-OCR's DB model): the image, scaled so its longer side
//! fits a limit, becomes a map of text probability; regions above a
//! threshold become boxes, grown back ("unclipped") to the full text
//! height, in original image pixels.

use image::GrayImage;
use ort::session::Session;
use ort::value::Tensor;

use super::PpOcrError;
use crate::ocr::page::BBox;

/// DB post-processing settings (PaddleOCR's defaults for PP-OCRv4).
#[derive(Debug, Clone, Copy)]
pub struct DbSettings {
    /// A map pixel is text when its probability exceeds this.
    pub threshold: f32,
    /// A region is kept when its mean probability exceeds this.
    pub box_threshold: f32,
    /// How far a region is grown: area × ratio / perimeter on each side.
    pub unclip_ratio: f32,
}

impl Default for DbSettings {
    fn default() -> Self {
        Self {
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
        }
    }
}

/// A region of the probability map, in map pixels (inclusive bounds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: usize,
    pub top: usize,
    pub right: usize,
    pub bottom: usize,
}

impl Region {
    fn width(&self) -> usize {
        self.right - self.left + 1
    }

    fn height(&self) -> usize {
        self.bottom - self.top + 1
    }
}

/// A probability map, row-major.
pub struct ProbabilityMap<'a> {
    pub width: usize,
    pub height: usize,
    pub values: &'a [f32],
}

/// Run the detector on `image` scaled to at most `max_side` pixels.
pub fn detect(
    session: &mut Session,
    image: &GrayImage,
    max_side: u32,
    settings: DbSettings,
) -> Result<Vec<BBox>, PpOcrError> {
    let (width, height) = input_size(image.width(), image.height(), max_side);
    let resized = image::imageops::resize(image, width, height, image::imageops::Triangle);
    let input = Tensor::from_array((
        [1usize, 3, height as usize, width as usize],
        planes(&resized),
    ))
    .map_err(PpOcrError::Inference)?;
    let outputs = session
        .run(ort::inputs![input])
        .map_err(PpOcrError::Inference)?;
    let (_, values) = outputs[0]
        .try_extract_tensor::<f32>()
        .map_err(PpOcrError::Inference)?;
    let map = ProbabilityMap {
        width: width as usize,
        height: height as usize,
        values,
    };
    let scale = (
        image.width() as f32 / width as f32,
        image.height() as f32 / height as f32,
    );
    let boxes = find_regions(&map, settings)
        .into_iter()
        .map(|r| unclip(r, settings.unclip_ratio, scale, image.dimensions()))
        .filter(|b| b.width >= 4 && b.height >= 4)
        .collect();
    Ok(boxes)
}

/// The detector's input size: the longer side at most `max_side`, each side
/// a multiple of 32 (the network downsamples by 32).
pub fn input_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let ratio = (max_side as f32 / width.max(height) as f32).min(1.0);
    let round = |side: u32| (((side as f32 * ratio) / 32.0).round() as u32).max(1) * 32;
    (round(width), round(height))
}

/// Grey pixels as three identical normalised planes (CHW, values −1 to 1).
pub fn planes(image: &GrayImage) -> Vec<f32> {
    let plane: Vec<f32> = image
        .as_raw()
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    let mut out = Vec::with_capacity(plane.len() * 3);
    for _ in 0..3 {
        out.extend_from_slice(&plane);
    }
    out
}

/// Connected text regions of `map` (8-connected, after a 2×2 dilation as
/// PaddleOCR does) whose mean probability over their box is high enough.
pub fn find_regions(map: &ProbabilityMap, settings: DbSettings) -> Vec<Region> {
    let mask = dilate(&threshold(map, settings.threshold), map.width, map.height);
    let mut seen = vec![false; mask.len()];
    let mut regions = Vec::new();
    for start in 0..mask.len() {
        if mask[start] && !seen[start] {
            let region = flood(&mask, &mut seen, map.width, start);
            if region.width().min(region.height()) >= 3
                && mean_in(map, &region) > settings.box_threshold
            {
                regions.push(region);
            }
        }
    }
    regions
}

fn threshold(map: &ProbabilityMap, level: f32) -> Vec<bool> {
    map.values.iter().map(|&p| p > level).collect()
}

/// A pixel is set when it or its right, lower or lower-right neighbour is.
fn dilate(mask: &[bool], width: usize, height: usize) -> Vec<bool> {
    let at = |x: usize, y: usize| x < width && y < height && mask[y * width + x];
    (0..mask.len())
        .map(|i| {
            let (x, y) = (i % width, i / width);
            at(x, y) || at(x + 1, y) || at(x, y + 1) || at(x + 1, y + 1)
        })
        .collect()
}

/// The bounds of the 8-connected region holding `start`, marking it seen.
fn flood(mask: &[bool], seen: &mut [bool], width: usize, start: usize) -> Region {
    let height = mask.len() / width;
    let mut region = Region {
        left: start % width,
        top: start / width,
        right: start % width,
        bottom: start / width,
    };
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(i) = stack.pop() {
        let (x, y) = (i % width, i / width);
        region.left = region.left.min(x);
        region.right = region.right.max(x);
        region.top = region.top.min(y);
        region.bottom = region.bottom.max(y);
        for (nx, ny) in neighbours(x, y, width, height) {
            let n = ny * width + nx;
            if mask[n] && !seen[n] {
                seen[n] = true;
                stack.push(n);
            }
        }
    }
    region
}

fn neighbours(
    x: usize,
    y: usize,
    width: usize,
    height: usize,
) -> impl Iterator<Item = (usize, usize)> {
    let xs = x.saturating_sub(1)..=(x + 1).min(width - 1);
    xs.flat_map(move |nx| {
        let ys = y.saturating_sub(1)..=(y + 1).min(height - 1);
        ys.map(move |ny| (nx, ny))
    })
    .filter(move |&(nx, ny)| (nx, ny) != (x, y))
}

/// The mean probability over a region's box ("fast" scoring).
fn mean_in(map: &ProbabilityMap, region: &Region) -> f32 {
    let mut sum = 0.0;
    for y in region.top..=region.bottom {
        let row = &map.values[y * map.width..(y + 1) * map.width];
        sum += row[region.left..=region.right].iter().sum::<f32>();
    }
    sum / (region.width() * region.height()) as f32
}

/// Grow a region by area × ratio / perimeter on every side (the DB model
/// predicts shrunk text kernels) and map it to image pixels.
pub fn unclip(region: Region, ratio: f32, scale: (f32, f32), image: (u32, u32)) -> BBox {
    let (w, h) = (region.width() as f32, region.height() as f32);
    let grow = w * h * ratio / (2.0 * (w + h));
    let left = ((region.left as f32 - grow) * scale.0).max(0.0);
    let top = ((region.top as f32 - grow) * scale.1).max(0.0);
    let right = ((region.right as f32 + 1.0 + grow) * scale.0).min(image.0 as f32);
    let bottom = ((region.bottom as f32 + 1.0 + grow) * scale.1).min(image.1 as f32);
    let (x, y) = (left as u32, top as u32);
    BBox::new(
        x,
        y,
        (right as u32).saturating_sub(x),
        (bottom as u32).saturating_sub(y),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12×8 map with two blobs: a strong 5×3 one and a faint 3×3 one.
    fn two_blobs() -> Vec<f32> {
        let mut values = vec![0.0; 12 * 8];
        for y in 1..4 {
            for x in 1..6 {
                values[y * 12 + x] = 0.9;
            }
        }
        for y in 5..8 {
            for x in 8..11 {
                values[y * 12 + x] = 0.35;
            }
        }
        values
    }

    #[test]
    fn a_strong_blob_becomes_one_region_and_a_faint_one_is_dropped() {
        let values = two_blobs();
        let map = ProbabilityMap {
            width: 12,
            height: 8,
            values: &values,
        };
        let regions = find_regions(&map, DbSettings::default());
        // The 2×2 dilation grows the blob by one pixel right and down.
        let expected = Region {
            left: 0,
            top: 0,
            right: 5,
            bottom: 3,
        };
        assert_eq!(regions, vec![expected]);
    }

    #[test]
    fn unclipping_grows_a_region_and_maps_it_to_image_pixels() {
        let region = Region {
            left: 10,
            top: 10,
            right: 29,
            bottom: 14,
        };
        // 20 × 5: grows by 20·5·1.6 / 50 = 3.2 on each side; image is 2× map.
        let bbox = unclip(region, 1.6, (2.0, 2.0), (1000, 1000));
        assert_eq!(bbox, BBox::new(13, 13, 53, 23));
    }

    #[test]
    fn input_sides_are_multiples_of_32_within_the_limit() {
        assert_eq!(input_size(1000, 2000, 960), (480, 960));
        assert_eq!(input_size(100, 50, 960), (96, 64));
    }
}
