//! Line items: the lines between the header and the subtotal that end in a
//! price, with their quantity (`2 x 3.99`, `2 @ 3.99`, a leading count, a
//! quantity column), names wrapped onto a line of their own, and discounts
//! taken off the item above them.

use std::str::FromStr;
use std::sync::LazyLock;

use bigdecimal::{BigDecimal, Zero};
use regex::Regex;

use super::Line;
use super::amount::amounts_in;
use super::labels::LineKind;
use crate::ocr::ParsedItem;

// The patterns are literals exercised by the unit tests: they compile.
/// `2 x 3.99`, `2 @ 3.99`, `2x3.99`, `2 @ $3.99 ea` at the end of the name part.
static TIMES_UNIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|\s)(\d{1,3})\s*[x@*]\s*[$€£]?\s*(\d+[.,]\d{2})\s*(?:EA|EACH|/EA)?\s*$")
        .expect("valid regex")
});
/// A leading count: `2 Burger`, `2x Burger`, `1 #1 CHKN PLATE`.
static LEADING_QUANTITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(\d{1,3})\s*[x@]?\s+(\S.*)$").expect("valid regex"));
/// A count after the name: `Koobideh x 7`.
static TRAILING_QUANTITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(.*\S)\s+[x@]\s*(\d{1,3})$").expect("valid regex"));
/// A menu or line number before the name: `6.5 Chicken Korma`, `12. Pho`.
static LEADING_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d+(?:[.,]\d+)+\.?\s+|^\d+\.\s*").expect("valid regex"));

/// The items listed before the first subtotal, tax or total line. Above
/// the first price, such a label without an amount is header text (`VAT
/// No: 123456`, `Please pay at the counter`), not the end of the items.
pub fn find_items(lines: &[Line]) -> Vec<ParsedItem> {
    let first_priced = lines.iter().position(|l| l.amount.is_some());
    let end = lines
        .iter()
        .enumerate()
        .position(|(i, l)| l.kind.ends_items() && (l.amount.is_some() || first_priced < Some(i)))
        .unwrap_or(lines.len());
    let mut items: Vec<ParsedItem> = Vec::new();
    for (index, line) in lines[..end].iter().enumerate() {
        let Some(line_total) = line.amount.clone() else {
            continue;
        };
        if line.kind == LineKind::Discount || line_total < BigDecimal::zero() {
            if let Some(last) = items.last_mut() {
                last.line_total += line_total.clone();
            }
            continue;
        }
        // `%` marks a rate: tax, service charge or a percentage discount.
        if line.kind != LineKind::Other || line.head.contains('%') {
            continue;
        }
        let wrapped = index
            .checked_sub(1)
            .map(|i| &lines[i])
            .filter(|l| is_wrapped_name(l));
        let head = counted_name_below(&lines[..end], index).map_or(&line.head, |l| &l.text);
        let item = parse_item(head, wrapped.map(|l| l.text.as_str()), line_total);
        items.extend(item.map(|i| ParsedItem {
            line: Some(line.index),
            ..i
        }));
    }
    super::arithmetic::without_category_totals(items)
}

/// A slanted photo can lift a price onto the line above its item: a line
/// with a price but no count of its own (`Table: 16 9.54`, a modifier),
/// over a counted item without a price (`6 TAP BEER`), whose own next line
/// is not a bare price. The counted line below is the item.
fn counted_name_below(lines: &[Line], index: usize) -> Option<&Line> {
    let below = lines.get(index + 1)?;
    let counted = |text: &str| {
        LEADING_QUANTITY.is_match(text.trim_start_matches(|c: char| !c.is_alphanumeric()))
    };
    let bare_price_after = lines
        .get(index + 2)
        .is_some_and(|l| l.amount.is_some() && letters(&l.head) < 2);
    let fits = below.amount.is_none()
        && below.kind == LineKind::Other
        && counted(&below.text)
        && letters(&below.text) >= 3
        && !counted(&lines[index].head)
        && !bare_price_after;
    fits.then_some(below)
}

/// A line holding only a name whose price is on the next line.
fn is_wrapped_name(line: &Line) -> bool {
    line.amount.is_none() && line.kind == LineKind::Other && letters(&line.text) >= 3
}

/// One item from the text before its price (`head`) and, when the head has
/// no name of its own, the name wrapped onto the line above.
fn parse_item(head: &str, name_above: Option<&str>, line_total: BigDecimal) -> Option<ParsedItem> {
    let (rest, quantity, unit) = split_quantity(head, &line_total);
    let mut name = clean_item_name(&rest);
    if letters(&name) < 2 {
        name = clean_item_name(name_above?);
    }
    if letters(&name) < 2 {
        return None;
    }
    Some(ParsedItem {
        name,
        quantity,
        unit_price: unit,
        line_total,
        line: None,
    })
}

