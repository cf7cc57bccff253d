//! Subtotal, tax and tip, and the sums that tie them to the total: items ≈
//! subtotal, subtotal + tax (+ tip) ≈ total. Two readings that add up are
//! evidence that neither was misread, so the sums both pick between
//! candidates and raise confidence.

use std::sync::LazyLock;

use bigdecimal::{BigDecimal, Zero};
use regex::Regex;

use super::labels::LineKind;
use super::{Found, Line};
use crate::ocr::ParsedItem;

/// The amounts a total is built from, each with its source line.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    pub subtotal: Option<Found<BigDecimal>>,
    /// All tax lines before the total, added up; the line is the first.
    pub tax: Option<Found<BigDecimal>>,
    pub tip: Option<Found<BigDecimal>>,
    /// The receipt says its prices include the tax (`GST INCLUDED`): the
    /// subtotal is then already the total.
    pub tax_included: bool,
}

impl Sums {
    /// Subtotal + tax, when both were read.
    pub fn expected_total(&self) -> Option<BigDecimal> {
        let subtotal = &self.subtotal.as_ref()?.value;
        if self.tax_included {
            return Some(subtotal.clone());
        }
        Some(subtotal + &self.tax.as_ref()?.value)
    }

    /// True when `total` is subtotal + tax, or that plus the tip.
    pub fn adds_up_to(&self, total: &BigDecimal) -> bool {
        let Some(expected) = self.expected_total() else {
            return false;
        };
        let tip = self.tip.as_ref().map(|t| t.value.clone());
        &expected == total || tip.is_some_and(|t| &(expected + t) == total)
    }
}

/// Read subtotal, tax and tip; confidence is higher when they add up to a
/// labelled total on the receipt.
pub fn find_sums(lines: &[Line]) -> Sums {
    let end = first_total_line(lines).unwrap_or(lines.len());
    let mut sums = Sums {
        subtotal: first_amount(lines, LineKind::Subtotal, 0.6),
        tax: taxes_before(&lines[..end]).or_else(|| first_amount(lines, LineKind::Tax, 0.5)),
        tip: first_amount(lines, LineKind::Tip, 0.6),
        tax_included: lines.iter().any(says_tax_included),
    };
    let confirmed = lines
        .iter()
        .filter(|l| l.kind.total_rank() > 0)
        .filter_map(|l| l.amount.as_ref())
        .any(|total| sums.adds_up_to(total));
    if confirmed {
        for found in [&mut sums.subtotal, &mut sums.tax].into_iter().flatten() {
            found.confidence = 0.9;
        }
    }
    sums
}

/// `INC 6% GST 1.62`, `GST INCLUDED IN TOTAL`: a tax line (not a total
/// line such as `Total Incl GST`) saying the prices include it.
fn says_tax_included(line: &Line) -> bool {
    // A literal exercised by the unit tests: it compiles.
    static INCLUDED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\bINC.*\b(GST|TAX|VAT|SST)\b|\b(GST|TAX|VAT|SST)\b.*\bINC")
            .expect("valid regex")
    });
    let kind_allows = matches!(line.kind, LineKind::Tax | LineKind::Other);
    kind_allows && INCLUDED.is_match(&line.text)
}

/// Subtotal + tax = total read from amounts at most one line away from
/// their labels: a tilted photo or a second column shifts amounts by a
/// line (`$3.49` above `Total Tax:`). Returns the three when such a sum
/// exists with at least one amount off its label's line (when all sit on
/// their own lines, the labels have already said which total it is).
pub fn shifted_sum(lines: &[Line]) -> Option<[Found<BigDecimal>; 3]> {
    let subtotals = amounts_near(lines, |l| l.kind == LineKind::Subtotal);
    let taxes = amounts_near(lines, |l| l.kind == LineKind::Tax);
    let totals = amounts_near(lines, |l| {
        l.kind.total_rank() > 0 || l.kind == LineKind::Card
    });
    let found = |value: &BigDecimal, line: usize| Found {
        value: value.clone(),
        line,
        confidence: 0.7,
    };
    totals.iter().find_map(|(total, t_line)| {
        subtotals.iter().find_map(|(sub, s_line)| {
            let (tax, x_line) = taxes
                .iter()
                .find(|(tax, x_line)| x_line != s_line && tax < sub && &(sub + tax) == total)?;
            let distinct = s_line != t_line && x_line != t_line;
            let aligned = on_label(lines, *s_line, |k| k == LineKind::Subtotal)
                && on_label(lines, *x_line, |k| k == LineKind::Tax)
                && on_label(lines, *t_line, |k| k.total_rank() > 0);
            (distinct && !aligned).then(|| {
                [
                    found(sub, *s_line),
                    found(tax, *x_line),
                    found(total, *t_line),
                ]
            })
        })
    })
}

/// True when the line with source index `index` is itself of the kind.
fn on_label(lines: &[Line], index: usize, is_kind: impl Fn(LineKind) -> bool) -> bool {
    lines.iter().any(|l| l.index == index && is_kind(l.kind))
}

/// Positive amounts on the lines next to (or on) a line that `is_label`.
fn amounts_near(lines: &[Line], is_label: impl Fn(&Line) -> bool) -> Vec<(BigDecimal, usize)> {
    let near = |i: usize| {
        let from = i.saturating_sub(1);
        lines[from..(i + 2).min(lines.len())].iter().any(&is_label)
    };
    (0..lines.len())
        .filter(|&i| near(i))
        .filter_map(|i| {
            let amount = lines[i]
                .amount
                .clone()
                .filter(|a| a > &BigDecimal::zero())?;
            Some((amount, lines[i].index))
        })
        .collect()
}

