//! Receipt text → fields. A first, rule-based parser: the store name from
//! the header, the total from its label, items from lines ending in a price.

use std::str::FromStr;
use std::sync::LazyLock;

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use regex::Regex;

use super::{FieldConfidence, ParsedItem, ParsedReceipt};

// The patterns are literals checked by the unit tests, so `expect` cannot fire.
static TRAILING_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?P<head>.*?)[\s:]*(?:[$€£¥]|RM|USD|EUR|GBP)?\s*(?P<amount>-?\d{1,6}[.,]\d{2})\s*[A-Z]?$")
        .expect("valid regex")
});
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:(?P<lead>\d{1,3})\s*[x@]?\s+(?P<name1>.+)|(?P<name2>.+?)\s+(?P<qty>\d{1,3})\s*[x@]\s*(?:[$€£]?\s*(?P<unit>\d+[.,]\d{2}))?)$")
        .expect("valid regex")
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?P<a>\d{1,4})[/.-](?P<b>\d{1,2})[/.-](?P<c>\d{2,4})\b").expect("valid regex")
});

const TOTAL_WORDS: &[&str] = &["GRAND TOTAL", "AMOUNT DUE", "TOTAL", "BALANCE DUE", "NETT"];
const NOT_ITEM_WORDS: &[&str] = &[
    "TOTAL", "SUBTOTAL", "SUB TOTAL", "TAX", "GST", "VAT", "CHANGE", "CASH", "TIP", "BALANCE",
    "AMOUNT", "VISA", "MASTERCARD", "CARD", "ROUNDING", "TENDER", "DUE", "PAID",
];

/// Parse OCR text into a receipt. Never fails: missing fields stay `None`.
pub fn parse_receipt(text: &str) -> ParsedReceipt {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let total = find_total(&lines);
    let total_index = total.as_ref().map(|(i, _)| *i).unwrap_or(lines.len());
    let items = find_items(&lines[..total_index]);
    let store_name = find_store_name(&lines);
    let purchase_date = lines.iter().find_map(|l| parse_date(l));
    let currency = find_currency(text);
    let confidence = FieldConfidence {
        store_name: if store_name.is_some() { 0.6 } else { 0.0 },
        total_amount: if total.is_some() { 0.8 } else { 0.0 },
        purchase_date: if purchase_date.is_some() { 0.8 } else { 0.0 },
        items: if items.is_empty() { 0.0 } else { 0.5 },
        overall: 0.0,
    };
    let mut receipt = ParsedReceipt {
        store_name,
        total_amount: total.map(|(_, amount)| amount),
        currency,
        purchase_date,
        items,
        confidence,
    };
    receipt.confidence.overall = overall_confidence(&receipt.confidence);
    receipt
}

fn overall_confidence(c: &FieldConfidence) -> f32 {
    (c.store_name + c.total_amount * 2.0 + c.purchase_date + c.items) / 5.0
}

fn upper_words(line: &str) -> String {
    line.to_uppercase()
}

fn amount_of(line: &str) -> Option<(String, BigDecimal)> {
    let caps = TRAILING_AMOUNT.captures(line)?;
    let amount = parse_amount(&caps["amount"])?;
    Some((caps["head"].trim().to_string(), amount))
}

/// `12,50` and `12.50` both mean twelve and a half.
pub fn parse_amount(raw: &str) -> Option<BigDecimal> {
    BigDecimal::from_str(&raw.replace(',', ".")).ok()
}

fn is_total_label(head: &str) -> bool {
    let upper = upper_words(head);
    let is_sub = upper.contains("SUB") || upper.contains("TAX") || upper.contains("ITEMS");
    !is_sub && TOTAL_WORDS.iter().any(|w| upper.contains(w))
}

fn find_total(lines: &[&str]) -> Option<(usize, BigDecimal)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| amount_of(l).map(|(head, amount)| (i, head, amount)))
        .filter(|(_, head, _)| is_total_label(head))
        .map(|(i, _, amount)| (i, amount))
        .next()
}

fn find_items(lines: &[&str]) -> Vec<ParsedItem> {
    lines.iter().filter_map(|l| parse_item(l)).collect()
}