/// The name part, the quantity and the unit price of an item's text.
fn split_quantity(head: &str, line_total: &BigDecimal) -> (String, BigDecimal, BigDecimal) {
    let head = head
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .trim();
    if let Some(caps) = TIMES_UNIT.captures(head) {
        let quantity = BigDecimal::from_str(&caps[1]).unwrap_or_else(|_| BigDecimal::from(1));
        let unit = super::amount::parse_amount(&caps[2]).unwrap_or_else(|| line_total / &quantity);
        let rest = head[..caps.get(0).map_or(0, |m| m.start())].to_string();
        return (rest, quantity, unit);
    }
    if let Some((rest, quantity, unit)) = quantity_and_unit_columns(head, line_total) {
        return (rest, quantity, unit);
    }
    let head = LEADING_CODE.replace(head, "");
    let head = head.as_ref();
    let counted = LEADING_QUANTITY
        .captures(head)
        .map(|caps| (caps[2].to_string(), caps[1].to_string()))
        .or_else(|| {
            let caps = TRAILING_QUANTITY.captures(head)?;
            Some((caps[1].to_string(), caps[2].to_string()))
        })
        .and_then(|(rest, count)| {
            let quantity = BigDecimal::from_str(&count).ok().filter(|q| !q.is_zero())?;
            Some((rest, quantity))
        });
    match counted {
        Some((rest, quantity)) => {
            let unit = (line_total / &quantity).round(2);
            (rest, quantity, unit)
        }
        None => (head.to_string(), BigDecimal::from(1), line_total.clone()),
    }
}

/// `Burger 2 7.95 [15.90]`: a count then a unit price whose product is the
/// line total.
fn quantity_and_unit_columns(
    head: &str,
    line_total: &BigDecimal,
) -> Option<(String, BigDecimal, BigDecimal)> {
    let unit = amounts_in(head).pop()?;
    let before = head[..unit.start].trim_end();
    let (rest, count) = before.rsplit_once(' ')?;
    let quantity = BigDecimal::from_str(count).ok().filter(|q| !q.is_zero())?;
    let product = &quantity * &unit.value;
    ((product - line_total).abs() <= BigDecimal::from_str("0.01").ok()?)
        .then(|| (rest.to_string(), quantity, unit.value))
}

/// The name without OCR debris: stray marks at either end and inside
/// (`Andoui | le`), short lower-case fragments before it (`do Green Salad`,
/// from the paper's edge), and a price echoed into it (`DINNER $29.8`) or
/// glued to it (`POTPIE9.99`).
fn clean_item_name(raw: &str) -> String {
    static ECHOED_PRICE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\s(?:[$€£]\d+[.,]?\d*|\d+[.,]\d{2})\s*$").expect("valid regex")
    });
    static GLUED_PRICE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"([A-Za-z])[$€£]?\d+[.,]\d{2}\s*$").expect("valid regex"));
    let without_price = ECHOED_PRICE.replace(raw, "");
    let without_price = GLUED_PRICE.replace(&without_price, "$1");
    let trimmed = without_price
        .trim_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '#' | '(' | ')' | '&'));
    let trimmed = trimmed.trim_end_matches(['$', '€', '£', ' ', '.', ':']);
    let words: Vec<&str> = trimmed
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_alphanumeric() || c == '&'))
        .collect();
    super::without_leading_debris(&words).join(" ")
}

fn letters(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphabetic()).count()
}

#[cfg(test)]
mod tests {
    use super::super::parse_receipt;
    use super::*;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    fn items_of(text: &str) -> Vec<(String, BigDecimal, BigDecimal, BigDecimal)> {
        parse_receipt(text)
            .items
            .into_iter()
            .map(|i| (i.name, i.quantity, i.unit_price, i.line_total))
            .collect()
    }

    #[test]
    fn quantity_times_unit_price_is_read_from_the_item_line() {
        let items = items_of("SHOP\nMilk 2 x 3.99 7.98\nEggs 2 @ 1.50 3.00\nTOTAL 10.98");
        assert_eq!(
            items[0],
            ("Milk".into(), dec("2"), dec("3.99"), dec("7.98"))
        );
        assert_eq!(
            items[1],
            ("Eggs".into(), dec("2"), dec("1.50"), dec("3.00"))
        );
    }

    #[test]
    fn a_leading_count_is_the_quantity() {
        let items = items_of("SHOP\n1 #1 CHKN PLATE $9.39\n2 Coke 4.00\nTOTAL 13.39");
        assert_eq!(
            items[0],
            ("#1 CHKN PLATE".into(), dec("1"), dec("9.39"), dec("9.39"))
        );
        assert_eq!(
            items[1],
            ("Coke".into(), dec("2"), dec("2.00"), dec("4.00"))
        );
    }

