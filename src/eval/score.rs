//! Comparing what the pipeline read with the labels, field by field, and
//! adding the comparisons up over a run.

use bigdecimal::BigDecimal;

use super::labels::{Label, LabelItem};
use crate::ocr::{ParsedItem, ParsedReceipt};

/// Names this similar (1 − edit distance / longer length) count as the same
/// item: OCR drops or swaps a letter or two in most item names.
const ITEM_NAME_SIMILARITY: f64 = 0.75;
/// The store-name figure reported beside the exact one, for context.
const STORE_FUZZY_SIMILARITY: f64 = 0.8;

/// Correct answers out of the receipts that had the field labelled.
#[derive(Debug, Default, Clone, Copy)]
pub struct FieldTally {
    pub correct: usize,
    pub scored: usize,
}

impl FieldTally {
    fn add(&mut self, correct: bool) {
        self.scored += 1;
        self.correct += usize::from(correct);
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.scored)
    }
}

/// Item matches summed over receipts (micro-averaged precision and recall).
#[derive(Debug, Default, Clone, Copy)]
pub struct ItemTally {
    pub matched: usize,
    pub predicted: usize,
    pub labelled: usize,
    pub receipts: usize,
}

impl ItemTally {
    pub fn precision(&self) -> f64 {
        ratio(self.matched, self.predicted)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.matched, self.labelled)
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// Every tally of one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Scores {
    pub total_amount: FieldTally,
    pub date: FieldTally,
    pub store_name: FieldTally,
    pub store_name_fuzzy: FieldTally,
    pub items: ItemTally,
    pub subtotal: FieldTally,
    pub tax: FieldTally,
}

/// What one receipt got right, for the per-receipt listing.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReceiptVerdict {
    pub total: Option<bool>,
    pub date: Option<bool>,
    pub store: Option<bool>,
    pub items_matched: Option<(usize, usize, usize)>,
    pub subtotal: Option<bool>,
    pub tax: Option<bool>,
}

impl Scores {
    /// Score one reading against its label and add it to the tallies.
    pub fn add(&mut self, label: &Label, read: &ParsedReceipt) -> ReceiptVerdict {
        let mut verdict = ReceiptVerdict::default();
        if let Some(total) = &label.total_amount {
            let correct = read.total_amount.as_ref() == Some(total);
            self.total_amount.add(correct);
            verdict.total = Some(correct);
        }
        verdict.subtotal = score_amount(&mut self.subtotal, &label.subtotal, &read.subtotal);
        verdict.tax = score_amount(&mut self.tax, &label.tax, &read.tax);
        if let Some(dates) = &label.dates {
            let correct = read.purchase_date.is_some_and(|d| dates.contains(&d));
            self.date.add(correct);
            verdict.date = Some(correct);
        }
        if let Some(store) = &label.store_name {
            let read_store = read
                .store_name
                .as_deref()
                .map(normalise_name)
                .unwrap_or_default();
            let wanted = normalise_name(store);
            self.store_name.add(read_store == wanted);
            self.store_name_fuzzy
                .add(similarity(&read_store, &wanted) >= STORE_FUZZY_SIMILARITY);
            verdict.store = Some(read_store == wanted);
        }
        if let Some(items) = &label.items {
            let matched = matched_items(items, &merge_same_names(&read.items));
            let predicted = merge_same_names(&read.items).len();
            self.items.matched += matched;
            self.items.predicted += predicted;
            self.items.labelled += items.len();
            self.items.receipts += 1;
            verdict.items_matched = Some((matched, predicted, items.len()));
        }
        verdict
    }
}

/// Tally an amount the label may have; `Some(right)` when it had it.
fn score_amount(
    tally: &mut FieldTally,
    label: &Option<BigDecimal>,
    read: &Option<BigDecimal>,
) -> Option<bool> {
    let correct = read.as_ref() == Some(label.as_ref()?);
    tally.add(correct);
    Some(correct)
}

/// Upper case, letters and digits only: `Mr. D.I.Y. (M) Sdn-Bhd` and
/// `MR D I Y M SDN BHD` are the same name. Case, punctuation and spacing
/// vary between a receipt's print and its label; the letters do not.
pub fn normalise_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The labels merge repeated items of one name (quantities and line totals
/// summed), so predictions are merged the same way before matching.
fn merge_same_names(items: &[ParsedItem]) -> Vec<(String, BigDecimal)> {
    let mut merged: Vec<(String, BigDecimal)> = Vec::new();
    for item in items {
        let name = normalise_name(&item.name);
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, total)) => *total += &item.line_total,
            None => merged.push((name, item.line_total.clone())),
        }
    }
    merged
}

/// Greedy one-to-one matching: a labelled item is found when a predicted
/// item has the same line total and a similar name.
fn matched_items(labelled: &[LabelItem], predicted: &[(String, BigDecimal)]) -> usize {
    let (missed, _) = unmatched(labelled, predicted);
    labelled.len() - missed.len()
}

/// The items each side has that the other does not, as `name total`: the
/// labelled items not found, then the read items that matched none. For
/// the verbose listing.
pub fn unmatched_items(labelled: &[LabelItem], read: &[ParsedItem]) -> (Vec<String>, Vec<String>) {
    let predicted = merge_same_names(read);
    let (missed, unused) = unmatched(labelled, &predicted);
    let missed = missed
        .iter()
        .map(|&i| format!("{} {}", labelled[i].name, labelled[i].line_total))
        .collect();
    let extra = unused
        .iter()
        .map(|&i| format!("{} {}", predicted[i].0, predicted[i].1))
        .collect();
    (missed, extra)
}

/// Indices of the labelled items not found and of the predicted items unused.
fn unmatched(
    labelled: &[LabelItem],
    predicted: &[(String, BigDecimal)],
) -> (Vec<usize>, Vec<usize>) {
    let mut used = vec![false; predicted.len()];
    let mut missed = Vec::new();
    for (index, item) in labelled.iter().enumerate() {
        let name = normalise_name(&item.name);
        let found = predicted.iter().enumerate().position(|(i, (n, total))| {
            !used[i] && *total == item.line_total && same_item_name(n, &name)
        });
        match found {
            Some(i) => used[i] = true,
            None => missed.push(index),
        }
    }
    let unused = (0..predicted.len()).filter(|&i| !used[i]).collect();
    (missed, unused)
}

/// Normalised names of one item: similar, or one inside the other (labels
/// shorten `MD. DRINK` to `DRINK`; receipts prefix `#1` or a size).
fn same_item_name(read: &str, labelled: &str) -> bool {
    let inside =
        read.len().min(labelled.len()) >= 3 && (read.contains(labelled) || labelled.contains(read));
    inside || similarity(read, labelled) >= ITEM_NAME_SIMILARITY
}

/// 1 − Levenshtein distance / length of the longer string, in 0..=1.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    1.0 - edit_distance(&a, &b) as f64 / longest as f64
}

fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_only_in_case_and_punctuation_are_equal() {
        assert_eq!(
            normalise_name("Mr. D.I.Y. Sdn-Bhd"),
            normalise_name("MR D I Y SDN BHD")
        );
    }

    #[test]
    fn an_item_name_inside_the_other_is_the_same_item() {
        assert!(same_item_name("MDDRINK", "DRINK"));
        assert!(!same_item_name("TEA", "COFFEE"));
    }

    #[test]
    fn similarity_counts_edits_against_the_longer_name() {
        assert_eq!(similarity("MILK", "MILK"), 1.0);
        assert_eq!(similarity("MILK", "MILO"), 0.75);
        assert_eq!(similarity("", "ABCD"), 0.0);
    }
}
