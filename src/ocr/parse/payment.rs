//! How the receipt was paid: the method (card brand or cash) and the
//! amount paid, which checks the total or stands in for it.

use std::sync::LazyLock;

use bigdecimal::BigDecimal;
use regex::Regex;

use super::labels::LineKind;
use super::{Found, Line};

/// Card brands and tenders as printed, most specific first, with the name
/// reported for each.
static METHODS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"VISA", "VISA"),
        (r"MASTER ?CARD|MASTERCRD|M/?C\b|MCARD", "MASTERCARD"),
        (r"AMEX|AMERICAN EXPRESS", "AMEX"),
        (r"DISCOVER", "DISCOVER"),
        (r"DEBIT|EFTPOS|INTERAC|NETS", "DEBIT"),
        (r"CASH|TUNAI", "CASH"),
        (r"CREDIT|CARD", "CREDIT"),
    ]
    .into_iter()
    // The patterns are literals exercised by the unit tests: they compile.
    .map(|(p, name)| {
        (
            Regex::new(&format!(r"\b(?:{p})")).expect("valid regex"),
            name,
        )
    })
    .collect()
});

/// What was paid, read from payment lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Paid {
    pub value: BigDecimal,
    /// The source line ([`Line::index`]).
    pub line: usize,
    /// False for cash handed over with no change line: it may be more
    /// than the total.
    pub exact: bool,
}

/// The payment method: the method named on the first payment line with an
/// amount, else a card brand named anywhere (`Card Type: VISA`).
pub fn find_payment_method(lines: &[Line]) -> Option<Found<String>> {
    let paying =
        |l: &&Line| matches!(l.kind, LineKind::Card | LineKind::Cash) && l.amount.is_some();
    let on_payment_line = lines
        .iter()
        .filter(paying)
        .find_map(|l| method_named(&l.head).map(|m| (m, l.index, 0.85)));
    let anywhere = || {
        lines
            .iter()
            .find_map(|l| method_named(&l.text).map(|m| (m, l.index, 0.6)))
    };
    let (method, line, confidence) = on_payment_line.or_else(anywhere)?;
    Some(Found {
        value: method.to_string(),
        line,
        confidence,
    })
}

fn method_named(text: &str) -> Option<&'static str> {
    let upper = text.to_uppercase();
    METHODS
        .iter()
        .find(|(pattern, _)| pattern.is_match(&upper))
        .map(|(_, name)| *name)
}

/// What was paid: the first card payment, else cash minus change, else
/// the cash handed over (not exact).
pub fn amount_paid(lines: &[Line]) -> Option<Paid> {
    let first_of = |kind: LineKind| lines.iter().find(|l| l.kind == kind && l.amount.is_some());
    let paid = |line: &Line, value: BigDecimal, exact: bool| Paid {
        value,
        line: line.index,
        exact,
    };
    if let Some(card) = first_of(LineKind::Card) {
        return Some(paid(card, card.amount.clone()?, true));
    }
    let cash = first_of(LineKind::Cash)?;
    let handed = cash.amount.clone()?;
    match first_of(LineKind::Change).and_then(|l| l.amount.clone()) {
        Some(change) => Some(paid(cash, handed - change.abs(), true)),
        None => Some(paid(cash, handed, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_receipt;

    fn method_of(text: &str) -> (Option<String>, Option<usize>) {
        let r = parse_receipt(text);
        (r.payment_method, r.lines.payment_method)
    }

    #[test]
    fn the_card_brand_on_the_payment_line_is_the_method() {
        let text = "SHOP\nTOTAL 9.00\nMASTERCARD 9.00";
        assert_eq!(method_of(text), (Some("MASTERCARD".into()), Some(2)));
        assert_eq!(
            method_of("SHOP\nTOTAL 9.00\nAmex 9.00").0.as_deref(),
            Some("AMEX")
        );
    }

    #[test]
    fn cash_handed_over_is_the_method_cash() {
        let text = "SHOP\nTOTAL 9.00\n\nCASH TENDERED 10.00\nCHANGE 1.00";
        assert_eq!(method_of(text), (Some("CASH".into()), Some(3)));
    }

    #[test]
    fn a_card_brand_named_away_from_the_amount_is_found() {
        let text = "SHOP\nTOTAL 9.00\nCard Type: VISA\nXXXXXXXXXXXX4321";
        assert_eq!(method_of(text), (Some("VISA".into()), Some(2)));
    }

    #[test]
    fn a_debit_payment_is_the_method_debit() {
        assert_eq!(
            method_of("SHOP\nTOTAL 4.00\nDEBIT 4.00").0.as_deref(),
            Some("DEBIT")
        );
    }
}
