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
/// more confident of it. The text kept is both passes' (the second covers
/// only part of the receipt), first pass first; the OCR confidence is that
/// of the pass the total came from.
pub fn combine(first: ReceiptReading, mut second: ReceiptReading) -> ReceiptReading {
    let text = format!("{}\n\n{}", first.text.trim_end(), second.text.trim_end());
    shift_lines(
        &mut second.receipt,
        first.text.trim_end().lines().count() + 1,
    );
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
    base.text = text;
    base
}

/// The second pass's text is appended after the first's and an empty
/// line: its line numbers move down by that much.
fn shift_lines(receipt: &mut super::ParsedReceipt, by: usize) {
    receipt.lines = receipt.lines.shifted(by);
    for item in &mut receipt.items {
        item.line = item.line.map(|l| l + by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text: &str) -> ReceiptReading {
        reading_of((text.to_string(), 80.0))
    }

    #[test]
    fn each_field_comes_from_the_pass_that_read_it_best() {
        let first = reading("CORNER MARKET\nDate: 03/14/2024\nT0TL garbled\n");
        assert!(needs_second_pass(&first));
        let second = reading("Bread 3.00\nTOTAL $3.00\n");
        let merged = combine(first, second);
        assert_eq!(merged.receipt.store_name.as_deref(), Some("CORNER MARKET"));
        assert_eq!(
            merged
                .receipt
                .total_amount
                .map(|t| t.to_string())
                .as_deref(),
            Some("3.00")
        );
        assert!(merged.receipt.purchase_date.is_some());
        assert!(merged.text.starts_with("CORNER MARKET") && merged.text.ends_with("$3.00"));
        let total_line = merged.receipt.lines.total_amount.expect("a total line");
        assert_eq!(merged.text.lines().nth(total_line), Some("TOTAL $3.00"));
    }
}
