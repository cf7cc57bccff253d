//! Choosing between readings. A second reading (another Tesseract pass, or
//! PP-OCRv6 after PP-OCRv4 under `auto`) costs a whole recognition, so it
//! runs only when the first looks incomplete; then each field is taken from
//! whichever reading was more confident of it.

use super::engine::EngineKind;
use super::page::OcrPage;
use super::{ReceiptReading, parse_receipt};
use crate::telemetry::spans::{JobStage, enter_stage};

/// A first pass whose total is less sure than this gets a second pass.
const SECOND_PASS_BELOW: f32 = 0.5;

/// How `OCR_ENGINE=auto` reads a receipt (measured in docs/ocr-accuracy.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPolicy {
    /// PP-OCR alone.
    PpOcr,
    /// Tesseract, then PP-OCR when Tesseract's reading is not confident.
    TesseractThenPpOcr,
    /// PP-OCR, then Tesseract when PP-OCR found no date or no sure total.
    PpOcrThenTesseract,
    /// PP-OCR, then PP-OCRv6 when PP-OCR found no date or no sure total.
    PpOcrThenV6,
}

/// The policy `auto` follows.
pub const AUTO: AutoPolicy = AutoPolicy::PpOcrThenV6;

/// `AUTO`, unless `OCR_AUTO_POLICY` (`ppocr`, `fallback`, `ppocr-first` or
/// `ppocr-v6`) names another (for measuring the alternatives with
/// `receipt-ocr eval`).
pub fn auto_policy() -> AutoPolicy {
    match std::env::var("OCR_AUTO_POLICY").as_deref() {
        Ok("ppocr") => AutoPolicy::PpOcr,
        Ok("fallback") => AutoPolicy::TesseractThenPpOcr,
        Ok("ppocr-first") => AutoPolicy::PpOcrThenTesseract,
        Ok("ppocr-v6") => AutoPolicy::PpOcrThenV6,
        _ => AUTO,
    }
}

/// True when a PP-OCR reading missed the date or is unsure of the total,
/// the fields a second reading most often adds (measured).
pub fn lacks_date_or_total(reading: &ReceiptReading) -> bool {
    reading.receipt.purchase_date.is_none()
        || reading.receipt.confidence.total_amount < CONFIDENT_TOTAL
}

/// Parse a page into a reading by `engine`; `ocr_confidence` is 0–100.
pub fn reading_of((page, ocr_confidence): (OcrPage, f32), engine: EngineKind) -> ReceiptReading {
    let _stage = enter_stage(JobStage::Parse);
    let text = page.text();
    let receipt = parse_receipt(&text);
    ReceiptReading {
        text,
        ocr_confidence,
        receipt,
        page,
        engines: vec![engine],
    }
}

/// True when the first pass missed what every receipt has: a total.
pub fn needs_second_pass(first: &ReceiptReading) -> bool {
    first.receipt.confidence.total_amount < SECOND_PASS_BELOW
}

/// Tesseract's reading is kept under `auto` when its total is this sure…
const CONFIDENT_TOTAL: f32 = 0.7;
/// …and its store name this sure, and it found a date.
const CONFIDENT_STORE: f32 = 0.5;

/// True when a reading has a sure total, a date and a plausible store.
pub fn is_confident(reading: &ReceiptReading) -> bool {
    let (receipt, confidence) = (&reading.receipt, &reading.receipt.confidence);
    confidence.total_amount >= CONFIDENT_TOTAL
        && receipt.purchase_date.is_some()
        && confidence.store_name >= CONFIDENT_STORE
}

/// Under `auto`, the second reading's field (PP-OCRv6's, or Tesseract's)
/// replaces the first PP-OCR reading's only when it is this much more
/// confident: the first reading is the better one (measured in
/// docs/ocr-accuracy.md), and Tesseract is confident of misread names.
pub const PPOCR_PREFERENCE: f32 = 0.2;

/// Merge two readings of one image field by field, each from the reading
/// more confident of it. The page kept is the first's lines then the
/// second's (so `text` stays the page's lines joined by '\n'); the OCR
/// confidence is that of the reading the total came from.
pub fn combine(first: ReceiptReading, second: ReceiptReading) -> ReceiptReading {
    combine_preferring_first(first, second, 0.0)
}

