//! Resizing grey images fast. The `image` crate's filtered resize costs
//! about a fifth of a Tesseract read on a phone photo; bilinear sampling
//! up and box averaging down are all OCR needs, at a fraction of the cost.

use std::ops::Range;

use image::GrayImage;

/// Resize `image` to `width` × `height`: bilinear when enlarging, averaging
/// each target pixel's source box when shrinking (which keeps thin strokes
/// that point sampling would drop).
pub fn resize(image: &GrayImage, width: u32, height: u32) -> GrayImage {
    resize_rows(image, width, height, 0..height)
}

/// Only `rows` of [`resize`]'s picture (the same pixels), without working
/// out the others: for a pass that reads part of the page.
pub fn resize_rows(image: &GrayImage, width: u32, height: u32, rows: Range<u32>) -> GrayImage {
    let rows = rows.start.min(height)..rows.end.min(height);
    if width >= image.width() {
        bilinear(image, width, height, rows)
    } else {
        box_average(image, width, height, rows)
    }
}

fn bilinear(image: &GrayImage, width: u32, height: u32, rows: Range<u32>) -> GrayImage {
    let (source_width, source_height) = image.dimensions();
    let x_scale = f64::from(source_width) / f64::from(width);
    let y_scale = f64::from(source_height) / f64::from(height);
    // Per-column sample positions are the same on every row: compute once.
    let columns: Vec<(u32, u32, f64)> = (0..width)
        .map(|x| sample_position(x, x_scale, source_width))
        .collect();
    let raw = image.as_raw();
    let stride = source_width as usize;
    let out_height = rows.len() as u32;
    let mut out = Vec::with_capacity(width as usize * out_height as usize);
    for y in rows {
        let (y0, y1, fy) = sample_position(y, y_scale, source_height);
        let (row0, row1) = (y0 as usize * stride, y1 as usize * stride);
        for &(x0, x1, fx) in &columns {
            let at = |row: usize, x: u32| f64::from(raw[row + x as usize]);
            let top = at(row0, x0) * (1.0 - fx) + at(row0, x1) * fx;
            let bottom = at(row1, x0) * (1.0 - fx) + at(row1, x1) * fx;
            out.push((top * (1.0 - fy) + bottom * fy).round() as u8);
        }
    }
    // The buffer holds exactly width × out_height bytes: this cannot fail.
    GrayImage::from_raw(width, out_height, out).expect("buffer matches dimensions")
}

/// The two source pixels around target pixel `i` and the weight of the second.
fn sample_position(i: u32, scale: f64, limit: u32) -> (u32, u32, f64) {
    let position = ((f64::from(i) + 0.5) * scale - 0.5).max(0.0);
    let first = (position.floor() as u32).min(limit - 1);
    let second = (first + 1).min(limit - 1);
    (first, second, position - f64::from(first))
}

fn box_average(image: &GrayImage, width: u32, height: u32, rows: Range<u32>) -> GrayImage {
    let (source_width, source_height) = image.dimensions();
    let columns: Vec<(usize, usize)> = (0..width).map(|x| span(x, width, source_width)).collect();
    let stride = source_width as usize;
    let raw = image.as_raw();
    let out_height = rows.len() as u32;
    let mut out = Vec::with_capacity(width as usize * out_height as usize);
    let mut sums = vec![0u32; width as usize];
    for y in rows {
        let (y0, y1) = span(y, height, source_height);
        sums.iter_mut().for_each(|s| *s = 0);
        for row in raw[y0 * stride..y1 * stride].chunks_exact(stride) {
            for (sum, &(x0, x1)) in sums.iter_mut().zip(&columns) {
                *sum += row[x0..x1].iter().map(|&v| u32::from(v)).sum::<u32>();
            }
        }
        let rows = (y1 - y0) as u32;
        out.extend(
            sums.iter()
                .zip(&columns)
                .map(|(sum, (x0, x1))| (sum / (rows * (x1 - x0) as u32)) as u8),
        );
    }
    // The buffer holds exactly width × out_height bytes: this cannot fail.
    GrayImage::from_raw(width, out_height, out).expect("buffer matches dimensions")
}

/// The source pixels `[start, end)` that target pixel `i` of `size` covers.
fn span(i: u32, size: u32, source: u32) -> (usize, usize) {
    let start = (u64::from(i) * u64::from(source) / u64::from(size)) as usize;
    let end = (u64::from(i + 1) * u64::from(source) / u64::from(size)) as usize;
    (start, end.max(start + 1).min(source as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn enlarging_keeps_flat_areas_flat_and_edges_between_their_sides() {
        let image = GrayImage::from_fn(4, 4, |x, _| Luma([if x < 2 { 0 } else { 200 }]));
        let big = resize(&image, 8, 8);
        assert_eq!(big.dimensions(), (8, 8));
        assert_eq!(big.get_pixel(0, 0)[0], 0);
        assert_eq!(big.get_pixel(7, 7)[0], 200);
        assert!((1..200).contains(&big.get_pixel(4, 4)[0]));
    }

    #[test]
    fn some_rows_are_those_rows_of_the_whole_picture() {
        let image = GrayImage::from_fn(37, 23, |x, y| Luma([((x * 7 + y * 13) % 251) as u8]));
        for (width, height) in [(100, 62), (20, 12), (37, 23)] {
            let whole = resize(&image, width, height);
            let top = height / 3;
            let lower = image::imageops::crop_imm(&whole, 0, top, width, height - top).to_image();
            assert_eq!(resize_rows(&image, width, height, top..height), lower);
        }
    }

    #[test]
    fn shrinking_averages_each_box() {
        let image = GrayImage::from_fn(4, 2, |x, _| Luma([if x % 2 == 0 { 0 } else { 200 }]));
        let small = resize(&image, 2, 1);
        assert_eq!(small.get_pixel(0, 0)[0], 100);
        assert_eq!(small.get_pixel(1, 0)[0], 100);
    }
}
