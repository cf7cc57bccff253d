//! Text detection (PP-OCR's DB model): the image, scaled so its longer side
//! fits a limit, becomes a map of text probability; connected regions above
//! a threshold become rotated rectangles, grown back ("unclipped") to the
//! full text height, in original image pixels.

use image::GrayImage;
use ort::session::Session;
use ort::value::Tensor;

use super::PpOcrError;
use super::quad::TextBox;

/// DB post-processing settings (PaddleOCR's defaults for PP-OCRv4).
#[derive(Debug, Clone, Copy)]
pub struct DbSettings {
    /// A map pixel is text when its probability exceeds this.
    pub threshold: f32,
    /// A region is kept when its pixels' mean probability exceeds this.
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
) -> Result<Vec<TextBox>, PpOcrError> {
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
        .map(|b| b.unclipped(settings.unclip_ratio).scaled(scale.0, scale.1))
        .filter(|b| b.length >= 4.0 && b.thickness >= 4.0)
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
/// PaddleOCR does) whose pixels' mean probability is high enough, as
/// rectangles in map pixels.
pub fn find_regions(map: &ProbabilityMap, settings: DbSettings) -> Vec<TextBox> {
    let mask = dilate(&threshold(map, settings.threshold), map.width, map.height);
    let mut seen = vec![false; mask.len()];
    let mut boxes = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || seen[start] {
            continue;
        }
        let pixels = flood(&mask, &mut seen, map.width, start);
        let score = pixels.iter().map(|&i| map.values[i]).sum::<f32>() / pixels.len() as f32;
        if score <= settings.box_threshold {
            continue;
        }
        let points: Vec<(f32, f32)> = (pixels.iter())
            .map(|&i| ((i % map.width) as f32, (i / map.width) as f32))
            .collect();
        let text_box = TextBox::from_pixels(&points);
        if text_box.length.min(text_box.thickness) >= 3.0 {
            boxes.push(text_box);
        }
    }
    boxes
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

/// The pixels of the 8-connected region holding `start`, marked seen.
fn flood(mask: &[bool], seen: &mut [bool], width: usize, start: usize) -> Vec<usize> {
    let height = mask.len() / width;
    let mut pixels = Vec::new();
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(i) = stack.pop() {
        pixels.push(i);
        for (nx, ny) in neighbours(i % width, i / width, width, height) {
            let n = ny * width + nx;
            if mask[n] && !seen[n] {
                seen[n] = true;
                stack.push(n);
            }
        }
    }
    pixels
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::page::BBox;

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
    fn a_strong_blob_becomes_one_box_and_a_faint_one_is_dropped() {
        let values = two_blobs();
        let map = ProbabilityMap {
            width: 12,
            height: 8,
            values: &values,
        };
        let boxes = find_regions(&map, DbSettings::default());
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        // The 2×2 dilation grows the 5×3 blob by one pixel left and up.
        let found = boxes[0];
        assert_eq!(
            (found.length, found.thickness, found.angle),
            (6.0, 4.0, 0.0)
        );
        assert_eq!((found.cx, found.cy), (2.5, 1.5));
        assert_eq!(found.bbox(12, 8), BBox::new(0, 0, 6, 4));
    }

    #[test]
    fn input_sides_are_multiples_of_32_within_the_limit() {
        assert_eq!(input_size(1000, 2000, 960), (480, 960));
        assert_eq!(input_size(100, 50, 960), (96, 64));
    }
}