/// The first line of a total label (TOTAL or stronger) with an amount.
pub fn first_total_line(lines: &[Line]) -> Option<usize> {
    lines
        .iter()
        .position(|l| l.kind.total_rank() >= 2 && l.amount.is_some())
}

fn first_amount(lines: &[Line], kind: LineKind, confidence: f32) -> Option<Found<BigDecimal>> {
    let line = lines
        .iter()
        .find(|l| l.kind == kind && l.amount.as_ref().is_some_and(|a| !a.is_zero()))?;
    Some(Found {
        value: line.amount.clone()?,
        line: line.index,
        confidence,
    })
}

/// Tax lines above the total added up (state and city tax, GST and
/// service charge), each distinct amount once: a tax repeated as
/// `Total tax` is not a second tax.
fn taxes_before(lines: &[Line]) -> Option<Found<BigDecimal>> {
    let mut amounts: Vec<&BigDecimal> = Vec::new();
    let mut first = None;
    for line in lines.iter().filter(|l| l.kind == LineKind::Tax) {
        let Some(amount) = line.amount.as_ref().filter(|a| !a.is_zero()) else {
            continue;
        };
        first.get_or_insert(line.index);
        if !amounts.contains(&amount) {
            amounts.push(amount);
        }
    }
    Some(Found {
        value: amounts.into_iter().sum(),
        line: first?,
        confidence: 0.6,
    })
}

/// Items whose line totals add up to `target` (the subtotal or total).
fn items_add_up_to(sum: &BigDecimal, target: Option<&BigDecimal>) -> bool {
    target.is_some_and(|t| (t - sum).is_zero())
}

/// `Food 19.75`, `Liquor 24.00` printed under the items: when the last one
/// to three "items" add up to all the items above them, they are category
/// subtotals, not purchases.
pub fn without_category_totals(mut items: Vec<ParsedItem>) -> Vec<ParsedItem> {
    let sum = |items: &[ParsedItem]| -> BigDecimal { items.iter().map(|i| &i.line_total).sum() };
    for run in 1..=3 {
        let Some(split) = items.len().checked_sub(run).filter(|&s| s >= 2) else {
            break;
        };
        if sum(&items[split..]) == sum(&items[..split]) {
            items.truncate(split);
            break;
        }
    }
    items
}

/// Items are trustworthy when their line totals add up to the subtotal
/// (or the total); otherwise some were probably missed or misread.
pub fn items_confidence(items: &[ParsedItem], sums: &Sums, total: Option<&BigDecimal>) -> f32 {
    if items.is_empty() {
        return 0.0;
    }
    let sum: BigDecimal = items.iter().map(|i| i.line_total.clone()).sum();
    let subtotal = sums.subtotal.as_ref().map(|s| &s.value);
    let adds_up = items_add_up_to(&sum, subtotal) || items_add_up_to(&sum, total);
    if adds_up { 0.9 } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::super::parse_receipt;

    fn dec(s: &str) -> Option<bigdecimal::BigDecimal> {
        s.parse().ok()
    }

    #[test]
    fn subtotal_tax_and_tip_are_read_with_their_lines() {
        let r = parse_receipt("CAFE\n\nLatte 4.00\nSubtotal 4.00\nTax 0.36\nTip 1.00\nTotal 5.36");
        assert_eq!(r.subtotal, dec("4.00"));
        assert_eq!(r.tax, dec("0.36"));
        assert_eq!(r.tip, dec("1.00"));
        assert_eq!(r.lines.subtotal, Some(3));
        assert_eq!(r.lines.tax, Some(4));
        assert_eq!(r.lines.tip, Some(5));
    }

    #[test]
    fn several_tax_lines_are_added_up_and_a_repeated_one_counted_once() {
        let r = parse_receipt("SHOP\nSubtotal 10.00\nState Tax 0.40\nCity Tax 0.20\nTOTAL 10.60");
        assert_eq!(r.tax, dec("0.60"));
        let r = parse_receipt("SHOP\nSubtotal 10.00\nGST 0.60\nTotal GST 0.60\nTOTAL 10.60");
        assert_eq!(r.tax, dec("0.60"));
    }

    #[test]
    fn amounts_shifted_a_line_from_their_labels_are_matched_by_their_sum() {
        let r = parse_receipt(
            "SHOP\nSubtotal: $20.00\n$1.50\nTax:\n$21.50\nTotal:\n$10.75\nPer guest:",
        );
        assert_eq!(r.total_amount, dec("21.50"));
        assert_eq!(r.tax, dec("1.50"));
        assert_eq!(r.lines.total_amount, Some(4));
    }

    #[test]
    fn a_later_total_after_a_service_charge_is_not_replaced_by_the_sum() {
        let text = "SHOP\nSubtotal 20.00\nTax 2.00\nTotal 22.00\nService Charge 4.00\nTotal 26.00";
        assert_eq!(parse_receipt(text).total_amount, dec("26.00"));
    }

    #[test]
    fn a_tax_the_prices_include_is_not_added_to_the_subtotal() {
        let r = parse_receipt("SHOP\nSUBTOTAL 21.20\nINC 6% GST 1.20\nCASH 50.00\nCHANGE 28.80");
        assert_eq!(r.total_amount, dec("21.20"));
    }

    #[test]
    fn a_subtotal_and_tax_that_add_up_to_the_total_are_trusted_more() {
        let sure = parse_receipt("SHOP\nSubtotal 10.00\nTax 0.80\nTOTAL 10.80");
        let unsure = parse_receipt("SHOP\nSubtotal 10.00\nTax 0.80\nTOTAL 12.80");
        assert!(sure.confidence.subtotal > unsure.confidence.subtotal);
        assert!(sure.confidence.tax > unsure.confidence.tax);
    }
}
