//! What people upload besides plain images: PDF e-receipts and scans, and
//! HEIC/AVIF phone photos. Sniffed by magic bytes like images; checked at
//! upload as far as can be known without reading them (page count,
//! encryption, claimed pixels); read in a worker into the same
//! [`ReceiptReading`](crate::ocr::ReceiptReading) as an image.

pub mod heif;
pub mod heif_items;
pub mod pdf;
pub mod pdf_text;
mod read;
pub mod settings;
pub mod tool;

pub use read::{read_document, read_upload};
pub use settings::InputSettings;

use image::ImageFormat;

use crate::ocr::integrity::{self, IntegrityError};
use crate::ocr::preprocess::{self, PreprocessError};

/// The default MAX_PDF_PAGES.
pub use crate::ocr::settings::DEFAULT_MAX_PDF_PAGES;

/// What an upload is, by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Image(ImageFormat),
    Pdf,
    Heif(heif::HeifKind),
}

impl InputKind {
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"%PDF-") {
            return Some(Self::Pdf);
        }
        if let Some(kind) = heif::sniff(bytes) {
            return Some(Self::Heif(kind));
        }
        preprocess::sniff_format(bytes).map(Self::Image)
    }

    /// The blob's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Image(format) => format.extensions_str().first().copied().unwrap_or("img"),
            Self::Pdf => "pdf",
            Self::Heif(heif::HeifKind::Heic) => "heic",
            Self::Heif(heif::HeifKind::Avif) => "avif",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Image(format) => format.to_mime_type(),
            Self::Pdf => "application/pdf",
            Self::Heif(heif::HeifKind::Heic) => "image/heic",
            Self::Heif(heif::HeifKind::Avif) => "image/avif",
        }
    }
}

/// Why a document cannot be read. Permanent except a converter that is
/// missing or did not answer in time on this machine.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(
        "the file is not a format we read (JPEG, PNG, TIFF, WebP, BMP, GIF, PDF, HEIC or AVIF)"
    )]
    Unsupported,
    #[error(transparent)]
    Image(#[from] PreprocessError),
    #[error(transparent)]
    Incomplete(#[from] IntegrityError),
    #[error(
        "the PDF is password-protected; remove the password (print it to a new PDF, say) and upload it again"
    )]
    EncryptedPdf,
    #[error("the PDF could not be read ({0}); it may be truncated or corrupt")]
    UnreadablePdf(String),
    #[error(
        "the PDF has {pages} pages, over the limit of {limit} (MAX_PDF_PAGES); upload the receipt's pages only"
    )]
    TooManyPages { pages: usize, limit: usize },
    #[error(
        "page {page} of the PDF would be {width}x{height} pixels at 300 dpi, over the {limit}-pixel limit (MAX_IMAGE_PIXELS); send a receipt-sized page"
    )]
    PageTooLarge {
        page: usize,
        width: u32,
        height: u32,
        limit: u64,
    },
    #[error("the HEIC/AVIF photo could not be decoded ({0}); it may be truncated or corrupt")]
    UnreadableHeif(String),
    #[error(
        "the HEIC/AVIF file holds {images} photos, over the limit of {limit}; upload each photo on its own"
    )]
    TooManyImages { images: usize, limit: usize },
    #[error("a converter could not run: {0}")]
    Tool(#[source] tool::ToolError),
    #[error("no room for a temporary file: {0}")]
    TempFile(#[source] std::io::Error),
    /// Nobody waits for the read any more; its answer would be thrown away.
    #[error("the read was given up (timed out or cancelled) before the PDF's next page")]
    Abandoned,
}

impl From<InputError> for crate::ocr::OcrError {
    fn from(error: InputError) -> Self {
        Self::Document(Box::new(error))
    }
}

impl crate::ocr::engine::DocumentError for InputError {
    fn is_permanent(&self) -> bool {
        InputError::is_permanent(self)
    }
}

impl InputError {
    /// True when the same bytes would fail the same way on another attempt.
    pub fn is_permanent(&self) -> bool {
        // A converter that hangs or floods on this file will do it again;
        // one that is missing may be installed where the retry runs.
        !matches!(
            self,
            Self::Tool(tool::ToolError::Missing { .. }) | Self::TempFile(_) | Self::Abandoned
        )
    }
}

/// The limits an upload is checked against.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    pub max_image_pixels: u64,
    pub max_pdf_pages: usize,
}

/// Check an upload as far as can be done without reading it: its kind by
/// magic bytes, an image's header and claimed pixels (and a JPEG's end
/// marker), a photo's claimed pixels, a PDF's page count, page sizes and
/// encryption. Blocking (it may run `pdfinfo`).
pub fn check_upload(bytes: &[u8], limits: UploadLimits) -> Result<InputKind, InputError> {
    let kind = InputKind::sniff(bytes).ok_or(InputError::Unsupported)?;
    match kind {
        InputKind::Image(_) => {
            preprocess::check_dimensions(bytes, limits.max_image_pixels)?;
            integrity::check_whole(bytes)?;
        }
        InputKind::Heif(_) => {
            heif::check_size(bytes, limits.max_image_pixels)?;
            heif::check_images(bytes)?;
        }
        InputKind::Pdf => match pdf::inspect(bytes, limits.max_pdf_pages) {
            Ok(info) => info.check(limits.max_pdf_pages, limits.max_image_pixels)?,
            // Without poppler here (an `api` process on a slim host), the
            // worker decides: it fails the job with the same reason.
            Err(InputError::Tool(tool::ToolError::Missing { .. })) => {
                tracing::warn!("pdfinfo is not installed: a PDF upload is queued unchecked");
            }
            Err(e) => return Err(e),
        },
    }
    Ok(kind)
}
