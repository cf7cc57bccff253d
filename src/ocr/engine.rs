//! The OCR engine a worker owns: Tesseract, PP-OCR, or both, and the policy
//! (`OCR_ENGINE`) deciding which reads each receipt. Neither engine is
//! `Sync`: each worker owns one `OcrEngine` and moves it onto a blocking
//! thread for each read.

use image::GrayImage;
use serde::{Deserialize, Serialize};

use super::ppocr::{Generation, ModelError, PpOcrEngine, PpOcrError};
use super::preprocess::{self, PassSettings, PreprocessError};
use super::settings::{EngineChoice, EngineSettings};
use super::tesseract::{TesseractEngine, TesseractError};
use super::{OcrPage, ReceiptReading, Stage, passes};
use crate::telemetry::spans::{JobStage, enter_stage};

/// Which engine produced a reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Tesseract,
    PpOcr,
    /// PP-OCRv6, `auto`'s second reading.
    #[serde(rename = "ppocr-v6")]
    PpOcrV6,
    /// A PDF's text layer, read without OCR.
    #[serde(rename = "pdf-text")]
    PdfText,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Tesseract => "tesseract",
            EngineKind::PpOcr => "ppocr",
            EngineKind::PpOcrV6 => "ppocr-v6",
            EngineKind::PdfText => "pdf-text",
        }
    }
}

/// Why an engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Tesseract(TesseractError),
    #[error(transparent)]
    PpOcr(#[from] ModelError),
}

/// Failures of a read, split by what the queue should do with the job.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// The image itself is bad: retrying cannot help.
    #[error(transparent)]
    Image(#[from] PreprocessError),
    /// An engine could not be started (missing language data or models).
    #[error("the OCR engine could not start: {0}")]
    Init(#[source] InitError),
    /// Tesseract failed while reading; may succeed on another attempt.
    #[error(transparent)]
    Tesseract(TesseractError),
    /// ONNX Runtime failed while reading; may succeed on another attempt.
    #[error(transparent)]
    PpOcr(#[from] PpOcrError),
    /// A document (a PDF, a HEIC/AVIF photo) that could not be read or
    /// converted; the inputs module says which and whether for good.
    #[error("{0}")]
    Document(Box<dyn DocumentError>),
}

/// Why a document other than a plain image could not be read. Defined
/// here, implemented where documents are read, so the engine does not
/// depend on the readers layered above it.
pub trait DocumentError: std::error::Error + Send + Sync + 'static {
    /// True when retrying the same bytes cannot succeed.
    fn is_permanent(&self) -> bool;
}

impl From<TesseractError> for OcrError {
    fn from(e: TesseractError) -> Self {
        match e {
            TesseractError::Init(_) => OcrError::Init(InitError::Tesseract(e)),
            TesseractError::Recognition(_) => OcrError::Tesseract(e),
        }
    }
}

impl From<ModelError> for OcrError {
    fn from(e: ModelError) -> Self {
        OcrError::Init(InitError::PpOcr(e))
    }
}

impl OcrError {
    /// True when retrying the same bytes cannot succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            OcrError::Document(e) => e.is_permanent(),
            other => matches!(other, OcrError::Image(_)),
        }
    }
}

/// Which engines a worker starts.
struct Readers {
    tesseract: bool,
    ppocr: bool,
    ppocr_v6: bool,
}

impl Readers {
    /// The engines `choice` reads with; under `auto`, those `policy` uses
    /// (the default policy never runs Tesseract, so it is not started).
    fn of(choice: EngineChoice, policy: passes::AutoPolicy) -> Self {
        use passes::AutoPolicy::*;
        match choice {
            EngineChoice::Tesseract => Self {
                tesseract: true,
                ppocr: false,
                ppocr_v6: false,
            },
            EngineChoice::Ppocr => Self {
                tesseract: false,
                ppocr: true,
                ppocr_v6: false,
            },
            EngineChoice::Auto => Self {
                tesseract: matches!(policy, TesseractThenPpOcr | PpOcrThenTesseract),
                ppocr: true,
                ppocr_v6: policy == PpOcrThenV6,
            },
        }
    }
}

