//! What a receipt line is, judged by the words before its amount: a total,
//! a subtotal, a tax, a payment… Items are the lines that are none of these.

use std::sync::LazyLock;

use regex::Regex;

/// The role of a line on a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LineKind {
    /// An ordinary line: an item, or header text.
    Other,
    Subtotal,
    Tax,
    Tip,
    Discount,
    /// Cash handed over, or any other tender.
    Cash,
    Card,
    Change,
    Rounding,
    /// `TOTAL QTY 3`, `TOTAL ITEMS`: a count, not money.
    Count,
    /// A weak total label: `BALANCE`, `NETT`, `AMOUNT`.
    WeakTotal,
    /// `TOTAL` alone.
    Total,
    /// The strongest labels: `GRAND TOTAL`, `AMOUNT DUE`, `TOTAL (INCL GST)`,
    /// `BALANCE DUE`, `NETT TOTAL`, `TOTAL AFTER ROUNDING`.
    GrandTotal,
}

// Each pattern is a literal exercised by the unit tests: it compiles.
fn words(pattern: &str) -> Regex {
    Regex::new(&format!(r"\b(?:{pattern})\b")).expect("valid regex")
}

static SUBTOTAL: LazyLock<Regex> = LazyLock::new(|| {
    words(
        r"TOTAL .*SUPPLIES|TAXABLE\w*|SU[BS8][ -]?T[O0]T\w*|SUB[ -]?TTL|SUB TOT|TOTAL\W{0,3}(?:EXCL|EXCLUDING|BEFORE|EX)|NET SALES|SALES? AMOUNT",
    )
});
static TAX: LazyLock<Regex> =
    LazyLock::new(|| words(r"TAX|TAXES|GST|VAT|SST|HST|PST|SERVICE CHARGE|SVC CHG|SERVICE|SRV"));
static INCLUSIVE: LazyLock<Regex> =
    LazyLock::new(|| words(r"INCL|INCLUSIVE|INC|INCLUDING|INCLUDES|INCL\."));
static TIP: LazyLock<Regex> = LazyLock::new(|| words(r"TIP|TIPS|GRATUITY"));
static DISCOUNT: LazyLock<Regex> =
    LazyLock::new(|| words(r"DISCOUNT|DISC|COUPON|SAVINGS|SAVED|YOU SAVE|PROMO|VOUCHER|OFF"));
static CASH: LazyLock<Regex> =
    LazyLock::new(|| words(r"CASH|TENDER|TENDERED|PAID|PAYMENT|AMOUNT RECEIVED|RECEIVED"));
static CARD: LazyLock<Regex> = LazyLock::new(|| {
    words(r"VISA|MASTERCARD|AMEX|AMERICAN EXPRESS|DISCOVER|CREDIT|DEBIT|CARD|EFTPOS|CHARGE")
});
static CHANGE: LazyLock<Regex> = LazyLock::new(|| words(r"CHANGE|CHG|CHANGE DUE|BAKI"));
static ROUNDING: LazyLock<Regex> = LazyLock::new(|| words(r"ROUNDING|ROUND|RND|ADJ|ADJUSTMENT"));
static COUNT: LazyLock<Regex> =
    LazyLock::new(|| words(r"QTY|QUANTITY|ITEMS?|PCS|UNITS|NO\. OF|COUNT"));
static GRAND: LazyLock<Regex> = LazyLock::new(|| {
    words(concat!(
        r"GRAND TOTAL|AMOUNT DUE|AMT DUE|BALANCE DUE|BAL DUE|TOTAL DUE|NETT TOTAL|NET TOTAL|",
        r"TOTAL PAYABLE|AMOUNT PAYABLE|TOTAL AMOUNT|TOTAL AMT|ROUNDED TOTAL|TOTAL ROUNDED|",
        r"TOTAL AFTER ROUNDING|PAYABLE|NET AMOUNT|NETT AMOUNT|TOTAL SALES|TOTAL TO PAY|PLEASE PAY"
    ))
});
static WEAK_TOTAL: LazyLock<Regex> =
    LazyLock::new(|| words(r"BALANCE|NETT|NET|AMOUNT|AMT|TTL|DUE"));