/// `combine`, where a field comes from `second` only when it is more than
/// `margin` more confident of it.
pub fn combine_preferring_first(
    first: ReceiptReading,
    mut second: ReceiptReading,
    margin: f32,
) -> ReceiptReading {
    shift_lines(&mut second.receipt, first.page.lines.len());
    let page = first.page.clone().followed_by(second.page.clone());
    let mut engines = first.engines.clone();
    engines.extend(second.engines.iter().filter(|e| !first.engines.contains(e)));
    let (a, b) = (&first.receipt.confidence, &second.receipt.confidence);
    let total_from_second = b.total_amount > a.total_amount + margin;
    let store_from_second = b.store_name > a.store_name + margin;
    let date_from_second = b.purchase_date > a.purchase_date + margin;
    let items_from_second = b.items > a.items + margin;
    let (mut base, other) = match total_from_second {
        true => (second, first),
        false => (first, second),
    };
    let take_other = |from_second: bool| from_second != total_from_second;
    let receipt = &mut base.receipt;
    if take_other(store_from_second) {
        receipt.store_name = other.receipt.store_name.clone();
        receipt.lines.store_name = other.receipt.lines.store_name;
        receipt.confidence.store_name = other.receipt.confidence.store_name;
    }
    if take_other(date_from_second) {
        receipt.purchase_date = other.receipt.purchase_date;
        receipt.lines.purchase_date = other.receipt.lines.purchase_date;
        receipt.confidence.purchase_date = other.receipt.confidence.purchase_date;
    }
    if take_other(items_from_second) {
        receipt.items = other.receipt.items.clone();
        receipt.confidence.items = other.receipt.confidence.items;
    }
    receipt.currency = receipt.currency.take().or(other.receipt.currency);
    receipt.confidence.overall = super::parse::overall_confidence(&receipt.confidence);
    base.text = page.text();
    base.page = page;
    base.engines = engines;
    base
}

/// The second reading's lines follow the first's in the combined page:
/// its line numbers move down by the first's line count.
fn shift_lines(receipt: &mut super::ParsedReceipt, by: usize) {
    receipt.lines = receipt.lines.shifted(by);
    for item in &mut receipt.items {
        item.line = item.line.map(|l| l + by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocr::page::{BBox, OcrLine, OcrWord};

    fn page(text: &str) -> OcrPage {
        let line = |(i, l): (usize, &str)| {
            let words = l.split_whitespace().map(|w| OcrWord {
                text: w.to_string(),
                bbox: BBox::new(0, i as u32 * 20, 10, 10),
                confidence: 0.8,
            });
            OcrLine::from_words(words.collect())
        };
        OcrPage {
            lines: text.lines().enumerate().map(line).collect(),
        }
    }

    fn reading(text: &str, engine: EngineKind) -> ReceiptReading {
        reading_of((page(text), 80.0), engine)
    }

    #[test]
    fn each_field_comes_from_the_pass_that_read_it_best() {
        let first = reading(
            "CORNER MARKET\nDate: 03/14/2024\nT0TL garbled",
            EngineKind::Tesseract,
        );
        assert!(needs_second_pass(&first));
        let second = reading("Bread 3.00\nTOTAL $3.00", EngineKind::PpOcr);
        let merged = combine(first, second);
        let total_line = merged.receipt.lines.total_amount.expect("a total line");
        assert_eq!(merged.text.lines().nth(total_line), Some("TOTAL $3.00"));
        assert_eq!(merged.receipt.store_name.as_deref(), Some("CORNER MARKET"));
        let total = merged.receipt.total_amount.map(|t| t.to_string());
        assert_eq!(total.as_deref(), Some("3.00"));
        assert!(merged.receipt.purchase_date.is_some());
        assert_eq!(
            merged.engines,
            vec![EngineKind::Tesseract, EngineKind::PpOcr]
        );
    }

    #[test]
    fn combined_text_is_the_first_pages_lines_then_the_seconds_with_no_blank_line() {
        let first = reading("CORNER MARKET\nT0TL garbled", EngineKind::Tesseract);
        let second = reading("Bread 3.00\nTOTAL $3.00", EngineKind::Tesseract);
        let merged = combine(first, second);
        assert_eq!(
            merged.text,
            "CORNER MARKET\nT0TL garbled\nBread 3.00\nTOTAL $3.00"
        );
        let lines: Vec<&str> = merged.text.lines().collect();
        for (i, line) in merged.page.lines.iter().enumerate() {
            assert_eq!(lines[i], line.text());
        }
        assert_eq!(merged.engines, vec![EngineKind::Tesseract]);
    }
}
