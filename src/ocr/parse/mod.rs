//! Receipt text → fields. Rule-based: each line is repaired (OCR damage to
//! numbers), split into its words and its trailing amount, and classified
//! by those words (total, subtotal, tax, payment, item…); each field is then
//! read from the lines of the right kind, with a confidence.
//!
//! - [`amount`]: numbers, currencies and OCR repair
//! - [`labels`]: what kind of line a line is
//! - [`total`], [`items`], [`date`], [`store`]: one field each

pub mod amount;
pub mod arithmetic;
pub mod contact;
pub mod date;
pub mod glued;
pub mod items;
pub mod labels;
pub mod payment;
pub mod spelling;
pub mod store;
pub mod store_name;
pub mod total;

use bigdecimal::BigDecimal;

use super::{FieldConfidence, FieldLines, ParsedReceipt};
use labels::LineKind;

/// One non-empty line of the text, repaired and classified.
#[derive(Debug, Clone)]
pub struct Line {
    /// Where the line is in `text.lines()` of the text parsed, empty lines
    /// counted: the OCR engine's line number.
    pub index: usize,
    /// The line after number repair.
    pub text: String,
    /// The words before the trailing amount (the whole line if none).
    pub head: String,
    pub kind: LineKind,
    /// The amount that ends the line, or sits alone on the next line for a
    /// total label whose amount wrapped.
    pub amount: Option<BigDecimal>,
}

/// Parse OCR text into a receipt. Never fails: missing fields stay `None`.
pub fn parse_receipt(text: &str) -> ParsedReceipt {
    let lines = classify(&numbered_lines(text));
    let raw: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
    let source = |position: usize| lines.get(position).map(|l| l.index);
    let currency = amount::receipt_currency(&raw);
    let (sums, total) = total_and_sums(&lines);
    let items = items::find_items(&lines);
    let store = store::find_store(&raw);
    let date = date::find_date(&raw, date::order_hint(currency, &raw));
    let time = contact::find_time(&lines, date.and_then(|d| source(d.line)));
    let phone = contact::find_phone(&lines);
    let address = contact::find_address(&lines, store.as_ref().and_then(|s| source(s.line)));
    let payment = payment::find_payment_method(&lines);
    let confidence = FieldConfidence {
        store_name: store.as_ref().map_or(0.0, |s| s.confidence),
        total_amount: total.as_ref().map_or(0.0, |t| t.confidence),
        purchase_date: date.map_or(0.0, |d| d.confidence),
        items: arithmetic::items_confidence(&items, &sums, total.as_ref().map(|t| &t.value)),
        time: time.as_ref().map_or(0.0, |f| f.confidence),
        subtotal: sums.subtotal.as_ref().map_or(0.0, |f| f.confidence),
        tax: sums.tax.as_ref().map_or(0.0, |f| f.confidence),
        tip: sums.tip.as_ref().map_or(0.0, |f| f.confidence),
        payment_method: payment.as_ref().map_or(0.0, |f| f.confidence),
        address: address.as_ref().map_or(0.0, |f| f.confidence),
        phone: phone.as_ref().map_or(0.0, |f| f.confidence),
        overall: 0.0,
    };
    let field_lines = FieldLines {
        store_name: store.as_ref().and_then(|s| source(s.line)),
        total_amount: total.as_ref().and_then(|t| t.line),
        purchase_date: date.and_then(|d| source(d.line)),
        time: time.as_ref().map(|f| f.line),
        subtotal: sums.subtotal.as_ref().map(|f| f.line),
        tax: sums.tax.as_ref().map(|f| f.line),
        tip: sums.tip.as_ref().map(|f| f.line),
        payment_method: payment.as_ref().map(|f| f.line),
        address: address.as_ref().map(|f| f.line),
        phone: phone.as_ref().map(|f| f.line),
    };
    let mut receipt = ParsedReceipt {
        store_name: store.map(|s| s.name),
        total_amount: total.map(|t| t.value),
        currency: currency.map(String::from),
        purchase_date: date.map(|d| d.date),
        time: time.map(|f| f.value),
        subtotal: sums.subtotal.map(|f| f.value),
        tax: sums.tax.map(|f| f.value),
        tip: sums.tip.map(|f| f.value),
        payment_method: payment.map(|f| f.value),
        address: address.map(|f| f.value),
        phone: phone.map(|f| f.value),
        items,
        confidence,
        lines: field_lines,
    };
    receipt.confidence.overall = overall_confidence(&receipt.confidence);
    receipt
}

