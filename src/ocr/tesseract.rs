//! One Tesseract instance reading prepared pictures into pages. `LepTess`
//! is `Send` but not `Sync`: each OCR worker owns one engine and moves it
//! onto a blocking thread for each read.

use image::GrayImage;
use leptess::{LepTess, Variable};

use super::page::{OcrLine, OcrPage, OcrWord};
use super::preprocess::{self, Placement};

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

/// Why Tesseract failed.
#[derive(Debug, thiserror::Error)]
pub enum TesseractError {
    #[error(
        "Tesseract could not start with language `eng`: {0}. Install `tesseract-ocr-eng` \
         (Debian/Ubuntu) or set TESSDATA_PREFIX to the folder holding eng.traineddata"
    )]
    Init(String),
    #[error("Tesseract failed while reading the image: {0}")]
    Recognition(String),
}

/// A ready Tesseract instance configured for receipts.
pub struct TesseractEngine {
    tess: LepTess,
}

impl TesseractEngine {
    pub fn new() -> Result<Self, TesseractError> {
        let mut tess =
            LepTess::new(None, "eng").map_err(|e| TesseractError::Init(e.to_string()))?;
        for (variable, value) in SETTINGS {
            tess.set_variable(variable, value).map_err(|_| {
                TesseractError::Init(format!("could not set {variable:?} to {value}"))
            })?;
        }
        Ok(Self { tess })
    }

    /// Use another page segmentation mode (for measuring alternatives).
    pub fn set_page_segmentation_mode(&mut self, psm: &str) -> Result<(), TesseractError> {
        self.tess
            .set_variable(Variable::TesseditPagesegMode, psm)
            .map_err(|_| TesseractError::Init(format!("no page segmentation mode {psm}")))
    }

    /// Read a prepared picture: its page (boxes in the decoded image's
    /// pixels, through `placement`) and the mean word confidence (0–100).
    pub fn recognise(
        &mut self,
        prepared: &GrayImage,
        placement: &Placement,
    ) -> Result<(OcrPage, f32), TesseractError> {
        let failed = |e: String| TesseractError::Recognition(e);
        self.tess
            .set_image_from_mem(&preprocess::encode_for_tesseract(prepared))
            .map_err(|e| failed(e.to_string()))?;
        // Our scaling puts receipt text near 300 dpi; saying so stops
        // Tesseract guessing from (often missing or wrong) image metadata.
        self.tess.set_source_resolution(300);
        let tsv = self
            .tess
            .get_tsv_text(0)
            .map_err(|e| failed(e.to_string()))?;
        Ok((
            page_of_tsv(&tsv, placement),
            self.tess.mean_text_conf() as f32,
        ))
    }
}

/// Tesseract's TSV (level, page, block, paragraph, line, word, left, top,
/// width, height, confidence, text): its words grouped into lines.
pub fn page_of_tsv(tsv: &str, placement: &Placement) -> OcrPage {
    let mut lines: Vec<OcrLine> = Vec::new();
    let mut current_key = None;
    let mut words = Vec::new();
    for (key, word) in tsv.lines().filter_map(|row| word_of_row(row, placement)) {
        if current_key.is_some_and(|k| k != key) {
            lines.push(OcrLine::from_words(std::mem::take(&mut words)));
        }
        current_key = Some(key);
        words.push(word);
    }
    if !words.is_empty() {
        lines.push(OcrLine::from_words(words));
    }
    OcrPage { lines }
}

/// A word row's line key (block, paragraph, line) and word; `None` for
/// other levels and empty words.
fn word_of_row(row: &str, placement: &Placement) -> Option<((u32, u32, u32), OcrWord)> {
    let fields: Vec<&str> = row.splitn(12, '\t').collect();
    let [
        level,
        _,
        block,
        par,
        line,
        _,
        left,
        top,
        width,
        height,
        conf,
        text,
    ] = fields[..]
    else {
        return None;
    };
    let text = text.trim();
    if level != "5" || text.is_empty() {
        return None;
    }
    let n = |s: &str| s.parse::<u32>().ok();
    let key = (n(block)?, n(par)?, n(line)?);
    let bbox = placement.to_image(n(left)?, n(top)?, n(width)?, n(height)?);
    let confidence = (conf.parse::<f32>().ok()? / 100.0).clamp(0.0, 1.0);
    let word = OcrWord {
        text: text.to_string(),
        bbox,
        confidence,
    };
    Some((key, word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::page::BBox;

    #[test]
    fn tsv_words_are_grouped_by_line_and_placed_in_image_pixels() {
        let tsv = "1\t1\t0\t0\t0\t0\t0\t0\t800\t600\t-1\t\n\
                   4\t1\t1\t1\t1\t0\t10\t10\t300\t20\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t10\t100\t20\t96.5\tTOTAL\n\
                   5\t1\t1\t1\t1\t2\t200\t12\t60\t18\t90\t3.00\n\
                   5\t1\t1\t1\t2\t1\t10\t40\t80\t20\t80\tTHANKS\n\
                   5\t1\t1\t1\t2\t2\t100\t40\t10\t20\t95\t \n";
        let placement = Placement {
            left: 5.0,
            top: 100.0,
            scale_x: 0.5,
            scale_y: 0.5,
        };
        let page = page_of_tsv(tsv, &placement);
        assert_eq!(page.text(), "TOTAL 3.00\nTHANKS");
        assert_eq!(page.lines[0].words[0].bbox, BBox::new(10, 105, 50, 10));
        assert!((page.lines[0].words[0].confidence - 0.965).abs() < 1e-6);
    }
}