/// A worker's engines and the policy choosing between them.
pub struct OcrEngine {
    choice: EngineChoice,
    /// `auto`'s policy, read once: the engines started are the ones it uses.
    policy: passes::AutoPolicy,
    tesseract: Option<TesseractEngine>,
    ppocr: Option<PpOcrEngine>,
    /// PP-OCRv6, for `auto`'s second reading.
    ppocr_v6: Option<PpOcrEngine>,
    /// MAX_IMAGE_PIXELS: larger images are refused before decoding.
    max_image_pixels: u64,
    /// MAX_PDF_PAGES: longer PDFs fail for good.
    max_pdf_pages: usize,
}

impl OcrEngine {
    /// Start the engines `settings` (and, under `auto`, its policy) reads
    /// with; a missing model or runtime is an `OcrError::Init` that says
    /// how to fetch it.
    pub fn new(settings: &EngineSettings) -> Result<Self, OcrError> {
        let policy = passes::auto_policy();
        Self::with_readers(settings, policy, Readers::of(settings.ocr_engine, policy))
    }

    /// Every engine, whatever the policy: for `eval`, which saves a pass
    /// of each.
    pub fn with_every_reader(settings: &EngineSettings) -> Result<Self, OcrError> {
        let every = Readers {
            tesseract: true,
            ppocr: true,
            ppocr_v6: true,
        };
        Self::with_readers(settings, passes::auto_policy(), every)
    }

    fn with_readers(
        settings: &EngineSettings,
        policy: passes::AutoPolicy,
        readers: Readers,
    ) -> Result<Self, OcrError> {
        let ppocr_of = |generation| {
            PpOcrEngine::new(&settings.ocr_models_dir, settings.ocr_alphabet, generation)
        };
        Ok(Self {
            choice: settings.ocr_engine,
            policy,
            tesseract: readers.tesseract.then(TesseractEngine::new).transpose()?,
            ppocr: readers
                .ppocr
                .then(|| ppocr_of(Generation::V4))
                .transpose()?,
            ppocr_v6: readers
                .ppocr_v6
                .then(|| ppocr_of(Generation::V6))
                .transpose()?,
            max_image_pixels: settings.max_image_pixels,
            max_pdf_pages: settings.max_pdf_pages,
        })
    }

    /// The policy this engine follows.
    pub fn choice(&self) -> EngineChoice {
        self.choice
    }

    /// The PP-OCR engine, when this engine has one (for measuring).
    pub fn ppocr_mut(&mut self) -> Option<&mut PpOcrEngine> {
        self.ppocr.as_mut()
    }

    /// The PP-OCRv6 engine, when this engine has one (for measuring).
    pub fn ppocr_v6_mut(&mut self) -> Option<&mut PpOcrEngine> {
        self.ppocr_v6.as_mut()
    }

    /// The Tesseract engine, when this engine has one (for measuring).
    pub fn tesseract_mut(&mut self) -> Option<&mut TesseractEngine> {
        self.tesseract.as_mut()
    }

    /// MAX_IMAGE_PIXELS, for documents rasterised or converted elsewhere.
    pub fn max_image_pixels(&self) -> u64 {
        self.max_image_pixels
    }

    pub fn max_pdf_pages(&self) -> usize {
        self.max_pdf_pages
    }

    /// Read one image (JPEG, PNG, TIFF, WebP, BMP, GIF) end to end,
    /// calling `on_stage` as each stage ends. Uploads, which may also be
    /// PDFs or HEIC/AVIF photos, go through `inputs::read_upload`.
    pub fn read_image(
        &mut self,
        image: &[u8],
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let grey = {
            let _stage = enter_stage(JobStage::Preprocess);
            preprocess::decode_within(image, self.max_image_pixels)?
        };
        on_stage(Stage::Loaded);
        self.read_grey(&grey, on_stage)
    }