/// The total, and the subtotal and tax it is made of. When the labelled
/// total does not add up and amounts shifted a line from their labels
/// do, those amounts are taken instead.
fn total_and_sums(lines: &[Line]) -> (arithmetic::Sums, Option<total::FoundTotal>) {
    let mut sums = arithmetic::find_sums(lines);
    let total = total::find_total(lines, &sums);
    let adds_up = total.as_ref().is_some_and(|t| sums.adds_up_to(&t.value));
    let rounded = lines.iter().any(|l| l.kind == LineKind::Rounding);
    let shifted = (!adds_up && !rounded)
        .then(|| arithmetic::shifted_sum(lines))
        .flatten();
    let Some([subtotal, tax, sum]) = shifted else {
        return (sums, total);
    };
    sums.subtotal = Some(subtotal);
    sums.tax = Some(tax);
    let total = total::FoundTotal {
        value: sum.value,
        line: Some(sum.line),
        confidence: sum.confidence,
    };
    (sums, Some(total))
}

/// A field read from one source line (numbered as [`Line::index`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Found<T> {
    pub value: T,
    pub line: usize,
    pub confidence: f32,
}

/// The non-empty lines, repaired, each with its index in `text.lines()`.
fn numbered_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, amount::repair_numbers(glued::unglue(l).trim())))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// Classify every line; a total label whose amount wrapped onto the next
/// line takes that amount.
fn classify(numbered: &[(usize, String)]) -> Vec<Line> {
    let mut lines: Vec<Line> = numbered
        .iter()
        .map(|(index, text)| classify_line(*index, text))
        .collect();
    for i in 1..lines.len() {
        let (before, after) = lines.split_at_mut(i);
        let (label, next) = (&mut before[i - 1], &after[0]);
        let next_is_bare_amount = next.amount.is_some() && letters(&next.head) == 0;
        if label.kind != LineKind::Other && label.amount.is_none() && next_is_bare_amount {
            label.amount = next.amount.clone();
        }
    }
    lines
}

fn classify_line(index: usize, text: &str) -> Line {
    let trailing = amount::trailing_amount(text).or_else(|| amount::last_amount_before_noise(text));
    let head = trailing
        .as_ref()
        .map_or(text, |a| &text[..a.start])
        .trim()
        .to_string();
    let kind = labels::line_kind(&head);
    let mut amount = trailing.map(|a| a.value);
    if amount.is_none() && kind != LineKind::Other {
        amount = amount::spaced_decimal_at_end(text);
    }
    Line {
        index,
        kind,
        amount,
        text: text.to_string(),
        head,
    }
}

/// The words after any leading OCR debris: one or two lower-case letters
/// or a lone non-ASCII mark, left by the paper's edge or a logo. All the
/// words when every one looks like debris.
fn without_leading_debris<'a>(words: &'a [&'a str]) -> &'a [&'a str] {
    let is_debris = |word: &str| {
        word.chars().count() <= 2 && word.chars().all(|c| c.is_lowercase() || !c.is_ascii())
    };
    let debris = words.iter().take_while(|w| is_debris(w)).count();
    if debris < words.len() {
        &words[debris..]
    } else {
        words
    }
}

/// The words before any trailing OCR debris: a lone character, or two
/// characters one of which is a mark (`"7`, `(S`).
fn without_trailing_debris<'a>(words: &'a [&'a str]) -> &'a [&'a str] {
    let is_debris = |word: &str| {
        let count = word.chars().count();
        let mark = word.chars().any(|c| !c.is_alphanumeric());
        word != "&" && (count == 1 || (count == 2 && mark))
    };
    let debris = words.iter().rev().take_while(|w| is_debris(w)).count();
    if debris < words.len() {
        &words[..words.len() - debris]
    } else {
        words
    }
}

fn letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphabetic()).count()
}

