//! Money in receipt text: repairing what OCR does to numbers, finding the
//! amounts on a line, and the currency they are in.

use std::str::FromStr;
use std::sync::LazyLock;

use bigdecimal::BigDecimal;
use regex::Regex;

// Every pattern in this module is a literal exercised by the unit tests, so
// building it cannot fail at run time.
/// `39. 80`, `39 .80`, `39 . 80`: a space on either side of the point.
static SPLIT_DECIMAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d) ?([.,]) (\d{2})\b|(\d) (\.) ?(\d{2})\b").expect("valid regex")
});
/// `$42 00`: after a currency symbol, a space where the point was.
static LOST_POINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([$€£])\s?(\d{1,5}) (\d{2})\b").expect("valid regex"));
static NUMBERISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9OoIl|]*[0-9][0-9OoIl|]*[.,][0-9Oo]{2}\b").expect("valid regex")
});
static AFTER_CURRENCY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[$€£][0-9OoIlSB|]+[.,][0-9OoIlSB]{2}\b").expect("valid regex"));
/// An amount: optional minus or opening bracket, an optional currency, digits
/// with optional thousands separators, and exactly two decimals.
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?P<neg>-|\()?(?P<cur>[$€£¥]|RM|USD|EUR|GBP|MYR|SGD|S\$|US\$)?\s?(?P<num>\d{1,3}(?:[,.]\d{3})+[.,]\d{2}|\d+[.,]\d{2})(?P<after>-|\))?(?:\b|$)",
    )
    .expect("valid regex")
});

/// One money amount found in a line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Amount {
    pub value: BigDecimal,
    /// Byte offsets of the match in the line.
    pub start: usize,
    pub end: usize,
    pub currency: Option<&'static str>,
}

/// Undo the commonest OCR damage to numbers: a space inside `39. 80`, and
/// letters read for digits inside an amount (`1O.5O`, `l2.00`).
pub fn repair_numbers(line: &str) -> String {
    let joined = SPLIT_DECIMAL.replace_all(line, "$1$2$3$4$5$6");
    let joined = LOST_POINT.replace_all(&joined, "$1$2.$3");
    let after_currency =
        AFTER_CURRENCY.replace_all(&joined, |caps: &regex::Captures| as_digits(&caps[0], true));
    NUMBERISH
        .replace_all(&after_currency, |caps: &regex::Captures| {
            as_digits(&caps[0], false)
        })
        .into_owned()
}

/// Letters OCR reads for digits. `S` and `B` only count after a currency
/// symbol: elsewhere they are too often real letters.
fn as_digits(token: &str, after_currency: bool) -> String {
    token
        .chars()
        .map(|c| match c {
            'O' | 'o' => '0',
            'I' | 'l' | '|' => '1',
            'S' if after_currency => '5',
            'B' if after_currency => '8',
            other => other,
        })
        .collect()
}

/// Every amount on a line, left to right.
pub fn amounts_in(line: &str) -> Vec<Amount> {
    AMOUNT
        .captures_iter(line)
        .filter_map(|caps| {
            let whole = caps.get(0)?;
            let mut value = parse_amount(&caps["num"])?;
            let negative = caps.name("neg").is_some_and(|m| m.as_str() == "-")
                || caps.name("after").is_some_and(|m| m.as_str() == "-")
                || (caps.name("neg").is_some() && caps.name("after").is_some());
            if negative {
                value = -value;
            }
            let currency = caps.name("cur").and_then(|c| currency_code(c.as_str()));
            Some(Amount {
                value,
                start: whole.start(),
                end: whole.end(),
                currency,
            })
        })
        .collect()
}

/// The amount that ends a line (a price column), allowing a few trailing
/// marks receipts print after prices: tax codes (`T`, `SR`, `ZR`), `*`.
pub fn trailing_amount(line: &str) -> Option<Amount> {
    let last = amounts_in(line).pop()?;
    let rest = line[last.end..].trim();
    let short_mark = rest.chars().count() <= 3 && !rest.chars().any(|c| c.is_ascii_digit());
    short_mark.then_some(last)
}

/// The last amount on a line followed only by OCR noise: short runs of
/// marks and letters (`17.80 a os`, `$14.18 | : / [`), no other number and
/// no real word.
pub fn last_amount_before_noise(line: &str) -> Option<Amount> {
    let last = amounts_in(line).pop()?;
    let rest = &line[last.end..];
    let noise_only = rest.chars().filter(|c| c.is_ascii_digit()).count() <= 1
        && rest
            .split_whitespace()
            .all(|w| w.chars().filter(|c| c.is_alphabetic()).count() <= 4);
    noise_only.then_some(last)
}

/// `TOTAL GST 1 20`: OCR lost the decimal point. Only trusted on labelled
/// lines (totals, taxes), where the number must be money.
pub fn spaced_decimal_at_end(line: &str) -> Option<BigDecimal> {
    static SPACED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:^|\s)(\d{1,4}) (\d{2})\s*$").expect("valid regex"));
    let caps = SPACED.captures(line)?;
    BigDecimal::from_str(&format!("{}.{}", &caps[1], &caps[2])).ok()
}

