//! Cutting each detected box out of the image and scaling it to the
//! recogniser's input height, then packing crops of similar shape into
//! batches (padding wastes less work when widths are alike).

use image::GrayImage;
use image::imageops::{self, FilterType};

use crate::ocr::page::BBox;

/// The recogniser's input height.
pub const HEIGHT: u32 = 48;
/// The narrowest batch width PaddleOCR uses (ratio 320 / 48).
const MIN_WIDTH: u32 = 320;
/// The widest crop: longer lines are squeezed rather than grown without end.
const MAX_WIDTH: u32 = 48 * 40;

/// One box cut out and scaled to `HEIGHT`.
pub struct Crop {
    /// Index of the box it came from.
    pub index: usize,
    pub image: GrayImage,
}

/// Cut `bbox` out of `image` and scale it to `HEIGHT` pixels high.
pub fn crop(image: &GrayImage, bbox: &BBox, index: usize) -> Crop {
    let view = imageops::crop_imm(image, bbox.x, bbox.y, bbox.width.max(1), bbox.height.max(1));
    let ratio = bbox.width.max(1) as f32 / bbox.height.max(1) as f32;
    let width = ((HEIGHT as f32 * ratio).ceil() as u32).clamp(1, MAX_WIDTH);
    let image = imageops::resize(&view.to_image(), width, HEIGHT, FilterType::Triangle);
    Crop { index, image }
}

/// A batch of crops padded to one width, as the recogniser's input.
pub struct Batch {
    pub indices: Vec<usize>,
    /// The scaled width of each crop, before padding.
    pub widths: Vec<u32>,
    pub width: u32,
    /// NCHW, three identical normalised planes, padding 0.
    pub tensor: Vec<f32>,
}

/// Group crops, narrowest first, into batches of at most `size`.
pub fn batches(mut crops: Vec<Crop>, size: usize) -> Vec<Batch> {
    crops.sort_by_key(|c| c.image.width());
    let mut out = Vec::new();
    let mut rest = crops.as_slice();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(batch(chunk));
        rest = tail;
    }
    out
}

fn batch(crops: &[Crop]) -> Batch {
    let width = crops
        .iter()
        .map(|c| c.image.width())
        .max()
        .unwrap_or(0)
        .max(MIN_WIDTH);
    let plane = (HEIGHT * width) as usize;
    let mut tensor = vec![0.0f32; crops.len() * 3 * plane];
    for (n, crop) in crops.iter().enumerate() {
        for channel in 0..3 {
            let start = (n * 3 + channel) * plane;
            write_plane(&crop.image, width, &mut tensor[start..start + plane]);
        }
    }
    Batch {
        indices: crops.iter().map(|c| c.index).collect(),
        widths: crops.iter().map(|c| c.image.width()).collect(),
        width,
        tensor,
    }
}

/// Write `image` normalised to −1…1 into the left of a `width`-wide plane.
fn write_plane(image: &GrayImage, width: u32, plane: &mut [f32]) {
    for (y, row) in image.rows().enumerate() {
        let start = y * width as usize;
        for (x, pixel) in row.enumerate() {
            plane[start + x] = pixel.0[0] as f32 / 127.5 - 1.0;
        }
    }
}
