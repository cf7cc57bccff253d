//! Turning an uploaded image into the picture Tesseract reads best: decoded
//! whatever its format, grey, cut to the paper, and scaled so that text is
//! near 300 dpi. Which steps run is a [`PassSettings`]; the engine picks the
//! passes (see `docs/ocr-accuracy.md` for the measurements behind them).

pub mod binarise;
pub mod paper;
pub mod scale;

use image::{GrayImage, ImageDecoder, ImageFormat};

/// How one OCR pass prepares the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassSettings {
    /// Cut a photo down to the receipt's paper before anything else.
    pub crop_to_paper: bool,
    /// Narrow images are upscaled to this width: on photos under ~1000 px
    /// wide Tesseract loses most digits.
    pub min_width: u32,
    /// Huge scans are downscaled to this width: beyond it they cost time
    /// without adding accuracy.
    pub max_width: u32,
    /// Binarise with Sauvola (local thresholds): rescues unevenly lit
    /// photos, costs a little on clean scans.
    pub sauvola: bool,
    /// Read only the lower two thirds: totals are printed below the items,
    /// so a pass run to find a missing total can skip the header.
    pub lower_two_thirds: bool,
}

impl PassSettings {
    /// The first pass, best on its own over photos and scans alike.
    pub const GREY: Self = Self {
        crop_to_paper: true,
        min_width: 1000,
        max_width: 1800,
        sauvola: false,
        lower_two_thirds: false,
    };
    /// The fallback when the first pass finds no total: binarised, a little
    /// larger, which suits the uneven photos that need it, and only where
    /// totals are printed.
    pub const SAUVOLA: Self = Self {
        crop_to_paper: true,
        min_width: 1200,
        max_width: 2400,
        sauvola: true,
        lower_two_thirds: true,
    };
}

/// Why an image could not be prepared. Always permanent: the same bytes
/// will fail the same way on every attempt.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("the file is not an image format we read (JPEG, PNG, TIFF, WebP, BMP, GIF)")]
    UnknownFormat,
    #[error(
        "the image could not be decoded ({0}); it may be truncated or corrupt: upload the whole file again"
    )]
    Corrupt(String),
    #[error("the image is empty ({0}x{1} pixels)")]
    Empty(u32, u32),
    #[error(
        "the image is {width}x{height} pixels ({} MP), over the {} MP limit (MAX_IMAGE_PIXELS); \
         send a smaller image", megapixels(u64::from(*.width) * u64::from(*.height)), megapixels(*.limit)
    )]
    TooManyPixels { width: u32, height: u32, limit: u64 },
}

/// The default MAX_IMAGE_PIXELS: 40 MP (a 600-dpi A4 page is ~35 MP).
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 40_000_000;

fn megapixels(pixels: u64) -> String {
    format!("{:.1}", pixels as f64 / 1e6)
}

