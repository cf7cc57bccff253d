//! Finding the receipt in a photo: the paper is the largest bright region,
//! and everything around it (table, hand, background texture) only gives
//! Tesseract noise to read as letters.

use image::{GrayImage, imageops};

use super::binarise::otsu_threshold;

/// The crop is found on a copy this wide: enough to see a receipt's edges,
/// cheap enough to label every pixel.
const PROBE_WIDTH: u32 = 200;
/// Paper covering more than this share of the picture is a scan: no crop.
const SCAN_COVERAGE: f64 = 0.85;
/// A bright region smaller than this share of the picture is not the paper.
const MIN_PAPER_COVERAGE: f64 = 0.15;
/// Margin kept around the paper, as a share of the probe width.
const MARGIN: f64 = 0.02;

/// The pixel rectangle `(x, y, width, height)` of the paper in `image`, or
/// `None` when the picture is all paper (a scan) or no paper stands out.
pub fn find_paper(image: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let scale = f64::from(image.width()) / f64::from(PROBE_WIDTH);
    let probe_height = (f64::from(image.height()) / scale).round().max(1.0) as u32;
    let probe = super::scale::resize(image, PROBE_WIDTH, probe_height);
    let threshold = otsu_threshold(&probe);
    let bright: Vec<bool> = probe.pixels().map(|p| p[0] > threshold).collect();
    let (area, [x0, y0, x1, y1]) = largest_region(&bright, PROBE_WIDTH as usize)?;
    let coverage = area as f64 / bright.len() as f64;
    let box_coverage = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64 / bright.len() as f64;
    if coverage < MIN_PAPER_COVERAGE || box_coverage > SCAN_COVERAGE {
        return None;
    }
    let margin = MARGIN * f64::from(PROBE_WIDTH);
    let to_image = |v: usize, add: f64, limit: u32| {
        ((v as f64 + add) * scale).clamp(0.0, f64::from(limit)) as u32
    };
    let (left, top) = (
        to_image(x0, -margin, image.width()),
        to_image(y0, -margin, image.height()),
    );
    let right = to_image(x1 + 1, margin, image.width());
    let bottom = to_image(y1 + 1, margin, image.height());
    Some((left, top, right - left, bottom - top))
}

/// Crop `image` to its paper, or return it whole when there is nothing to cut.
pub fn crop_to_paper(image: GrayImage) -> GrayImage {
    match find_paper(&image) {
        Some((x, y, width, height)) if width > 0 && height > 0 => {
            imageops::crop_imm(&image, x, y, width, height).to_image()
        }
        _ => image,
    }
}

/// The largest 4-connected region of `true` cells: its size and bounding box
/// `[x0, y0, x1, y1]` (inclusive).
fn largest_region(cells: &[bool], width: usize) -> Option<(usize, [usize; 4])> {
    let mut seen = vec![false; cells.len()];
    let mut best: Option<(usize, [usize; 4])> = None;
    let mut stack = Vec::new();
    for start in 0..cells.len() {
        if !cells[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut area, mut bounds) = (0, [usize::MAX, usize::MAX, 0, 0]);
        while let Some(cell) = stack.pop() {
            let (x, y) = (cell % width, cell / width);
            area += 1;
            bounds = [
                bounds[0].min(x),
                bounds[1].min(y),
                bounds[2].max(x),
                bounds[3].max(y),
            ];
            for next in neighbours(cell, width, cells.len()) {
                if cells[next] && !seen[next] {
                    seen[next] = true;
                    stack.push(next);
                }
            }
        }
        if best.is_none_or(|(best_area, _)| area > best_area) {
            best = Some((area, bounds));
        }
    }
    best
}

fn neighbours(cell: usize, width: usize, len: usize) -> impl Iterator<Item = usize> {
    let x = cell % width;
    let left = (x > 0).then(|| cell - 1);
    let right = (x + 1 < width).then_some(cell + 1);
    let up = cell.checked_sub(width);
    let down = Some(cell + width).filter(|&c| c < len);
    [left, right, up, down].into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn a_white_receipt_on_a_dark_table_is_cropped_to_the_paper() {
        let photo = GrayImage::from_fn(400, 600, |x, y| {
            let on_paper = (100..300).contains(&x) && (50..550).contains(&y);
            Luma([if on_paper { 230 } else { 40 }])
        });
        let (x, y, width, height) = find_paper(&photo).expect("paper found");
        assert!((80..=100).contains(&x) && (30..=50).contains(&y), "{x},{y}");
        assert!((200..=240).contains(&width) && (500..=540).contains(&height));
    }

    #[test]
    fn a_scan_that_is_all_paper_is_not_cropped() {
        let scan = GrayImage::from_fn(400, 600, |x, y| {
            Luma([if (x + y) % 50 == 0 { 0 } else { 240 }])
        });
        assert_eq!(find_paper(&scan), None);
    }
}
