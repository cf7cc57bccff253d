//! Choosing between readings. A second reading (another Tesseract pass, or
//! PP-OCRv6 after PP-OCRv4 under `auto`) costs a whole recognition, so it
//! runs only when the first looks incomplete or read its store name unsure;
//! then each field is taken from whichever reading was more confident of it.

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
    /// PP-OCR, then PP-OCRv6 when PP-OCR found no date or no sure total,
    /// or read its store name's line unsure.
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

/// A store name whose line PP-OCR recognised with a mean word confidence
/// under this was read unsure (a logo, `IRE LIU` for Firefly's; damaged
/// letters, `SELOSTH EKSLOSIF`): PP-OCRv6 reads the receipt too. Any value
/// from 0.85 to 0.97 picks the same names on the evaluation set; in 0.9's
/// case v6 reads one receipt in eleven for it (docs/ocr-accuracy.md).
pub const UNSURE_NAME_READ: f32 = 0.9;

/// How sure the engine was of the words on the store name's line (0–1).
pub fn name_read_confidence(reading: &ReceiptReading) -> Option<f32> {
    let line = reading.receipt.lines.store_name?;
    reading.page.lines.get(line).map(|l| l.confidence())
}

/// True when the store name's line was recognised unsure.
pub fn name_read_unsure(reading: &ReceiptReading) -> bool {
    name_read_confidence(reading).is_some_and(|c| c < UNSURE_NAME_READ)
}

/// The second reading's store name replaces the first's when the first's
/// line was read unsure, the second read its own name's line surer, and
/// the parser finds it at least as name-like.
fn second_name_is_surer(first: &ReceiptReading, second: &ReceiptReading) -> bool {
    let (Some(read_first), Some(read_second)) =
        (name_read_confidence(first), name_read_confidence(second))
    else {
        return false;
    };
    read_first < UNSURE_NAME_READ
        && read_second > read_first
        && second.receipt.confidence.store_name >= first.receipt.confidence.store_name
}

/// True when `auto` has PP-OCRv6 read a receipt PP-OCR read first.
pub fn wants_v6(first: &ReceiptReading) -> bool {
    lacks_date_or_total(first) || name_read_unsure(first)
}

/// `auto`'s merge of PP-OCR's reading and PP-OCRv6's: the fields of a
/// reading with no date or no sure total by [`combine_preferring_first`];
/// of any other (v6 read it for its unsure name) none but a currency the
/// first found none of. Then, in both cases, the store name is v6's when
/// v6 read it surer ([`UNSURE_NAME_READ`], `second_name_is_surer`). The
/// page (and so `text`) is always both readings' lines, and `engines`
/// names both, as v6 did read the receipt.
pub fn combine_with_v6(first: ReceiptReading, second: ReceiptReading) -> ReceiptReading {
    let margin = match lacks_date_or_total(&first) {
        true => PPOCR_PREFERENCE,
        false => f32::INFINITY,
    };
    let name_from_second = second_name_is_surer(&first, &second);
    let shift = first.page.lines.len();
    let name = (
        second.receipt.store_name.clone(),
        second.receipt.lines.store_name.map(|l| l + shift),
        second.receipt.confidence.store_name,
    );
    let mut merged = combine_preferring_first(first, second, margin);
    if name_from_second {
        let receipt = &mut merged.receipt;
        (
            receipt.store_name,
            receipt.lines.store_name,
            receipt.confidence.store_name,
        ) = name;
        receipt.confidence.overall = super::parse::overall_confidence(&receipt.confidence);
    }
    merged
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

    /// A PP-OCR reading of `text` whose first line (the name) was read
    /// with word confidence `sure` (0–1).
    fn read_name_with(text: &str, sure: f32, engine: EngineKind) -> ReceiptReading {
        let mut page = page(text);
        for word in &mut page.lines[0].words {
            word.confidence = sure;
        }
        reading_of((page, 80.0), engine)
    }

    #[test]
    fn a_name_read_unsure_comes_from_v6_when_v6_read_its_own_surer() {
        let rest = "\nDate: 03/14/2024\nBread 3.00\nTOTAL $3.00";
        let text = |name: &str| format!("{name}{rest}");
        let first = read_name_with(&text("HARBOR GRILL"), 0.7, EngineKind::PpOcr);
        assert!(!lacks_date_or_total(&first) && wants_v6(&first));
        let second = read_name_with(&text("HARBOR GRILLE"), 0.99, EngineKind::PpOcrV6);
        let merged = combine_with_v6(first.clone(), second);
        assert_eq!(merged.receipt.store_name.as_deref(), Some("HARBOR GRILLE"));
        let line = merged.receipt.lines.store_name.expect("a name line");
        assert_eq!(merged.text.lines().nth(line), Some("HARBOR GRILLE"));
        assert_eq!(merged.engines, vec![EngineKind::PpOcr, EngineKind::PpOcrV6]);
        // Only the name: the other fields stay the first reading's.
        assert_eq!(
            merged.receipt.lines.total_amount,
            first.receipt.lines.total_amount
        );
        assert_eq!(merged.receipt.items, first.receipt.items);

        // A name read sure is not read again.
        let sure = read_name_with(&text("HARBOR GRILL"), 0.95, EngineKind::PpOcr);
        assert!(!wants_v6(&sure));
        // v6 no surer of its reading, or finding a less name-like line: kept.
        let unsure = read_name_with(&text("HARBOR GRILLE"), 0.6, EngineKind::PpOcrV6);
        let merged = combine_with_v6(first.clone(), unsure);
        assert_eq!(merged.receipt.store_name.as_deref(), Some("HARBOR GRILL"));
        let less_a_name = read_name_with(&text("Grill"), 0.99, EngineKind::PpOcrV6);
        let merged = combine_with_v6(first, less_a_name);
        assert_eq!(merged.receipt.store_name.as_deref(), Some("HARBOR GRILL"));
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
