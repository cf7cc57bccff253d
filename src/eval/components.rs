//! Saving each engine's text apart, so that the parser can be re-scored
//! exactly as `auto` combines readings. A reading under `auto` may be two
//! or three parses merged field by field (PP-OCR, PP-OCRv6, Tesseract's
//! grey pass, its Sauvola pass); parsing their joined text is not the same
//! thing. So with `RECEIPT_OCR_EVAL_TEXT_DIR`, every image is also read by
//! each engine pass on its own (`<stem>.ppocr.txt`, `<stem>.ppocr6.txt`,
//! `<stem>.tess1.txt`, `<stem>.tess2.txt`), and `RECEIPT_OCR_EVAL_TEXTS`
//! replays the engine's choice of passes and its merge on those texts.

use std::path::{Path, PathBuf};

use crate::ocr::passes::{self, AutoPolicy};
use crate::ocr::preprocess::{self, PassSettings};
use crate::ocr::{
    BBox, EngineChoice, EngineKind, EngineSettings, OcrEngine, OcrError, OcrLine, OcrPage, OcrWord,
    ParsedReceipt, ReceiptReading,
};

/// The texts one image gives, one per engine pass, and for the PP-OCR
/// passes how sure the recogniser was of each line (its words' mean
/// confidence: `auto` reads a store name again when its line was unsure).
pub struct PassTexts {
    pub ppocr: String,
    pub ppocr_v6: String,
    pub grey: String,
    pub sauvola: String,
    pub ppocr_lines: Vec<f32>,
    pub ppocr_v6_lines: Vec<f32>,
}

/// The files of the PP-OCR passes' line confidences, one number a line.
const CONFIDENCE_SUFFIXES: [&str; 2] = ["ppocr.conf", "ppocr6.conf"];

const SUFFIXES: [&str; 4] = ["ppocr", "ppocr6", "tess1", "tess2"];

fn path_of(dir: &Path, stem: &std::ffi::OsStr, suffix: &str) -> PathBuf {
    let mut name = stem.to_os_string();
    name.push(format!(".{suffix}.txt"));
    dir.join(name)
}

impl PassTexts {
    /// Read every pass of one upright grey image.
    fn read(engine: &mut OcrEngine, image: &Path) -> Result<Self, String> {
        let fail = |e: OcrError| e.to_string();
        let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
        let grey = preprocess::decode_within(&bytes, engine.max_image_pixels())
            .map_err(|e| fail(e.into()))?;
        let ppocr = engine.ppocr_mut().ok_or("no PP-OCR engine")?;
        let ppocr = ppocr.read_page(&grey).map_err(|e| fail(e.into()))?;
        let v6 = engine.ppocr_v6_mut().ok_or("no PP-OCRv6 engine")?;
        let ppocr_v6 = v6.read_page(&grey).map_err(|e| fail(e.into()))?;
        let line_confidences =
            |page: &OcrPage| page.lines.iter().map(OcrLine::confidence).collect();
        let tesseract = engine.tesseract_mut().ok_or("no Tesseract engine")?;
        let mut pass = |settings| -> Result<String, String> {
            let prepared = preprocess::prepare_placed(&grey, settings);
            let (page, _) = tesseract
                .recognise(&prepared.image, &prepared.placement)
                .map_err(|e| fail(e.into()))?;
            Ok(page.text())
        };
        Ok(Self {
            ppocr_lines: line_confidences(&ppocr),
            ppocr_v6_lines: line_confidences(&ppocr_v6),
            ppocr: ppocr.text(),
            ppocr_v6: ppocr_v6.text(),
            grey: pass(PassSettings::GREY)?,
            sauvola: pass(PassSettings::SAUVOLA)?,
        })
    }

    /// The texts saved for `stem` in `dir`, when PP-OCR's and both Tesseract
    /// passes' are there (PP-OCRv6's may be missing: empty then).
    pub fn load(dir: &Path, stem: &std::ffi::OsStr) -> Option<Self> {
        let read = |suffix| std::fs::read_to_string(path_of(dir, stem, suffix)).ok();
        // Folders saved before the confidences were: every line sure.
        let confidences = |suffix| {
            let numbers = read(suffix).unwrap_or_default();
            // One number a line: an unreadable one must not shift the rest.
            numbers.lines().map(|n| n.parse().unwrap_or(1.0)).collect()
        };
        Some(Self {
            ppocr_lines: confidences(CONFIDENCE_SUFFIXES[0]),
            ppocr_v6_lines: confidences(CONFIDENCE_SUFFIXES[1]),
            ppocr: read(SUFFIXES[0])?,
            // Texts saved before PP-OCRv6 read a second time have none.
            ppocr_v6: read(SUFFIXES[1]).unwrap_or_default(),
            grey: read(SUFFIXES[2])?,
            sauvola: read(SUFFIXES[3])?,
        })
    }

    fn save(&self, dir: &Path, stem: &std::ffi::OsStr) -> std::io::Result<()> {
        let texts = [&self.ppocr, &self.ppocr_v6, &self.grey, &self.sauvola];
        for (suffix, text) in SUFFIXES.iter().zip(texts) {
            std::fs::write(path_of(dir, stem, suffix), text)?;
        }
        let confidences = [&self.ppocr_lines, &self.ppocr_v6_lines];
        for (suffix, lines) in CONFIDENCE_SUFFIXES.iter().zip(confidences) {
            let numbers: Vec<String> = lines.iter().map(f32::to_string).collect();
            std::fs::write(path_of(dir, stem, suffix), numbers.join("\n"))?;
        }
        Ok(())
    }

