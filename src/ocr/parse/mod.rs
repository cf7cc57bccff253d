//! Receipt text → fields. Rule-based: each line is repaired (OCR damage to
//! numbers), split into its words and its trailing amount, and classified
//! by those words (total, subtotal, tax, payment, item…); each field is then
//! read from the lines of the right kind, with a confidence.
//!
//! - [`amount`]: numbers, currencies and OCR repair
//! - [`labels`]: what kind of line a line is
//! - [`total`], [`items`], [`date`], [`store`]: one field each

pub mod amount;
pub mod date;
pub mod items;
pub mod labels;
pub mod store;
pub mod total;

use std::sync::LazyLock;

use bigdecimal::{BigDecimal, Zero};
use regex::Regex;

use super::{FieldConfidence, ParsedItem, ParsedReceipt};
use date::DateOrder;
use labels::LineKind;

/// One non-empty line of the text, repaired and classified.
#[derive(Debug, Clone)]
pub struct Line {
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
    let raw: Vec<String> = text
        .lines()
        .map(|l| amount::repair_numbers(l.trim()))
        .filter(|l| !l.is_empty())
        .collect();
    let lines = classify(&raw);
    let currency = amount::receipt_currency(&raw);
    let total = total::find_total(&lines);
    let items = items::find_items(&lines);
    let store = store::find_store(&raw);
    let date = date::find_date(&raw, date_order_hint(currency, text));
    let confidence = FieldConfidence {
        store_name: store.as_ref().map_or(0.0, |s| s.confidence),
        total_amount: total.as_ref().map_or(0.0, |t| t.confidence),
        purchase_date: date.map_or(0.0, |d| d.confidence),
        items: items_confidence(&items, &lines, total.as_ref().map(|t| &t.value)),
        ..FieldConfidence::default()
    };
    let mut receipt = ParsedReceipt {
        store_name: store.map(|s| s.name),
        total_amount: total.map(|t| t.value),
        currency: currency.map(String::from),
        purchase_date: date.map(|d| d.date),
        items,
        confidence,
        ..ParsedReceipt::default()
    };
    receipt.confidence.overall = overall_confidence(&receipt.confidence);
    receipt
}

/// Classify every line; a total label whose amount wrapped onto the next
/// line takes that amount.
fn classify(raw: &[String]) -> Vec<Line> {
    let mut lines: Vec<Line> = raw.iter().map(|text| classify_line(text)).collect();
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

fn classify_line(text: &str) -> Line {
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

/// Which way round `05/11/18` is read when the text does not say: US
/// dollars put the month first; most of the world puts the day first.
fn date_order_hint(currency: Option<&str>, text: &str) -> Option<DateOrder> {
    static NORTH_AMERICAN: LazyLock<Regex> = LazyLock::new(|| {
        // A literal exercised by the tests: it compiles.
        Regex::new(
            r"\(\d{3}\) ?\d{3}[-. ]\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b|\b[A-Z]{2},? \d{5}(-\d{4})?\b",
        )
        .expect("valid regex")
    });
    match currency {
        Some("USD") => Some(DateOrder::MonthFirst),
        Some(_) => Some(DateOrder::DayFirst),
        None if NORTH_AMERICAN.is_match(text) => Some(DateOrder::MonthFirst),
        None if text.contains("SDN BHD") || text.contains("GST") => Some(DateOrder::DayFirst),
        None => None,
    }
}

/// Items are trustworthy when their line totals add up to the subtotal
/// (or the total); otherwise some were probably missed or misread.
fn items_confidence(items: &[ParsedItem], lines: &[Line], total: Option<&BigDecimal>) -> f32 {
    if items.is_empty() {
        return 0.0;
    }
    let sum: BigDecimal = items.iter().map(|i| i.line_total.clone()).sum();
    let subtotal = lines
        .iter()
        .find(|l| l.kind == LineKind::Subtotal)
        .and_then(|l| l.amount.clone());
    let adds_up = [subtotal.as_ref(), total]
        .into_iter()
        .flatten()
        .any(|t| (t - &sum).is_zero());
    if adds_up { 0.9 } else { 0.5 }
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
