//! Cutting each detected rectangle out of the image, upright, at the
//! recogniser's input height, then packing crops of similar shape into
//! batches (padding wastes less work when widths are alike).

use image::GrayImage;

use super::quad::TextBox;

/// The recogniser's input height.
pub const HEIGHT: u32 = 48;
/// The narrowest batch width. PaddleOCR pads every batch to at least 320
/// (ratio 320 / 48); the recogniser's work grows with the width, and most
/// crops on a receipt (prices, quantities, short words) are far narrower,
/// so half of that: about a sixth less CPU a receipt, the scores within
/// a receipt or two a field (docs/ocr-accuracy.md, "The recogniser's
/// narrowest batch").
pub const MIN_WIDTH: u32 = 160;
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

/// Group crops, narrowest first, into batches of at most `size`, each
/// padded to its widest crop and to at least `min_width`.
pub fn batches(mut crops: Vec<Crop>, size: usize, min_width: u32) -> Vec<Batch> {
    crops.sort_by_key(|c| c.image.width());
    let mut out = Vec::new();
    let mut rest = crops.as_slice();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(batch(chunk, min_width));
        rest = tail;
    }
    out
}

fn batch(crops: &[Crop], min_width: u32) -> Batch {
    let width = crops
        .iter()
        .map(|c| c.image.width())
        .max()
        .unwrap_or(0)
        .max(min_width);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn crop(index: usize, width: u32) -> Crop {
        Crop {
            index,
            image: GrayImage::from_pixel(width, HEIGHT, image::Luma([255])),
        }
    }

    #[test]
    fn batches_take_the_narrowest_first_and_pad_to_their_widest_crop_or_the_minimum() {
        let crops = vec![crop(0, 400), crop(1, 40), crop(2, 120), crop(3, 90)];
        let batches = batches(crops, 2, 100);
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].indices, vec![1, 3]);
        assert_eq!(batches[0].widths, vec![40, 90]);
        assert_eq!(
            batches[0].width, 100,
            "narrow crops are padded to the minimum"
        );
        assert_eq!(batches[1].indices, vec![2, 0]);
        assert_eq!(
            batches[1].width, 400,
            "a wider batch is as wide as its widest crop"
        );
        let plane = (HEIGHT * 100) as usize;
        assert_eq!(batches[0].tensor.len(), 2 * 3 * plane);
        // White is 1.0; the padding right of the 40-pixel crop is 0.
        assert_eq!(batches[0].tensor[39], 1.0);
        assert_eq!(batches[0].tensor[40], 0.0);
    }
}
