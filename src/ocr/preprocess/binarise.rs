//! Black-and-white versions of a grey image. Photos of receipts are lit
//! unevenly (shadows, curled paper): one global threshold loses text in the
//! dark corners, so the fallback pass thresholds each pixel against its
//! neighbourhood (Sauvola).

use image::GrayImage;

/// Sauvola's `k`: how far below the local mean (in units of the local
/// contrast) a pixel must be to count as ink. 0.2–0.5 is usual; receipts'
/// faint thermal print needs the lower end.
const SAUVOLA_K: f64 = 0.2;
/// Sauvola's dynamic range of the standard deviation for 8-bit images.
const SAUVOLA_R: f64 = 128.0;

/// Sauvola binarisation with a square window of `window` pixels (about two
/// text lines high works best: large enough to see paper around each glyph).
///
/// Row by row over raw buffers: the same integer window sums and the same
/// floating-point threshold per pixel as the per-pixel definition (which
/// the tests keep), so the same picture, at a fraction of the cost.
pub fn sauvola(image: &GrayImage, window: u32) -> GrayImage {
    let sums = IntegralImage::new(image);
    let half = window / 2;
    let (width, height) = image.dimensions();
    // A pixel's window spans the same columns on every row.
    let columns: Vec<(usize, usize)> = (0..width)
        .map(|x| (x.saturating_sub(half), (x + half + 1).min(width)))
        .map(|(x0, x1)| (x0 as usize, x1 as usize))
        .collect();
    let mut out = Vec::with_capacity(image.as_raw().len());
    for (y, row) in (0..height).zip(image.as_raw().chunks_exact(width.max(1) as usize)) {
        let (y0, y1) = (y.saturating_sub(half), (y + half + 1).min(height));
        let window_rows = sums.rows(y0, y1);
        let rows = y1 - y0;
        out.extend(row.iter().zip(&columns).map(|(&pixel, &(x0, x1))| {
            let (sum, squares) = window_rows.rectangle(x0, x1);
            let count = f64::from((x1 - x0) as u32 * rows);
            let threshold = sauvola_threshold(sum, squares, count);
            if f64::from(pixel) <= threshold {
                0
            } else {
                255
            }
        }));
    }
    // The buffer holds exactly width × height bytes, so this cannot fail.
    GrayImage::from_raw(width, height, out).expect("buffer matches dimensions")
}

/// Sauvola's threshold for a window of `count` pixels whose values add up
/// to `sum` and whose squares add up to `squares`.
fn sauvola_threshold(sum: u64, squares: u64, count: f64) -> f64 {
    let mean = sum as f64 / count;
    let mean_square = squares as f64 / count;
    let deviation = (mean_square - mean * mean).max(0.0).sqrt();
    mean * (1.0 + SAUVOLA_K * (deviation / SAUVOLA_R - 1.0))
}

/// Sums and sums of squares over every top-left rectangle, so the mean and
/// deviation of any window cost four look-ups (the whole image is O(pixels)
/// whatever the window size).
struct IntegralImage {
    stride: usize,
    sum: Vec<u64>,
    squares: Vec<u64>,
}

/// The integral rows above and below one row of windows.
struct WindowRows<'a> {
    sum: (&'a [u64], &'a [u64]),
    squares: (&'a [u64], &'a [u64]),
}

impl WindowRows<'_> {
    /// The sum and the sum of squares over columns `[x0, x1)` of these rows.
    fn rectangle(&self, x0: usize, x1: usize) -> (u64, u64) {
        let over = |(top, bottom): (&[u64], &[u64])| bottom[x1] + top[x0] - top[x1] - bottom[x0];
        (over(self.sum), over(self.squares))
    }
}

impl IntegralImage {
    fn new(image: &GrayImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let stride = width + 1;
        let mut sum = vec![0u64; stride * (height + 1)];
        let mut squares = vec![0u64; stride * (height + 1)];
        let rows = image.as_raw().chunks_exact(width.max(1)).take(height);
        for (y, row) in rows.enumerate() {
            let (above, below) = sum.split_at_mut((y + 1) * stride);
            let (above_sq, below_sq) = squares.split_at_mut((y + 1) * stride);
            let (above, above_sq) = (&above[y * stride..], &above_sq[y * stride..]);
            let (mut row_sum, mut row_squares) = (0u64, 0u64);
            for (x, &value) in row.iter().enumerate() {
                row_sum += u64::from(value);
                row_squares += u64::from(value) * u64::from(value);
                below[x + 1] = above[x + 1] + row_sum;
                below_sq[x + 1] = above_sq[x + 1] + row_squares;
            }
        }
        Self {
            stride,
            sum,
            squares,
        }
    }