fn parse_item(line: &str) -> Option<ParsedItem> {
    let (head, line_total) = amount_of(line)?;
    let upper = upper_words(&head);
    if head.chars().filter(|c| c.is_alphabetic()).count() < 2
        || NOT_ITEM_WORDS.iter().any(|w| upper.contains(w))
    {
        return None;
    }
    let (name, quantity, unit) = split_quantity(&head, &line_total);
    Some(ParsedItem { name, quantity, unit_price: unit, line_total })
}

/// `2 x 3.99 Milk`, `Milk 2 @ 3.99`, `2 Milk`: quantity and unit price.
fn split_quantity(head: &str, line_total: &BigDecimal) -> (String, BigDecimal, BigDecimal) {
    let one = BigDecimal::from(1);
    let Some(caps) = QUANTITY.captures(head) else {
        return (head.to_string(), one, line_total.clone());
    };
    let (name, qty) = match (caps.name("lead"), caps.name("qty")) {
        (Some(q), _) => (caps["name1"].to_string(), q.as_str()),
        (None, Some(q)) => (caps["name2"].to_string(), q.as_str()),
        _ => return (head.to_string(), one, line_total.clone()),
    };
    let quantity = BigDecimal::from_str(qty).unwrap_or(one);
    let unit = caps
        .name("unit")
        .and_then(|u| parse_amount(u.as_str()))
        .unwrap_or_else(|| (line_total / &quantity).round(2));
    (name.trim().to_string(), quantity, unit)
}

fn find_store_name(lines: &[&str]) -> Option<String> {
    lines
        .iter()
        .take(6)
        .find(|l| {
            let letters = l.chars().filter(|c| c.is_alphabetic()).count();
            let digits = l.chars().filter(|c| c.is_ascii_digit()).count();
            letters >= 3 && digits * 2 < letters
        })
        .map(|l| l.to_string())
}

fn parse_date(line: &str) -> Option<NaiveDate> {
    let caps = DATE.captures(line)?;
    let (a, b, c) = (&caps["a"], &caps["b"], &caps["c"]);
    let num = |s: &str| s.parse::<i32>().ok();
    let year = |y: i32| if y < 100 { 2000 + y } else { y };
    if a.len() == 4 {
        return NaiveDate::from_ymd_opt(num(a)?, num(b)? as u32, num(c)? as u32);
    }
    let (first, second, y) = (num(a)? as u32, num(b)? as u32, year(num(c)?));
    NaiveDate::from_ymd_opt(y, first, second).or_else(|| NaiveDate::from_ymd_opt(y, second, first))
}

fn find_currency(text: &str) -> Option<String> {
    let upper = text.to_uppercase();
    let code = if upper.contains('€') || upper.contains("EUR") {
        "EUR"
    } else if upper.contains('£') || upper.contains("GBP") {
        "GBP"
    } else if upper.contains("RM") || upper.contains("MYR") {
        "MYR"
    } else if upper.contains('$') || upper.contains("USD") {
        "USD"
    } else {
        return None;
    };
    Some(code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn a_simple_receipt_gives_store_items_and_total() {
        let text = "CORNER MARKET\n12 Main St\n03/14/2024\nMilk 2 x 3.99 7.98\nBread 2.50\nSUBTOTAL 10.48\nTAX 0.52\nTOTAL $11.00\nCASH 20.00\nCHANGE 9.00\n";
        let r = parse_receipt(text);
        assert_eq!(r.store_name.as_deref(), Some("CORNER MARKET"));
        assert_eq!(r.total_amount, Some(dec("11.00")));
        assert_eq!(r.purchase_date, NaiveDate::from_ymd_opt(2024, 3, 14));
        assert_eq!(r.currency.as_deref(), Some("USD"));
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[0].name, "Milk");
        assert_eq!(r.items[0].quantity, dec("2"));
        assert_eq!(r.items[0].unit_price, dec("3.99"));
        assert_eq!(r.items[0].line_total, dec("7.98"));
        assert_eq!(r.items[1].name, "Bread");
    }

    #[test]
    fn subtotal_is_never_taken_for_the_total() {
        let r = parse_receipt("SHOP\nSUBTOTAL 5.00\nTOTAL 5.40\n");
        assert_eq!(r.total_amount, Some(dec("5.40")));
    }

    #[test]
    fn a_comma_is_a_decimal_separator() {
        assert_eq!(parse_amount("12,50"), Some(dec("12.50")));
    }
}
