//! The receipt's total: the amount on the most strongly labelled total
//! line, checked against the subtotal, tax and payments around it; with
//! weaker fallbacks (the card payment, cash minus change) when no total
//! label was read.

use bigdecimal::BigDecimal;

use super::Line;
use super::arithmetic::Sums;
use super::labels::LineKind;

/// The total and how sure we are of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundTotal {
    pub value: BigDecimal,
    /// The source line ([`Line::index`]); `None` when computed from others.
    pub line: Option<usize>,
    pub confidence: f32,
}

/// Find the total among the classified lines.
pub fn find_total(lines: &[Line], sums: &Sums) -> Option<FoundTotal> {
    let Some(position) = labelled_total(lines) else {
        return fallback_total(lines, sums);
    };
    let mut found = found_at(lines, position, label_confidence(&lines[position]))?;
    if agrees_with_other_lines(lines, sums, &found.value) {
        found.confidence = (found.confidence + 0.15).min(1.0);
    }
    Some(found)
}

fn found_at(lines: &[Line], position: usize, confidence: f32) -> Option<FoundTotal> {
    let line = &lines[position];
    Some(FoundTotal {
        value: line.amount.clone()?,
        line: Some(line.index),
        confidence,
    })
}

fn label_confidence(line: &Line) -> f32 {
    match line.kind.total_rank() {
        3 => 0.8,
        2 => 0.75,
        _ => 0.5,
    }
}

/// The first line of the strongest total label. The first, because a
/// restaurant slip repeats TOTAL after the tip line, and the printed total
/// before any handwriting is the one a reader can trust. But a total
/// followed by a tax line and a larger total was a pre-tax one (`Net
/// Total`, then `Tax`, then `TOTAL`).
fn labelled_total(lines: &[Line]) -> Option<usize> {
    let with_amount = |l: &&Line| l.amount.is_some();
    let best_rank = lines
        .iter()
        .filter(with_amount)
        .map(|l| l.kind.total_rank())
        .max()?;
    if best_rank == 0 {
        return None;
    }
    let first = lines
        .iter()
        .position(|l| l.amount.is_some() && l.kind.total_rank() == best_rank)?;
    Some(later_total_after_tax(lines, first).unwrap_or(first))
}

/// The total that replaces the one at `index` further down: after a tax
/// line, a larger total (the first was pre-tax); after a rounding line, any
/// total, or a bare amount right under the rounding line (the rounded
/// amount is what was paid).
fn later_total_after_tax(lines: &[Line], index: usize) -> Option<usize> {
    let chosen = lines[index].amount.as_ref()?;
    let (mut after_tax, mut after_rounding) = (false, false);
    for (offset, line) in lines[index + 1..].iter().enumerate() {
        let Some(amount) = line.amount.as_ref() else {
            continue;
        };
        let rank = line.kind.total_rank();
        let bare_under_rounding = after_rounding
            && line.kind == LineKind::Other
            && super::letters(&line.head) <= 3
            && lines[index + offset].kind == LineKind::Rounding;
        if (after_rounding && rank >= 1) || bare_under_rounding {
            return Some(index + 1 + offset);
        }
        if after_tax && rank >= 2 && amount > chosen {
            return Some(index + 1 + offset);
        }
        after_tax |= line.kind == LineKind::Tax;
        after_rounding |= line.kind == LineKind::Rounding;
    }
    None
}

/// Without a total label, the payment lines, cross-checked against
/// subtotal + tax: what was paid by card, or cash minus change, is taken
/// when it adds up (or nothing says otherwise); when it disagrees, the
/// printed subtotal + tax is, because a card slip may include a tip.
fn fallback_total(lines: &[Line], sums: &Sums) -> Option<FoundTotal> {
    let expected = sums.expected_total();
    let paid = super::payment::amount_paid(lines);
    match (paid, expected) {
        (Some(paid), None) => Some(FoundTotal {
            value: paid.value,
            line: Some(paid.line),
            confidence: if paid.exact { 0.45 } else { 0.3 },
        }),
        (Some(paid), Some(_)) if sums.adds_up_to(&paid.value) => Some(FoundTotal {
            value: paid.value,
            line: Some(paid.line),
            confidence: 0.7,
        }),
        (_, Some(value)) => Some(FoundTotal {
            value,
            line: None,
            confidence: 0.35,
        }),
        (None, None) if sums.tax.is_none() || sums.tax_included => {
            let subtotal = sums.subtotal.as_ref()?;
            Some(FoundTotal {
                value: subtotal.value.clone(),
                line: Some(subtotal.line),
                confidence: 0.3,
            })
        }
        (None, None) => None,
    }
}

