//! Cutting each detected rectangle out of the image, upright, at the
//! recogniser's input height, then packing crops of similar shape into
//! batches (padding wastes less work when widths are alike).

use image::GrayImage;

use super::quad::TextBox;

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

/// Cut `text_box` out of `image`, upright, `HEIGHT` pixels high.
pub fn crop(image: &GrayImage, text_box: &TextBox, index: usize) -> Crop {
    let ratio = text_box.length / text_box.thickness.max(1.0);
    let width = ((HEIGHT as f32 * ratio).ceil() as u32).clamp(1, MAX_WIDTH);
    let image = text_box.sample(image, width, HEIGHT);
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
