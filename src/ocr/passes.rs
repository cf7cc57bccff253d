//! Choosing between OCR passes. A second pass costs a whole Tesseract run,
//! so it runs only when the first reading looks incomplete; then each field
//! is taken from whichever pass read it with more confidence.

use super::{ReceiptReading, parse_receipt};

/// A first pass whose total is less sure than this gets a second pass.
const SECOND_PASS_BELOW: f32 = 0.5;

/// Parse Tesseract's text and confidence into a reading.
pub fn reading_of((text, ocr_confidence): (String, f32)) -> ReceiptReading {
    let receipt = parse_receipt(&text);
    ReceiptReading {
        text,
        ocr_confidence,
        receipt,
    }
}

/// True when the first pass missed what every receipt has: a total.
pub fn needs_second_pass(first: &ReceiptReading) -> bool {
    first.receipt.confidence.total_amount < SECOND_PASS_BELOW
}

/// Merge two readings of one image field by field, each from the reading
/// more confident of it. The text kept is the one the total came from.
pub fn combine(first: ReceiptReading, second: ReceiptReading) -> ReceiptReading {
    let (a, b) = (&first.receipt.confidence, &second.receipt.confidence);
    let total_from_second = b.total_amount > a.total_amount;
    let store_from_second = b.store_name > a.store_name;
    let date_from_second = b.purchase_date > a.purchase_date;
    let items_from_second = b.items > a.items;
    let (mut base, other) = match total_from_second {
        true => (second, first),
        false => (first, second),
    };
    let take_other = |from_second: bool| from_second != total_from_second;
    let receipt = &mut base.receipt;
    if take_other(store_from_second) {
        receipt.store_name = other.receipt.store_name.clone();
        receipt.confidence.store_name = other.receipt.confidence.store_name;
    }
    if take_other(date_from_second) {
        receipt.purchase_date = other.receipt.purchase_date;
        receipt.confidence.purchase_date = other.receipt.confidence.purchase_date;
    }
    if take_other(items_from_second) {
        receipt.items = other.receipt.items.clone();
        receipt.confidence.items = other.receipt.confidence.items;
    }
    receipt.currency = receipt.currency.take().or(other.receipt.currency);
    receipt.confidence.overall = super::parse::overall_confidence(&receipt.confidence);
    base
}