/// True when subtotal + tax (+ tip), or a payment, equals the total read:
/// two independent readings agreeing make an OCR error unlikely.
fn agrees_with_other_lines(lines: &[Line], sums: &Sums, total: &BigDecimal) -> bool {
    let paid = super::payment::amount_paid(lines);
    sums.adds_up_to(total) || paid.is_some_and(|p| &p.value == total)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::super::parse_receipt;
    use super::*;

    fn total_of(text: &str) -> Option<BigDecimal> {
        parse_receipt(text).total_amount
    }

    fn dec(s: &str) -> Option<BigDecimal> {
        BigDecimal::from_str(s).ok()
    }

    #[test]
    fn subtotal_and_tax_lines_are_never_taken_for_the_total() {
        let text = "SHOP\nSUBTOTAL 5.00\nTAX 0.40\nTOTAL 5.40\n";
        assert_eq!(total_of(text), dec("5.40"));
        assert_eq!(total_of("SHOP\nTotal GST 3.41\nTOTAL 60.30"), dec("60.30"));
    }

    #[test]
    fn tip_change_and_cash_lines_are_never_taken_for_the_total() {
        let text = "CAFE\nTotal 12.00\nCASH 20.00\nCHANGE 8.00\nTip 2.00\n";
        assert_eq!(total_of(text), dec("12.00"));
    }

    #[test]
    fn every_usual_total_label_is_understood() {
        for label in [
            "TOTAL",
            "GRAND TOTAL",
            "AMOUNT DUE",
            "TOTAL (INCL GST)",
            "BALANCE",
            "NETT",
        ] {
            assert_eq!(
                total_of(&format!("SHOP\nBread 3.00\n{label} 3.00")),
                dec("3.00"),
                "{label}"
            );
        }
    }

    #[test]
    fn a_grand_total_wins_over_a_plain_total() {
        let text = "SHOP\nTOTAL 60.32\nROUNDING -0.02\nTOTAL AFTER ROUNDING 60.30\nCASH 100.00";
        assert_eq!(total_of(text), dec("60.30"));
    }

    #[test]
    fn a_net_total_before_tax_gives_way_to_the_total_after_it() {
        let text = "DINER\nBurger 14.85\nNet Total: $14.85\nTax: $1.71\nTOTAL: $16.56";
        assert_eq!(total_of(text), dec("16.56"));
    }

    #[test]
    fn a_rounded_total_replaces_the_total_before_rounding() {
        let text = "SHOP\nTotal Incl. GST RM 11.23\nROUNDING ADJUSTMENT RM 0.02\nTOTAL RM 11.25";
        assert_eq!(total_of(text), dec("11.25"));
    }

    #[test]
    fn a_rounded_amount_after_tax_and_rounding_lines_is_the_total() {
        let text =
            "SHOP\nTotal Amount: RM7.72\nGST 6%: RM0.44\nRounding: -RM0.02\nNett Total: RM7.70";
        assert_eq!(total_of(text), dec("7.70"));
        let text = "SHOP\nTOTAL AMT RM 60.31\nROUNDING ADJ -0.01\nRM 60.30";
        assert_eq!(total_of(text), dec("60.30"));
    }

    #[test]
    fn ocr_garbage_after_the_total_amount_is_ignored() {
        assert_eq!(
            total_of("SHOP\nBread 3.00\nTota 17.80 a os\n"),
            dec("17.80")
        );
        assert_eq!(total_of("SHOP\nTotal: $14.18 | : / ["), dec("14.18"));
    }

    #[test]
    fn the_total_amount_may_sit_on_the_line_after_its_label() {
        assert_eq!(total_of("SHOP\nBread 3.00\nTOTAL\n$3.00\n"), dec("3.00"));
    }

    #[test]
    fn a_card_payment_that_disagrees_with_subtotal_and_tax_is_not_the_total() {
        let found = parse_receipt("SHOP\nSubtotal 10.00\nTax 0.80\nVISA 12.80");
        assert_eq!(found.total_amount, dec("10.80"));
        assert_eq!(found.lines.total_amount, None);
        let found = parse_receipt("SHOP\nSubtotal 10.00\nTax 0.80\nVISA 10.80");
        assert_eq!(found.total_amount, dec("10.80"));
        assert_eq!(found.lines.total_amount, Some(3));
        assert!(found.confidence.total_amount >= 0.7);
    }

    #[test]
    fn a_subtotal_with_blank_tip_and_total_lines_is_the_total() {
        assert_eq!(
            total_of("CAFE\nSubtotal: 18.20\nTip\nTotal\n"),
            dec("18.20")
        );
    }

    #[test]
    fn the_total_line_index_counts_empty_lines() {
        let found = parse_receipt("SHOP\n\n\nTea 3.00\n\nTOTAL 3.00");
        assert_eq!(found.lines.total_amount, Some(5));
    }

    #[test]
    fn without_a_total_label_the_card_payment_is_the_total() {
        let found = parse_receipt("SHOP\nBread 3.00\nVISA 3.00\n");
        assert_eq!(found.total_amount, dec("3.00"));
        assert!(found.confidence.total_amount < 0.5);
    }
}
