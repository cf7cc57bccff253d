//! One Tesseract instance and the whole read of one receipt image with it.
//! `LepTess` is `Send` but not `Sync`: each OCR worker owns one engine and
//! moves it onto a blocking thread for each read.

use leptess::{LepTess, Variable};

use super::preprocess::{self, PreprocessError};
use super::{ReceiptReading, Stage, parse_receipt};

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

/// A ready Tesseract instance configured for receipts.
pub struct OcrEngine {
    tess: LepTess,
}

impl OcrEngine {
    pub fn new() -> Result<Self, OcrError> {
        let mut tess = LepTess::new(None, "eng").map_err(|e| OcrError::Init(e.to_string()))?;
        // Receipts are one column of lines: "a single uniform block of text"
        // finds far more of their amounts than automatic segmentation.
        tess.set_variable(Variable::TesseditPagesegMode, "6")
            .map_err(|_| OcrError::Init("could not set the page segmentation mode".into()))?;
        Ok(Self { tess })
    }

    /// Read one image end to end, calling `on_stage` as each stage ends.
    pub fn read(
        &mut self,
        image: &[u8],
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        on_stage(Stage::Loaded);
        let prepared = preprocess::prepare(image)?;
        on_stage(Stage::Preprocessed);
        let (text, ocr_confidence) = self.recognise(&preprocess::encode_for_tesseract(&prepared))?;
        on_stage(Stage::Recognised);
        let receipt = parse_receipt(&text);
        on_stage(Stage::Parsed);
        Ok(ReceiptReading { text, ocr_confidence, receipt })
    }

    fn recognise(&mut self, pgm: &[u8]) -> Result<(String, f32), OcrError> {
        self.tess
            .set_image_from_mem(pgm)
            .map_err(|e| OcrError::Recognition(e.to_string()))?;
        self.tess.set_source_resolution(300);
        let text = self
            .tess
            .get_utf8_text()
            .map_err(|e| OcrError::Recognition(e.to_string()))?;
        Ok((text, self.tess.mean_text_conf() as f32))
    }
}
