//! Turning an uploaded image into the picture Tesseract reads best: decoded
//! whatever its format, grey, and scaled so that text is near 300 dpi.

use image::{DynamicImage, GrayImage, ImageFormat, imageops::FilterType};

/// Narrow photos lose most of their digits; below this width we upscale.
const MIN_WIDTH: u32 = 1200;
/// Huge scans cost time without adding accuracy; above this we downscale.
const MAX_WIDTH: u32 = 2400;

/// Why an image could not be prepared. Always permanent: the same bytes
/// will fail the same way on every attempt.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("the file is not an image format we read (JPEG, PNG, TIFF, WebP, BMP, GIF)")]
    UnknownFormat,
    #[error("the image could not be decoded ({0}); it may be truncated or corrupt")]
    Corrupt(String),
    #[error("the image is empty ({0}x{1} pixels)")]
    Empty(u32, u32),
}

/// The image formats we accept, recognised by their magic bytes (never by
/// the client's declared content type).
pub fn sniff_format(bytes: &[u8]) -> Option<ImageFormat> {
    let format = image::guess_format(bytes).ok()?;
    matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::Tiff
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Gif
    )
    .then_some(format)
}

/// Decode `bytes` and return a greyscale image scaled for OCR.
pub fn prepare(bytes: &[u8]) -> Result<GrayImage, PreprocessError> {
    let format = sniff_format(bytes).ok_or(PreprocessError::UnknownFormat)?;
    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| PreprocessError::Corrupt(e.to_string()))?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(PreprocessError::Empty(decoded.width(), decoded.height()));
    }
    Ok(scale_for_ocr(decoded).to_luma8())
}

fn scale_for_ocr(image: DynamicImage) -> DynamicImage {
    let width = image.width();
    let target = width.clamp(MIN_WIDTH, MAX_WIDTH);
    if target == width {
        return image;
    }
    let height = (u64::from(image.height()) * u64::from(target) / u64::from(width)).max(1) as u32;
    image.resize_exact(target, height, FilterType::Triangle)
}

/// Encode a prepared image in a format leptonica reads from memory without
/// decompression work (binary PGM).
pub fn encode_for_tesseract(image: &GrayImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(image.as_raw().len() + 32);
    out.extend_from_slice(format!("P5\n{} {}\n255\n", image.width(), image.height()).as_bytes());
    out.extend_from_slice(image.as_raw());
    out
}