/// `TOTAL` and the ways OCR misreads it (`T0TAL`, `Tota!`, `IOTAL`).
static TOTAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:[TIL1][O0][TI1][A4][L1I|!]|OTAL\b|TOTL\b|TOAL\b|TOTA\b|TOT\b|TOTE\b|TOTAI\b)")
        .expect("valid regex")
});

/// The kind of a line, from the text before its amount.
pub fn line_kind(head: &str) -> LineKind {
    let upper = head.to_uppercase();
    let upper = upper.as_str();
    let totalish = TOTAL.is_match(upper) || GRAND.is_match(upper);
    if SUBTOTAL.is_match(upper) {
        return LineKind::Subtotal;
    }
    if totalish && COUNT.is_match(upper) {
        return LineKind::Count;
    }
    if TAX.is_match(upper) {
        let inclusive_total = totalish && INCLUSIVE.is_match(upper);
        return if inclusive_total {
            LineKind::GrandTotal
        } else {
            LineKind::Tax
        };
    }
    let checks: [(&Regex, LineKind); 7] = [
        (&TIP, LineKind::Tip),
        (&CHANGE, LineKind::Change),
        (&ROUNDING, LineKind::Rounding),
        (&DISCOUNT, LineKind::Discount),
        (&GRAND, LineKind::GrandTotal),
        (&CASH, LineKind::Cash),
        (&CARD, LineKind::Card),
    ];
    let found = checks
        .iter()
        .find(|(pattern, _)| pattern.is_match(upper))
        .map(|(_, k)| *k);
    match found {
        Some(LineKind::Rounding) if totalish => LineKind::GrandTotal,
        Some(kind) => kind,
        None if TOTAL.is_match(upper) => LineKind::Total,
        None if WEAK_TOTAL.is_match(upper) => LineKind::WeakTotal,
        None => LineKind::Other,
    }
}

impl LineKind {
    /// How strongly a line of this kind claims to hold the receipt's total.
    pub fn total_rank(self) -> u8 {
        match self {
            LineKind::GrandTotal => 3,
            LineKind::Total => 2,
            LineKind::WeakTotal => 1,
            _ => 0,
        }
    }

    /// Lines after which no more items are listed.
    pub fn ends_items(self) -> bool {
        matches!(
            self,
            LineKind::Subtotal | LineKind::Tax | LineKind::Total | LineKind::GrandTotal
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_labels_are_recognised_by_strength() {
        assert_eq!(line_kind("GRAND TOTAL"), LineKind::GrandTotal);
        assert_eq!(line_kind("Amount Due"), LineKind::GrandTotal);
        assert_eq!(line_kind("TOTAL (INCL GST)"), LineKind::GrandTotal);
        assert_eq!(line_kind("Total Inclusive GST:"), LineKind::GrandTotal);
        assert_eq!(line_kind("TOTAL:"), LineKind::Total);
        assert_eq!(line_kind("Tota! Incl. of GST"), LineKind::GrandTotal);
        assert_eq!(line_kind("T0TAL"), LineKind::Total);
        assert_eq!(line_kind("BALANCE"), LineKind::WeakTotal);
        assert_eq!(line_kind("NETT"), LineKind::WeakTotal);
    }

    #[test]
    fn subtotal_tax_tip_change_and_cash_lines_are_told_apart() {
        assert_eq!(line_kind("SUBTOTAL"), LineKind::Subtotal);
        assert_eq!(line_kind("Sub-Total"), LineKind::Subtotal);
        assert_eq!(line_kind("Sustota"), LineKind::Subtotal);
        assert_eq!(line_kind("Total Excl GST"), LineKind::Subtotal);
        assert_eq!(
            line_kind("Total 6% supplies (Inc. GST)"),
            LineKind::Subtotal
        );
        assert_eq!(line_kind("TOTAL GST"), LineKind::Tax);
        assert_eq!(line_kind("Tax 8.9%"), LineKind::Tax);
        assert_eq!(line_kind("Tip"), LineKind::Tip);
        assert_eq!(line_kind("CHANGE"), LineKind::Change);
        assert_eq!(line_kind("CASH"), LineKind::Cash);
        assert_eq!(line_kind("VISA"), LineKind::Card);
        assert_eq!(line_kind("TOTAL QTY"), LineKind::Count);
        assert_eq!(line_kind("Rounding Adj"), LineKind::Rounding);
        assert_eq!(line_kind("Chicken Rice"), LineKind::Other);
    }
}