    #[test]
    fn a_count_after_the_name_and_a_menu_number_before_it_are_understood() {
        let items = items_of("SHOP\nKoobideh x 7 115.50\n6.5 Chicken Korma 11.95\nTOTAL 127.45");
        assert_eq!(
            items[0],
            ("Koobideh".into(), dec("7"), dec("16.50"), dec("115.50"))
        );
        assert_eq!(items[1].0, "Chicken Korma");
    }

    #[test]
    fn a_misread_unit_price_is_not_part_of_the_name() {
        let items = items_of("SHOP\n2 WEEKEND BUFFET 19.39 39.98\nTOTAL 39.98");
        assert_eq!(items[0].0, "WEEKEND BUFFET");
        assert_eq!(items[0].1, dec("2"));
    }

    #[test]
    fn a_quantity_column_with_unit_price_and_line_total_is_read() {
        let items = items_of("SHOP\nBurger 2 7.95 15.90\nTOTAL 15.90");
        assert_eq!(
            items[0],
            ("Burger".into(), dec("2"), dec("7.95"), dec("15.90"))
        );
    }

    #[test]
    fn an_item_name_wrapped_above_its_price_line_is_joined() {
        let items = items_of("SHOP\nORGANIC WHOLE MILK\n2 @ 3.99 7.98\nTOTAL 7.98");
        assert_eq!(
            items[0],
            (
                "ORGANIC WHOLE MILK".into(),
                dec("2"),
                dec("3.99"),
                dec("7.98")
            )
        );
    }

    #[test]
    fn a_discount_is_taken_off_the_item_above() {
        let items = items_of("SHOP\nCoffee 4.00\nDiscount -1.00\nTOTAL 3.00");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].3, dec("3.00"));
    }

    #[test]
    fn ocr_debris_around_an_item_name_is_removed() {
        let items = items_of(
            "SHOP\n| 3 Sockeye Salmon 36.00\ndo Green Salad 8.00\nLunch Shrimp & Andoui | le 13.95\nTOTAL 57.95",
        );
        assert_eq!(items[0].0, "Sockeye Salmon");
        assert_eq!(items[0].1, dec("3"));
        assert_eq!(items[1].0, "Green Salad");
        assert_eq!(items[2].0, "Lunch Shrimp & Andoui le");
    }

    #[test]
    fn tax_and_service_lines_with_a_rate_are_not_items() {
        let items = items_of("SHOP\nTea 2.00\nHI 4.712% GET 0.09\nTOTAL 2.09");
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn each_item_knows_the_source_line_of_its_price() {
        let r = parse_receipt("SHOP\n\nTea 2.00\nORGANIC WHOLE MILK\n2 @ 3.99 7.98\nTOTAL 9.98");
        let lines: Vec<Option<usize>> = r.items.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![Some(2), Some(4)]);
    }

    #[test]
    fn a_tax_number_or_a_pay_here_sign_above_the_items_does_not_end_them() {
        let items =
            items_of("SHOP\nVAT No: 123456789\nPlease pay at the counter\nTea 2.00\nTOTAL 2.00");
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn a_unit_price_glued_to_the_name_is_not_part_of_it() {
        let items = items_of("SHOP\n2 CHILI-POT9.50 19.00\nTOTAL 19.00");
        assert_eq!(items[0].0, "CHILI-POT");
    }

    #[test]
    fn category_totals_under_the_items_are_not_items() {
        let text = "SHOP\nSoup 4.00\nSalad 6.00\nBeer 5.00\nFood 10.00\nDrinks 5.00\nTAX 1.00\nTOTAL 16.00";
        let names: Vec<String> = items_of(text).into_iter().map(|i| i.0).collect();
        assert_eq!(names, ["Soup", "Salad", "Beer"]);
    }

    #[test]
    fn a_price_lifted_onto_the_line_above_a_counted_item_is_that_items() {
        let text = "SHOP\nTable: 4 12.50\n2 Fish Tacos\nLemonade 3.00\nTOTAL 15.50";
        let names: Vec<(String, BigDecimal)> =
            items_of(text).into_iter().map(|i| (i.0, i.3)).collect();
        assert_eq!(
            names,
            [
                ("Fish Tacos".to_string(), dec("12.50")),
                ("Lemonade".to_string(), dec("3.00"))
            ]
        );
    }

    #[test]
    fn a_counted_item_with_its_price_on_the_line_below_keeps_it() {
        let text = "SHOP\nRice 2.00\n2 Fish Tacos\n12.50\nTOTAL 14.50";
        let totals: Vec<BigDecimal> = items_of(text).into_iter().map(|i| i.3).collect();
        assert_eq!(totals, [dec("2.00"), dec("12.50")]);
    }

    #[test]
    fn lines_after_the_subtotal_are_not_items() {
        let items = items_of("SHOP\nTea 2.00\nSUBTOTAL 2.00\nService 0.20\nTOTAL 2.20\nCASH 5.00");
        assert_eq!(items.len(), 1);
    }
}