/// Width and height from the image's header alone, without decoding it;
/// an error when the header cannot be read, or they are zero or over
/// `max_pixels`.
pub fn check_dimensions(bytes: &[u8], max_pixels: u64) -> Result<(), PreprocessError> {
    let Some(format) = sniff_format(bytes) else {
        return Ok(());
    };
    let reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| PreprocessError::Corrupt(format!("its header cannot be read: {e}")))?;
    if width == 0 || height == 0 {
        return Err(PreprocessError::Empty(width, height));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(PreprocessError::TooManyPixels {
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok(())
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

/// Decode `bytes` into a grey image (colour carries nothing on a receipt).
/// Phone photos are often stored sideways with an EXIF note saying how to
/// turn them; the picture is turned upright as a viewer would show it.
pub fn decode(bytes: &[u8]) -> Result<GrayImage, PreprocessError> {
    decode_within(bytes, DEFAULT_MAX_IMAGE_PIXELS)
}

/// [`decode`], refusing an image over `max_pixels` before decoding it, and
/// with the decoder's own memory limit on (for headers that lie).
pub fn decode_within(bytes: &[u8], max_pixels: u64) -> Result<GrayImage, PreprocessError> {
    let format = sniff_format(bytes).ok_or(PreprocessError::UnknownFormat)?;
    check_dimensions(bytes, max_pixels)?;
    let corrupt = |e: image::ImageError| PreprocessError::Corrupt(e.to_string());
    let mut decoder = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_decoder()
        .map_err(corrupt)?;
    let mut limits = image::Limits::default();
    // Eight bytes a pixel covers 16-bit RGBA, the widest format we read.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    decoder.set_limits(limits).map_err(corrupt)?;
    // A missing or unreadable EXIF block means "as stored", not a bad image.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(PreprocessError::Empty(decoded.width(), decoded.height()));
    }
    decoded.apply_orientation(orientation);
    Ok(decoded.into_luma8())
}

/// Decode `bytes` and prepare them as the first pass does.
pub fn prepare(bytes: &[u8]) -> Result<GrayImage, PreprocessError> {
    Ok(prepare_pass(&decode(bytes)?, PassSettings::GREY))
}

/// Prepare a decoded grey image for one pass.
pub fn prepare_pass(grey: &GrayImage, settings: PassSettings) -> GrayImage {
    prepare_placed(grey, settings).image
}

/// Where a prepared picture sits in the decoded image: prepared pixel
/// `(x, y)` is image pixel `(left + x · scale_x, top + y · scale_y)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub left: f32,
    pub top: f32,
    pub scale_x: f32,
    pub scale_y: f32,
}

impl Placement {
    pub const IDENTITY: Self = Self {
        left: 0.0,
        top: 0.0,
        scale_x: 1.0,
        scale_y: 1.0,
    };

    /// A box in prepared pixels as a box in image pixels.
    pub fn to_image(&self, x: u32, y: u32, width: u32, height: u32) -> super::page::BBox {
        let left = self.left + x as f32 * self.scale_x;
        let top = self.top + y as f32 * self.scale_y;
        let (w, h) = (width as f32 * self.scale_x, height as f32 * self.scale_y);
        super::page::BBox::new(left as u32, top as u32, w.round() as u32, h.round() as u32)
    }
}

/// A prepared picture and where it sits in the decoded image.
pub struct Prepared {
    pub image: GrayImage,
    pub placement: Placement,
}

/// Prepare a decoded grey image for one pass, keeping its placement.
pub fn prepare_placed(grey: &GrayImage, settings: PassSettings) -> Prepared {
    let (cropped, mut placement) = match settings.crop_to_paper {
        true => paper_of(grey),
        false => (grey.clone(), Placement::IDENTITY),
    };
    let before = cropped.dimensions();
    let (width, height) = width_within(before, settings.min_width, settings.max_width);
    placement.scale_x = before.0 as f32 / width as f32;
    placement.scale_y = before.1 as f32 / height as f32;
    // Only the rows this pass reads are scaled.
    let top = match settings.lower_two_thirds {
        true => height / 3,
        false => 0,
    };
    placement.top += top as f32 * placement.scale_y;
    let scaled = match (width, height) == before {
        true if top == 0 => cropped,
        true => image::imageops::crop_imm(&cropped, 0, top, width, height - top).to_image(),
        false => scale::resize_rows(&cropped, width, height, top..height),
    };
    let image = match settings.sauvola {
        true => binarise::sauvola(&scaled, sauvola_window(scaled.width())),
        false => scaled,
    };
    Prepared { image, placement }
}

/// The paper of a photo cut out (a scan is kept whole), and where it was.
pub fn paper_of(grey: &GrayImage) -> (GrayImage, Placement) {
    match paper::find_paper(grey) {
        Some((x, y, width, height)) if width > 0 && height > 0 => {
            let cut = image::imageops::crop_imm(grey, x, y, width, height).to_image();
            let placement = Placement {
                left: x as f32,
                top: y as f32,
                ..Placement::IDENTITY
            };
            (cut, placement)
        }
        _ => (grey.clone(), Placement::IDENTITY),
    }
}

/// About two text lines of a receipt scaled to `width` (odd, so centred).
fn sauvola_window(width: u32) -> u32 {
    (width / 30).max(15) | 1
}

/// The size `size` is scaled to: its width brought within
/// `[min_width, max_width]`, its height in proportion (at least 1).
fn width_within((width, height): (u32, u32), min_width: u32, max_width: u32) -> (u32, u32) {
    let target = width.clamp(min_width, max_width);
    if target == width {
        return (width, height);
    }
    let height = (u64::from(height) * u64::from(target) / u64::from(width)).max(1);
    (target, u32::try_from(height).unwrap_or(u32::MAX))
}

/// Encode a prepared image in a format leptonica reads from memory without
/// decompression work (binary PGM).
pub fn encode_for_tesseract(image: &GrayImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(image.as_raw().len() + 32);
    out.extend_from_slice(format!("P5\n{} {}\n255\n", image.width(), image.height()).as_bytes());
    out.extend_from_slice(image.as_raw());
    out
}

#[cfg(test)]
mod bomb_tests {
    use super::*;

    /// A small real JPEG whose header claims 65500 × 65500 pixels (4.3 GP).
    fn bomb() -> Vec<u8> {
        let mut jpeg = Vec::new();
        GrayImage::new(8, 8)
            .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .expect("encoding in memory");
        let frame = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG has a frame header");
        let side = 65500u16.to_be_bytes();
        jpeg[frame + 5..frame + 7].copy_from_slice(&side);
        jpeg[frame + 7..frame + 9].copy_from_slice(&side);
        jpeg
    }

    #[test]
    fn an_image_over_the_pixel_limit_is_refused_from_its_header_before_decoding() {
        let error = decode_within(&bomb(), DEFAULT_MAX_IMAGE_PIXELS).expect_err("refused");
        let message = error.to_string();
        assert!(
            matches!(error, PreprocessError::TooManyPixels { width: 65500, .. }),
            "{message}"
        );
        assert!(message.contains("65500x65500"), "{message}");
        assert!(message.contains("MAX_IMAGE_PIXELS"), "{message}");
        assert!(check_dimensions(&bomb(), 65500 * 65500).is_ok());
    }
}