    /// Read a decoded, upright grey picture with this engine's policy.
    pub fn read_grey(
        &mut self,
        grey: &GrayImage,
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let reading = match self.choice {
            EngineChoice::Tesseract => self.read_tesseract(grey, on_stage)?,
            EngineChoice::Ppocr => self.read_ppocr(grey, on_stage)?,
            EngineChoice::Auto => self.read_auto(grey, on_stage)?,
        };
        on_stage(Stage::Recognised);
        on_stage(Stage::Parsed);
        Ok(reading)
    }

    /// One page recognised once, by PP-OCR when this engine has it, else by
    /// Tesseract's first pass: for the pages of a longer document, which
    /// are parsed together afterwards. The confidence is 0–100.
    pub fn recognise_page(
        &mut self,
        grey: &GrayImage,
    ) -> Result<(OcrPage, f32, EngineKind), OcrError> {
        if let Some(ppocr) = self.ppocr.as_mut() {
            let page = ppocr.read_page(grey)?;
            let confidence = page.confidence() * 100.0;
            return Ok((page, confidence, EngineKind::PpOcr));
        }
        let tesseract = self.tesseract.as_mut().ok_or_else(missing_engine)?;
        let prepared = preprocess::prepare_placed(grey, PassSettings::GREY);
        let (page, confidence) = tesseract.recognise(&prepared.image, &prepared.placement)?;
        Ok((page, confidence, EngineKind::Tesseract))
    }

    /// Tesseract: the grey picture first; only when that found no total,
    /// a second, Sauvola-binarised pass over the lower two thirds, each
    /// field then taken from whichever pass read it with more confidence.
    fn read_tesseract(
        &mut self,
        grey: &GrayImage,
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let tesseract = self.tesseract.as_mut().ok_or_else(missing_engine)?;
        let first = tesseract_pass(tesseract, grey, PassSettings::GREY, on_stage)?;
        if !passes::needs_second_pass(&first) {
            return Ok(first);
        }
        let second = tesseract_pass(tesseract, grey, PassSettings::SAUVOLA, &mut |_| {})?;
        let _stage = enter_stage(JobStage::Parse);
        Ok(passes::combine(first, second))
    }

    fn read_ppocr(
        &mut self,
        grey: &GrayImage,
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let ppocr = self.ppocr.as_mut().ok_or_else(missing_engine)?;
        ppocr_reading(ppocr, EngineKind::PpOcr, grey, on_stage)
    }

    fn read_ppocr_v6(&mut self, grey: &GrayImage) -> Result<ReceiptReading, OcrError> {
        let ppocr = self.ppocr_v6.as_mut().ok_or_else(missing_engine)?;
        ppocr_reading(ppocr, EngineKind::PpOcrV6, grey, &mut |_| {})
    }

    /// `auto`: see `passes::AUTO` and docs/ocr-accuracy.md.
    fn read_auto(
        &mut self,
        grey: &GrayImage,
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        match self.policy {
            passes::AutoPolicy::PpOcr => self.read_ppocr(grey, on_stage),
            passes::AutoPolicy::TesseractThenPpOcr => {
                let first = self.read_tesseract(grey, on_stage)?;
                if passes::is_confident(&first) {
                    return Ok(first);
                }
                let second = self.read_ppocr(grey, &mut |_| {})?;
                let margin = passes::PPOCR_PREFERENCE;
                let _stage = enter_stage(JobStage::Parse);
                Ok(passes::combine_preferring_first(second, first, margin))
            }
            passes::AutoPolicy::PpOcrThenTesseract => {
                self.read_ppocr_then_tesseract(grey, on_stage)
            }
            passes::AutoPolicy::PpOcrThenV6 => {
                let first = self.read_ppocr(grey, on_stage)?;
                if !passes::wants_v6(&first) {
                    return Ok(first);
                }
                let second = match self.read_ppocr_v6(grey) {
                    Ok(second) => second,
                    // Read again only for its name: the first reading stands.
                    Err(e) if !passes::lacks_date_or_total(&first) => {
                        tracing::warn!(error = %e, "PP-OCRv6 could not read the receipt again for its store name");
                        return Ok(first);
                    }
                    Err(e) => return Err(e),
                };
                let _stage = enter_stage(JobStage::Parse);
                Ok(passes::combine_with_v6(first, second))
            }
        }
    }