    /// The integral rows `y0` and `y1` (a window's top and bottom edges).
    fn rows(&self, y0: u32, y1: u32) -> WindowRows<'_> {
        let (top, bottom) = (y0 as usize * self.stride, y1 as usize * self.stride);
        let (top, bottom) = (top..top + self.stride, bottom..bottom + self.stride);
        WindowRows {
            sum: (&self.sum[top.clone()], &self.sum[bottom.clone()]),
            squares: (&self.squares[top], &self.squares[bottom]),
        }
    }
}

/// Otsu's global threshold: the grey level that best splits the histogram
/// into two classes (ink and paper).
pub fn otsu_threshold(image: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for pixel in image.pixels() {
        histogram[usize::from(pixel[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let weighted_total: f64 = histogram
        .iter()
        .enumerate()
        .map(|(v, &n)| v as f64 * n as f64)
        .sum();
    let (mut below, mut weighted_below) = (0u64, 0.0f64);
    let (mut best, mut best_variance) = (0u8, 0.0f64);
    for (value, &count) in histogram.iter().enumerate() {
        below += count;
        weighted_below += value as f64 * count as f64;
        let above = total - below;
        if below == 0 || above == 0 {
            continue;
        }
        let mean_below = weighted_below / below as f64;
        let mean_above = (weighted_total - weighted_below) / above as f64;
        let variance = below as f64 * above as f64 * (mean_below - mean_above).powi(2);
        if variance > best_variance {
            (best, best_variance) = (value as u8, variance);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    #[test]
    fn sauvola_keeps_dark_text_on_a_shadowed_background() {
        // Left half lit (200), right half in shadow (90); one dark stroke in each.
        let image = GrayImage::from_fn(60, 20, |x, _| {
            let paper = if x < 30 { 200 } else { 90 };
            Luma([if x == 10 || x == 45 { paper / 3 } else { paper }])
        });
        let binary = sauvola(&image, 15);
        assert_eq!(binary.get_pixel(10, 10)[0], 0);
        assert_eq!(binary.get_pixel(45, 10)[0], 0);
        assert_eq!(binary.get_pixel(20, 10)[0], 255);
        assert_eq!(binary.get_pixel(52, 10)[0], 255);
    }

    /// Sauvola as defined, pixel by pixel, each window summed directly
    /// (the implementation gets the same integer sums from integral images
    /// and computes the same threshold from them).
    fn sauvola_per_pixel(image: &GrayImage, window: u32) -> GrayImage {
        let half = window / 2;
        let (width, height) = image.dimensions();
        GrayImage::from_fn(width, height, |x, y| {
            let (x0, y0) = (x.saturating_sub(half), y.saturating_sub(half));
            let (x1, y1) = ((x + half + 1).min(width), (y + half + 1).min(height));
            let (mut sum, mut squares) = (0u64, 0u64);
            for (wx, wy) in (x0..x1).flat_map(|wx| (y0..y1).map(move |wy| (wx, wy))) {
                let value = u64::from(image.get_pixel(wx, wy)[0]);
                (sum, squares) = (sum + value, squares + value * value);
            }
            let count = f64::from((x1 - x0) * (y1 - y0));
            let mean = sum as f64 / count;
            let deviation = (squares as f64 / count - mean * mean).max(0.0).sqrt();
            let threshold = mean * (1.0 + SAUVOLA_K * (deviation / SAUVOLA_R - 1.0));
            let ink = f64::from(image.get_pixel(x, y)[0]) <= threshold;
            Luma([if ink { 0 } else { 255 }])
        })
    }

    #[test]
    fn sauvola_row_by_row_gives_the_per_pixel_definitions_picture() {
        // Uneven light, text-like strokes and noise, on sizes that are not
        // multiples of the window, with windows larger than the picture too.
        let mut state = 12345u32;
        let image = GrayImage::from_fn(97, 61, |x, y| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let light = 120 + (x + y) % 100;
            let stroke = if (x / 3 + y / 5) % 4 == 0 {
                light / 3
            } else {
                light
            };
            Luma([(stroke + (state >> 16) % 25) as u8])
        });
        for window in [1, 3, 15, 41, 201] {
            assert_eq!(
                sauvola(&image, window),
                sauvola_per_pixel(&image, window),
                "window {window}"
            );
        }
        let blank = GrayImage::from_pixel(20, 20, Luma([255]));
        assert_eq!(sauvola(&blank, 15), sauvola_per_pixel(&blank, 15));
    }

    #[test]
    fn otsu_splits_two_grey_levels_between_them() {
        let image = GrayImage::from_fn(10, 10, |x, _| Luma([if x < 5 { 40 } else { 220 }]));
        let threshold = otsu_threshold(&image);
        assert!((40..220).contains(&threshold));
    }
}
