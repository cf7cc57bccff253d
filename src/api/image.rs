//! `GET /api/receipt/{id}/image`: the uploaded file, with its own media
//! type, so the dashboard can show it beside the fields read from it.

use bytes::Bytes;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, ResponseContent};

use crate::jobs::ReceiptImage;

/// The media types an upload can have been accepted as; each is
/// documented, so a client knows what it may get.
#[derive(ResponseContent)]
pub enum Upload {
    #[oai(content_type = "image/jpeg")]
    Jpeg(Binary<Bytes>),
    #[oai(content_type = "image/png")]
    Png(Binary<Bytes>),
    #[oai(content_type = "image/tiff")]
    Tiff(Binary<Bytes>),
    #[oai(content_type = "image/webp")]
    Webp(Binary<Bytes>),
    #[oai(content_type = "image/bmp")]
    Bmp(Binary<Bytes>),
    #[oai(content_type = "image/gif")]
    Gif(Binary<Bytes>),
    #[oai(content_type = "image/heic")]
    Heic(Binary<Bytes>),
    #[oai(content_type = "image/avif")]
    Avif(Binary<Bytes>),
    #[oai(content_type = "application/pdf")]
    Pdf(Binary<Bytes>),
    /// A blob stored with a type we do not name (written by another producer).
    #[oai(content_type = "application/octet-stream")]
    Other(Binary<Bytes>),
}

impl From<ReceiptImage> for Upload {
    fn from(image: ReceiptImage) -> Self {
        let bytes = Binary(image.bytes);
        match image.content_type.as_str() {
            "image/jpeg" => Self::Jpeg(bytes),
            "image/png" => Self::Png(bytes),
            "image/tiff" => Self::Tiff(bytes),
            "image/webp" => Self::Webp(bytes),
            "image/bmp" => Self::Bmp(bytes),
            "image/gif" => Self::Gif(bytes),
            "image/heic" => Self::Heic(bytes),
            "image/avif" => Self::Avif(bytes),
            "application/pdf" => Self::Pdf(bytes),
            _ => Self::Other(bytes),
        }
    }
}

/// The file, private to the caller's key and never cached by shared caches.
#[derive(ApiResponse)]
pub enum ImageAnswer {
    #[oai(status = 200)]
    Ok(
        Upload,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "X-Content-Type-Options")] String,
    ),
}

impl ImageAnswer {
    pub fn new(image: ReceiptImage) -> Self {
        Self::Ok(
            image.into(),
            "private, max-age=3600".to_string(),
            "nosniff".to_string(),
        )
    }
}