    /// PP-OCR first; when that reading has no date or no sure total,
    /// Tesseract reads the picture too and the readings are merged, the
    /// first's fields kept unless the second is clearly surer.
    fn read_ppocr_then_tesseract(
        &mut self,
        grey: &GrayImage,
        on_stage: &mut dyn FnMut(Stage),
    ) -> Result<ReceiptReading, OcrError> {
        let first = self.read_ppocr(grey, on_stage)?;
        if !passes::lacks_date_or_total(&first) {
            return Ok(first);
        }
        let second = self.read_tesseract(grey, &mut |_| {})?;
        let margin = passes::PPOCR_PREFERENCE;
        let _stage = enter_stage(JobStage::Parse);
        Ok(passes::combine_preferring_first(first, second, margin))
    }
}

/// One PP-OCR reading by `ppocr`, recorded as `engine`'s.
fn ppocr_reading(
    ppocr: &mut PpOcrEngine,
    engine: EngineKind,
    grey: &GrayImage,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<ReceiptReading, OcrError> {
    on_stage(Stage::Preprocessed);
    // PP-OCR prepares its own input inside detection and recognition.
    let page = {
        let _stage = enter_stage(JobStage::Recognise);
        ppocr.read_page(grey)?
    };
    let confidence = page.confidence() * 100.0;
    Ok(passes::reading_of((page, confidence), engine))
}

/// One Tesseract pass: prepare the picture with `settings`, recognise it,
/// parse the text; `on_stage` hears when the picture is ready.
fn tesseract_pass(
    tesseract: &mut TesseractEngine,
    grey: &GrayImage,
    settings: PassSettings,
    on_stage: &mut dyn FnMut(Stage),
) -> Result<ReceiptReading, OcrError> {
    let prepared = {
        let _stage = enter_stage(JobStage::Preprocess);
        preprocess::prepare_placed(grey, settings)
    };
    on_stage(Stage::Preprocessed);
    let page = {
        let _stage = enter_stage(JobStage::Recognise);
        tesseract.recognise(&prepared.image, &prepared.placement)?
    };
    Ok(passes::reading_of(page, EngineKind::Tesseract))
}

/// An engine the policy needs was not started: a programming error in
/// `OcrEngine::new`, reported rather than panicking a worker.
fn missing_engine() -> OcrError {
    OcrError::Tesseract(TesseractError::Recognition(
        "the engine this policy needs was not started".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::passes::AutoPolicy;
    use super::*;

    fn started(choice: EngineChoice, policy: AutoPolicy) -> (bool, bool, bool) {
        let readers = Readers::of(choice, policy);
        (readers.tesseract, readers.ppocr, readers.ppocr_v6)
    }

    #[test]
    fn a_worker_starts_only_the_engines_its_policy_reads_with() {
        use AutoPolicy::*;
        use EngineChoice::{Auto, Ppocr, Tesseract};
        // (choice, policy) → (Tesseract, PP-OCRv4, PP-OCRv6) started.
        let cases = [
            (Auto, PpOcrThenV6, (false, true, true)),
            (Auto, PpOcrThenTesseract, (true, true, false)),
            (Auto, TesseractThenPpOcr, (true, true, false)),
            (Auto, PpOcr, (false, true, false)),
            (Ppocr, PpOcrThenV6, (false, true, false)),
            (Tesseract, PpOcrThenV6, (true, false, false)),
        ];
        for (choice, policy, expected) in cases {
            assert_eq!(started(choice, policy), expected, "{choice:?} {policy:?}");
        }
    }
}