/// `12,50`, `12.50`, `1,234.50`, and `1.234,50`: the last
/// separator before two final digits is the decimal point.
pub fn parse_amount(raw: &str) -> Option<BigDecimal> {
    let digits_only = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (whole, cents) = raw.split_at(raw.len().checked_sub(3)?);
    let decimals = cents.strip_prefix(['.', ','])?;
    BigDecimal::from_str(&format!("{}.{}", digits_only(whole), decimals)).ok()
}

/// ISO 4217 code for a currency symbol or code as printed.
pub fn currency_code(printed: &str) -> Option<&'static str> {
    let code = match printed.to_ascii_uppercase().as_str() {
        "$" | "USD" | "US$" => "USD",
        "€" | "EUR" => "EUR",
        "£" | "GBP" => "GBP",
        "¥" | "JPY" => "JPY",
        "RM" | "MYR" => "MYR",
        "S$" | "SGD" => "SGD",
        _ => return None,
    };
    Some(code)
}

/// The currency the receipt is in: the one its amounts are printed with
/// most often, else one named anywhere in the text.
pub fn receipt_currency(lines: &[String]) -> Option<&'static str> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for amount in lines.iter().flat_map(|l| amounts_in(l)) {
        if let Some(code) = amount.currency {
            match counts.iter_mut().find(|(c, _)| *c == code) {
                Some((_, n)) => *n += 1,
                None => counts.push((code, 1)),
            }
        }
    }
    if let Some((code, _)) = counts.iter().max_by_key(|(_, n)| *n) {
        return Some(code);
    }
    currency_named_in(lines)
}

fn currency_named_in(lines: &[String]) -> Option<&'static str> {
    static NAMED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(USD|EUR|GBP|MYR|SGD|JPY|RM)\b|[€£¥]").expect("valid regex")
    });
    lines
        .iter()
        .find_map(|l| NAMED.find(l).and_then(|m| currency_code(m.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn a_comma_or_a_point_is_the_decimal_separator() {
        assert_eq!(parse_amount("12,50"), Some(dec("12.50")));
        assert_eq!(parse_amount("12.50"), Some(dec("12.50")));
        assert_eq!(parse_amount("1,234.50"), Some(dec("1234.50")));
        assert_eq!(parse_amount("1.234,50"), Some(dec("1234.50")));
    }

    #[test]
    fn currency_symbols_and_codes_are_read_with_the_amount() {
        let found = |line: &str| trailing_amount(line).map(|a| (a.value, a.currency));
        assert_eq!(found("TOTAL $11.00"), Some((dec("11.00"), Some("USD"))));
        assert_eq!(found("Total RM 60.30"), Some((dec("60.30"), Some("MYR"))));
        assert_eq!(found("Summe € 7,40"), Some((dec("7.40"), Some("EUR"))));
        assert_eq!(found("TOTAL £3.20"), Some((dec("3.20"), Some("GBP"))));
        assert_eq!(found("合計 ¥1,200.00"), Some((dec("1200.00"), Some("JPY"))));
        assert_eq!(found("TOTAL USD 4.00"), Some((dec("4.00"), Some("USD"))));
    }

    #[test]
    fn ocr_damage_inside_numbers_is_repaired() {
        assert_eq!(repair_numbers("TOTAL 39. 80"), "TOTAL 39.80");
        assert_eq!(repair_numbers("Margarita $6 .00"), "Margarita $6.00");
        assert_eq!(repair_numbers("COSTOLETTE $42 00"), "COSTOLETTE $42.00");
        assert_eq!(repair_numbers("TOTAL 1O.5O"), "TOTAL 10.50");
        assert_eq!(repair_numbers("Bread l2.00"), "Bread 12.00");
        assert_eq!(repair_numbers("TOTAL $IS.03"), "TOTAL $15.03");
        assert_eq!(repair_numbers("GOOD FOOD"), "GOOD FOOD");
    }

    #[test]
    fn a_decimal_point_lost_on_a_labelled_line_is_restored() {
        assert_eq!(spaced_decimal_at_end("Total GST 1 20"), Some(dec("1.20")));
        assert_eq!(spaced_decimal_at_end("Table 12"), None);
    }

    #[test]
    fn trailing_tax_codes_and_negative_amounts_are_understood() {
        assert_eq!(
            trailing_amount("Milk 3.99 T").map(|a| a.value),
            Some(dec("3.99"))
        );
        assert_eq!(
            trailing_amount("Coupon -1.00").map(|a| a.value),
            Some(dec("-1.00"))
        );
        assert_eq!(
            trailing_amount("Discount 1.00-").map(|a| a.value),
            Some(dec("-1.00"))
        );
        assert_eq!(trailing_amount("Table 12.50 Guests 4"), None);
    }
}