/// The receipt's overall confidence: the total counts double, because a
/// receipt with a wrong total needs review whatever else was read.
pub fn overall_confidence(c: &FieldConfidence) -> f32 {
    (c.store_name + c.total_amount * 2.0 + c.purchase_date + c.items) / 5.0
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn a_simple_receipt_gives_store_date_items_total_and_currency() {
        let text = "CORNER MARKET\n12 Main St\n03/14/2024\nMilk 2 x 3.99 7.98\nBread 2.50\n\
                    SUBTOTAL 10.48\nTAX 0.52\nTOTAL $11.00\nCASH 20.00\nCHANGE 9.00\n";
        let r = parse_receipt(text);
        assert_eq!(r.store_name.as_deref(), Some("CORNER MARKET"));
        assert_eq!(r.total_amount, BigDecimal::from_str("11.00").ok());
        assert_eq!(r.purchase_date, NaiveDate::from_ymd_opt(2024, 3, 14));
        assert_eq!(r.currency.as_deref(), Some("USD"));
        assert_eq!(r.items.len(), 2);
        assert!(r.confidence.total_amount >= 0.8, "{:?}", r.confidence);
        assert!(r.confidence.items >= 0.9, "{:?}", r.confidence);
    }

    #[test]
    fn every_field_knows_its_source_line_counting_empty_lines() {
        let text = "\nCORNER MARKET\n\n12 Main St\nTel (555) 010-4477\n\n03/14/2024 10:15 AM\n\
                    Bread 2.50\nSUBTOTAL 2.50\nTAX 0.20\nTOTAL 2.70\nVISA 2.70\n";
        let r = parse_receipt(text);
        let lines = r.lines;
        assert_eq!(lines.store_name, Some(1));
        assert_eq!(lines.address, Some(3));
        assert_eq!(lines.phone, Some(4));
        assert_eq!(lines.purchase_date, Some(6));
        assert_eq!(lines.time, Some(6));
        assert_eq!(r.items[0].line, Some(7));
        assert_eq!(lines.subtotal, Some(8));
        assert_eq!(lines.tax, Some(9));
        assert_eq!(lines.total_amount, Some(10));
        assert_eq!(lines.payment_method, Some(11));
        assert_eq!(r.payment_method.as_deref(), Some("VISA"));
        assert_eq!(r.address.as_deref(), Some("12 Main St"));
        assert!(r.confidence.total_amount > 0.8 && r.confidence.subtotal > 0.8);
    }

    #[test]
    fn an_empty_text_gives_an_empty_receipt_with_no_confidence() {
        let r = parse_receipt("");
        assert_eq!(r, ParsedReceipt::default());
    }

    #[test]
    fn a_us_phone_number_reads_ambiguous_dates_month_first() {
        let r = parse_receipt("DINER\n(516) 442-4944\n11/6/2013 8:14 PM\nTOTAL 5.00");
        assert_eq!(r.purchase_date, NaiveDate::from_ymd_opt(2013, 11, 6));
    }

    #[test]
    fn a_receipt_in_ringgit_reads_ambiguous_dates_day_first() {
        let r = parse_receipt("KEDAI ABC SDN BHD\n05/11/2018\nTOTAL RM 5.00");
        assert_eq!(r.currency.as_deref(), Some("MYR"));
        assert_eq!(r.purchase_date, NaiveDate::from_ymd_opt(2018, 11, 5));
    }
}
