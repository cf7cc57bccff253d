//! Black-and-white versions of a grey image. Photos of receipts are lit
//! unevenly (shadows, curled paper): one global threshold loses text in the
//! dark corners, so the fallback pass thresholds each pixel against its
//! neighbourhood (Sauvola).

use image::{GrayImage, Luma};

/// Sauvola's `k`: how far below the local mean (in units of the local
/// contrast) a pixel must be to count as ink. 0.2–0.5 is usual; receipts'
/// faint thermal print needs the lower end.
const SAUVOLA_K: f64 = 0.2;
/// Sauvola's dynamic range of the standard deviation for 8-bit images.
const SAUVOLA_R: f64 = 128.0;

/// Sauvola binarisation with a square window of `window` pixels (about two
/// text lines high works best: large enough to see paper around each glyph).
pub fn sauvola(image: &GrayImage, window: u32) -> GrayImage {
    let sums = IntegralImage::new(image);
    let half = window / 2;
    let (width, height) = image.dimensions();
    GrayImage::from_fn(width, height, |x, y| {
        let (x0, y0) = (x.saturating_sub(half), y.saturating_sub(half));
        let (x1, y1) = ((x + half + 1).min(width), (y + half + 1).min(height));
        let (mean, deviation) = sums.mean_and_deviation(x0, y0, x1, y1);
        let threshold = mean * (1.0 + SAUVOLA_K * (deviation / SAUVOLA_R - 1.0));
        let ink = f64::from(image.get_pixel(x, y)[0]) <= threshold;
        Luma([if ink { 0 } else { 255 }])
    })
}

/// Sums and sums of squares over every top-left rectangle, so the mean and
/// deviation of any window cost four look-ups (the whole image is O(pixels)
/// whatever the window size).
struct IntegralImage {
    stride: usize,
    sum: Vec<u64>,
    squares: Vec<u64>,
}

impl IntegralImage {
    fn new(image: &GrayImage) -> Self {
        let (width, height) = (image.width() as usize, image.height() as usize);
        let stride = width + 1;
        let mut sum = vec![0u64; stride * (height + 1)];
        let mut squares = vec![0u64; stride * (height + 1)];
        for (y, row) in image
            .as_raw()
            .chunks_exact(width.max(1))
            .enumerate()
            .take(height)
        {
            let (mut row_sum, mut row_squares) = (0u64, 0u64);
            for (x, &value) in row.iter().enumerate() {
                row_sum += u64::from(value);
                row_squares += u64::from(value) * u64::from(value);
                let at = (y + 1) * stride + x + 1;
                sum[at] = sum[at - stride] + row_sum;
                squares[at] = squares[at - stride] + row_squares;
            }
        }
        Self {
            stride,
            sum,
            squares,
        }
    }

    fn rectangle(&self, table: &[u64], x0: u32, y0: u32, x1: u32, y1: u32) -> u64 {
        let at = |x: u32, y: u32| table[y as usize * self.stride + x as usize];
        at(x1, y1) + at(x0, y0) - at(x1, y0) - at(x0, y1)
    }

    fn mean_and_deviation(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> (f64, f64) {
        let count = f64::from((x1 - x0) * (y1 - y0));
        let mean = self.rectangle(&self.sum, x0, y0, x1, y1) as f64 / count;
        let mean_square = self.rectangle(&self.squares, x0, y0, x1, y1) as f64 / count;
        (mean, (mean_square - mean * mean).max(0.0).sqrt())
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

    #[test]
    fn otsu_splits_two_grey_levels_between_them() {
        let image = GrayImage::from_fn(10, 10, |x, _| Luma([if x < 5 { 40 } else { 220 }]));
        let threshold = otsu_threshold(&image);
        assert!((40..220).contains(&threshold));
    }
}
