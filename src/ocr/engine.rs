//! One Tesseract instance and the whole read of one receipt image with it.
//! `LepTess` is `Send` but not `Sync`: each OCR worker owns one engine and
//! moves it onto a blocking thread for each read.

use image::GrayImage;
use leptess::{LepTess, Variable};

use super::preprocess::{self, PassSettings, PreprocessError};
use super::{ReceiptReading, Stage, passes};

/// Failures of a read, split by what the queue should do with the job.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// The image itself is bad: retrying cannot help.
    #[error(transparent)]
    Image(#[from] PreprocessError),
    /// Tesseract could not be started (missing `eng.traineddata`?).
    #[error(
        "Tesseract could not start with language `eng`: {0}. Install `tesseract-ocr-eng` \
         (Debian/Ubuntu) or set TESSDATA_PREFIX to the folder holding eng.traineddata"
    )]
    Init(String),
    /// Tesseract failed while reading; may succeed on another attempt.
    #[error("Tesseract failed while reading the image: {0}")]
    Recognition(String),
}

impl OcrError {
    /// True when retrying the same bytes cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, OcrError::Image(_))
    }
}

/// Tesseract's page segmentation mode for receipts: "a single uniform block
/// of text" finds far more of their amounts than automatic segmentation,
/// which splits the price column from the names.
const PAGE_SEGMENTATION_MODE: &str = "6";

/// Tesseract settings for receipts, each measured (docs/ocr-accuracy.md).
const SETTINGS: [(Variable, &str); 3] = [
    (Variable::TesseditPagesegMode, PAGE_SEGMENTATION_MODE),
    // Tesseract 5 also reads every line upside-down-inverted (white on
    // black) in case it is; receipts never are, and skipping it saves ~15%.
    (Variable::TesseditDoInvert, "0"),
    // Tesseract's diagnostics ("Image too small to scale!!") would flood
    // the worker's stderr; our own errors say what matters.
    (Variable::DebugFile, "/dev/null"),
];

/// A ready Tesseract instance configured for receipts.
pub struct OcrEngine {
    tess: LepTess,
}

impl OcrEngine {
    pub fn new() -> Result<Self, OcrError> {
        let mut tess = LepTess::new(None, "eng").map_err(|e| OcrError::Init(e.to_string()))?;
        for (variable, value) in SETTINGS {
            tess.set_variable(variable, value)
                .map_err(|_| OcrError::Init(format!("could not set {variable:?} to {value}")))?;
        }
        Ok(Self { tess })
    }

    /// Read one image end to end, calling `on_stage` as each stage ends.
    ///
    /// The first pass reads the grey picture; only when it found no total is
    /// a second pass read: the lower two thirds, where totals are printed,
    /// Sauvola-binarised. Each field is then taken from whichever pass read
    /// it with more confidence.
    pub fn read(
        &mut self,
        image: &[u8],
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let grey = preprocess::decode(image)?;
        on_stage(Stage::Loaded);
        let prepared = preprocess::prepare_pass(&grey, PassSettings::GREY);
        on_stage(Stage::Preprocessed);
        let first = passes::reading_of(self.recognise(&prepared)?);
        let reading = if passes::needs_second_pass(&first) {
            let prepared = preprocess::prepare_pass(&grey, PassSettings::SAUVOLA);
            passes::combine(first, passes::reading_of(self.recognise(&prepared)?))
        } else {
            first
        };
        on_stage(Stage::Recognised);
        on_stage(Stage::Parsed);
        Ok(reading)
    }

    /// Use another page segmentation mode (for measuring alternatives).
    pub fn set_page_segmentation_mode(&mut self, psm: &str) -> Result<(), OcrError> {
        self.tess
            .set_variable(Variable::TesseditPagesegMode, psm)
            .map_err(|_| OcrError::Init(format!("no page segmentation mode {psm}")))
    }

    /// Tesseract's text and mean word confidence (0–100) for a prepared image.
    pub fn recognise(&mut self, prepared: &GrayImage) -> Result<(String, f32), OcrError> {
        self.tess
            .set_image_from_mem(&preprocess::encode_for_tesseract(prepared))
            .map_err(|e| OcrError::Recognition(e.to_string()))?;
        // Our scaling puts receipt text near 300 dpi; saying so stops
        // Tesseract guessing from (often missing or wrong) image metadata.
        self.tess.set_source_resolution(300);
        let text = self
            .tess
            .get_utf8_text()
            .map_err(|e| OcrError::Recognition(e.to_string()))?;
        Ok((text, self.tess.mean_text_conf() as f32))
    }
}
