//! Which OCR engine reads receipts and where the PP-OCR models live:
//! `OCR_ENGINE`, `OCR_MODELS_DIR` and `OCR_ALPHABET`, flattened into the service settings.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use super::ppocr::Script;

/// The engine policy a worker follows for every receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// The measured best trade-off of accuracy and CPU (docs/ocr-accuracy.md).
    Auto,
    /// Tesseract only: the fastest, the least accurate on photos.
    Tesseract,
    /// PP-OCRv4 only.
    Ppocr,
}

/// OCR engine settings.
#[derive(Debug, Clone, Args)]
pub struct EngineSettings {
    /// The OCR engine: auto, tesseract or ppocr.
    #[arg(
        long,
        env = "OCR_ENGINE",
        value_name = "OCR_ENGINE",
        value_enum,
        default_value = "auto"
    )]
    pub ocr_engine: EngineChoice,
    /// Folder holding the PP-OCR models and libonnxruntime.so (filled by
    /// scripts/deps.sh). Default: $XDG_CACHE_HOME/receipt-ocr/models or
    /// ~/.cache/receipt-ocr/models.
    #[arg(
        long,
        env = "OCR_MODELS_DIR",
        value_name = "OCR_MODELS_DIR",
        default_value_os_t = default_models_dir()
    )]
    pub ocr_models_dir: PathBuf,
    /// The characters PP-OCR may read: latin (ASCII, Latin letters with
    /// diacritics, punctuation, currency signs; full-width forms as ASCII)
    /// or all (every class of the model, Chinese included).
    #[arg(
        long,
        env = "OCR_ALPHABET",
        value_name = "OCR_ALPHABET",
        value_enum,
        default_value = "latin"
    )]
    pub ocr_alphabet: Script,
    /// Largest image read, in pixels (width × height, from the header,
    /// before any decoding): a bigger one is refused at upload and fails
    /// for good in a worker. A 600-dpi A4 page is about 35 MP.
    #[arg(
        long,
        env = "MAX_IMAGE_PIXELS",
        value_name = "MAX_IMAGE_PIXELS",
        default_value_t = super::preprocess::DEFAULT_MAX_IMAGE_PIXELS,
        value_parser = at_least_one::<u64>
    )]
    pub max_image_pixels: u64,
    /// Longest PDF read, in pages: a longer one is refused at upload and
    /// fails for good in a worker.
    #[arg(
        long,
        env = "MAX_PDF_PAGES",
        value_name = "MAX_PDF_PAGES",
        default_value_t = DEFAULT_MAX_PDF_PAGES,
        value_parser = at_least_one::<usize>
    )]
    pub max_pdf_pages: usize,
}

/// MAX_PDF_PAGES when unset.
pub const DEFAULT_MAX_PDF_PAGES: usize = 10;

/// A whole number of at least 1 (a count limit).
pub fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(raw: &str) -> Result<T, String> {
    match raw.trim().parse::<T>() {
        Ok(n) if n < T::from(1) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{raw}` is not a whole number")),
    }
}

impl EngineSettings {
    /// Settings for `engine` with the models in the default place (or
    /// `OCR_MODELS_DIR` when set).
    pub fn with_engine(engine: EngineChoice) -> Self {
        let dir = std::env::var_os("OCR_MODELS_DIR").filter(|d| !d.is_empty());
        let max_pixels = std::env::var("MAX_IMAGE_PIXELS").ok();
        let max_pages = std::env::var("MAX_PDF_PAGES").ok();
        let alphabet = std::env::var("OCR_ALPHABET").ok();
        Self {
            ocr_engine: engine,
            ocr_models_dir: dir.map_or_else(default_models_dir, PathBuf::from),
            ocr_alphabet: alphabet
                .and_then(|a| Script::from_str(&a, true).ok())
                .unwrap_or(Script::Latin),
            max_image_pixels: max_pixels
                .and_then(|p| at_least_one(&p).ok())
                .unwrap_or(super::preprocess::DEFAULT_MAX_IMAGE_PIXELS),
            max_pdf_pages: max_pages
                .and_then(|p| at_least_one(&p).ok())
                .unwrap_or(DEFAULT_MAX_PDF_PAGES),
        }
    }

    /// Settings from `OCR_ENGINE` and `OCR_MODELS_DIR`, with their defaults.
    pub fn from_env() -> Self {
        let engine = std::env::var("OCR_ENGINE")
            .ok()
            .and_then(|e| EngineChoice::from_str(&e, true).ok())
            .unwrap_or(EngineChoice::Auto);
        Self::with_engine(engine)
    }
}

/// `$XDG_CACHE_HOME/receipt-ocr/models`, else `~/.cache/receipt-ocr/models`.
pub fn default_models_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("receipt-ocr").join("models")
}