    /// What `OcrEngine::read` would return for this image under `auto`
    /// (or `OCR_AUTO_POLICY`), with the same choices and merges as
    /// `engine.rs`, parsing each pass's text on its own.
    pub fn auto_receipt(&self) -> ParsedReceipt {
        let ppocr = || reading_of(&self.ppocr, &self.ppocr_lines, EngineKind::PpOcr);
        let v6 = || reading_of(&self.ppocr_v6, &self.ppocr_v6_lines, EngineKind::PpOcrV6);
        let tesseract = || {
            let first = reading_of(&self.grey, &[], EngineKind::Tesseract);
            match passes::needs_second_pass(&first) {
                true => {
                    let second = reading_of(&self.sauvola, &[], EngineKind::Tesseract);
                    passes::combine(first, second)
                }
                false => first,
            }
        };
        let margin = passes::PPOCR_PREFERENCE;
        let reading = match passes::auto_policy() {
            AutoPolicy::PpOcr => ppocr(),
            AutoPolicy::TesseractThenPpOcr => match tesseract() {
                first if passes::is_confident(&first) => first,
                first => passes::combine_preferring_first(ppocr(), first, margin),
            },
            AutoPolicy::PpOcrThenTesseract => match ppocr() {
                first if !passes::lacks_date_or_total(&first) => first,
                first => passes::combine_preferring_first(first, tesseract(), margin),
            },
            AutoPolicy::PpOcrThenV6 => match ppocr() {
                first if !passes::wants_v6(&first) => first,
                first => passes::combine_with_v6(first, v6()),
            },
        };
        reading.receipt
    }
}

/// A reading of `text` as if an engine had read it: one word a line (the
/// parser sees only the text, and line `i` stays line `i`), as sure as
/// `confidences[i]` (sure where unknown).
fn reading_of(text: &str, confidences: &[f32], engine: EngineKind) -> ReceiptReading {
    let line = |(i, l): (usize, &str)| {
        OcrLine::from_words(vec![OcrWord {
            text: l.to_string(),
            bbox: BBox::default(),
            confidence: confidences.get(i).copied().unwrap_or(1.0),
        }])
    };
    let page = OcrPage {
        lines: text.split('\n').enumerate().map(line).collect(),
    };
    passes::reading_of((page, 0.0), engine)
}

/// Read every image with each pass apart, save the texts in `dir`, and
/// return how many replays agree with what the pipeline itself parsed
/// (`pipeline[i]`, when the pipeline ran `auto`).
pub fn save(
    images: &[PathBuf],
    threads: usize,
    dir: &Path,
    pipeline: &[Option<ParsedReceipt>],
) -> anyhow::Result<(usize, usize)> {
    let settings = EngineSettings::with_engine(EngineChoice::Auto);
    let new_engine = || OcrEngine::with_every_reader(&settings);
    let read = |engine: &mut OcrEngine, image: &PathBuf| PassTexts::read(engine, image);
    let texts = super::runner::parallel_map(images, threads, new_engine, read)?;
    let (mut agree, mut compared) = (0, 0);
    for ((image, texts), parsed) in images.iter().zip(texts).zip(pipeline) {
        let Ok(texts) = texts else { continue };
        texts.save(dir, image.file_stem().unwrap_or_default())?;
        if let Some(parsed) = parsed {
            compared += 1;
            agree += usize::from(&texts.auto_receipt() == parsed);
        }
    }
    Ok((agree, compared))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn texts(ppocr: &str, second: &str) -> PassTexts {
        PassTexts {
            ppocr: ppocr.into(),
            ppocr_v6: second.into(),
            grey: second.into(),
            sauvola: String::new(),
            ppocr_lines: Vec::new(),
            ppocr_v6_lines: Vec::new(),
        }
    }

    #[test]
    fn a_sure_ppocr_reading_is_taken_alone() {
        let passes = texts(
            "CORNER MARKET\n03/14/2024\nBread 2.50\nTOTAL 2.50",
            "OTHER NAME\n04/15/2024\nTOTAL 9.99",
        );
        let receipt = passes.auto_receipt();
        assert_eq!(receipt.store_name.as_deref(), Some("CORNER MARKET"));
        assert_eq!(receipt.purchase_date, NaiveDate::from_ymd_opt(2024, 3, 14));
    }

    #[test]
    fn a_date_missing_from_ppocr_comes_from_the_second_reading() {
        let passes = texts(
            "CORNER MARKET\nBread 2.50\nTOTAL 2.50",
            "C0RNER MKT\nDate: 03/14/2024\nBread 2.50",
        );
        let receipt = passes.auto_receipt();
        assert_eq!(receipt.purchase_date, NaiveDate::from_ymd_opt(2024, 3, 14));
        assert_eq!(receipt.store_name.as_deref(), Some("CORNER MARKET"));
        assert_eq!(
            receipt.total_amount.map(|t| t.to_string()).as_deref(),
            Some("2.50")
        );
    }
}
