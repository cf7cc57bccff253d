//! Scoring the parser alone on OCR text saved earlier: `RECEIPT_OCR_EVAL_TEXTS=dir`
//! reads `dir/<stem>.txt` for every labelled image instead of running OCR,
//! so a parser change is measured in a second on identical text, for each
//! half of the set (tune on one, check on the other) and overall. Where the
//! engine passes' texts were saved apart, `auto`'s merge is replayed on them
//! (see [`super::components`]), so the figures are the pipeline's.

use std::path::Path;

use super::components::PassTexts;
use super::labels::{Half, LabelledReceipt, half_of};
use super::score::{FieldTally, Scores};
use crate::ocr::{ReceiptReading, parse_receipt};

/// The three tallies reported: every receipt, and each half.
#[derive(Default)]
struct SplitScores {
    all: Scores,
    a: Scores,
    b: Scores,
}

/// Parse each receipt's saved text, score it, and print the report.
pub fn run(receipts: &[LabelledReceipt], texts: &Path) -> anyhow::Result<()> {
    let mut scores = SplitScores::default();
    let mut missing = 0;
    // Folders saved before the line confidences: no name is read unsure.
    let mut unsure_unknown = 0;
    for receipt in receipts {
        let stem = receipt.image.file_stem().unwrap_or_default();
        let passes = PassTexts::load(texts, stem);
        let path = texts.join(stem).with_extension("txt");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            missing += usize::from(passes.is_none());
            String::new()
        });
        unsure_unknown += usize::from(passes.as_ref().is_some_and(|p| p.ppocr_lines.is_empty()));
        let parsed = match &passes {
            Some(passes) => passes.auto_receipt(),
            None => parse_receipt(&text),
        };
        let verdict = scores.all.add(&receipt.label, &parsed);
        match half_of(&receipt.image) {
            Half::A => scores.a.add(&receipt.label, &parsed),
            Half::B => scores.b.add(&receipt.label, &parsed),
        };
        if super::verbose() {
            let reading = ReceiptReading {
                text,
                ocr_confidence: 0.0,
                receipt: parsed,
                page: Default::default(),
                engines: Vec::new(),
            };
            super::describe_misses(receipt, &Ok(reading), &verdict);
        }
    }
    if unsure_unknown > 0 {
        eprintln!(
            "{unsure_unknown} receipts had no saved line confidences (<stem>.ppocr.conf.txt): \
             replayed as if PP-OCR read every store name sure; save the texts again to replay auto exactly"
        );
    }
    if missing > 0 {
        eprintln!("{missing} receipts had no text in {}", texts.display());
    }
    print_report(&scores, receipts.len());
    Ok(())
}

fn print_report(scores: &SplitScores, receipts: usize) {
    println!("parser on saved texts   all                 half A              half B");
    let row = |name: &str, pick: fn(&Scores) -> FieldTally| {
        let cell = |s: &Scores| {
            let t = pick(s);
            format!(
                "{:>5.1}% {:>4}",
                t.accuracy() * 100.0,
                format!("{}/{}", t.correct, t.scored)
            )
        };
        println!(
            "{name:<22} {:<19} {:<19} {}",
            cell(&scores.all),
            cell(&scores.a),
            cell(&scores.b)
        );
    };
    row("totalAmount", |s| s.total_amount);
    row("date", |s| s.date);
    row("storeName", |s| s.store_name);
    row("storeName ≥ 80%", |s| s.store_name_fuzzy);
    row("subtotal", |s| s.subtotal);
    row("tax", |s| s.tax);
    let f1 = |s: &Scores| format!("{:.1}%", s.items.f1() * 100.0);
    println!(
        "{:<22} {:<19} {:<19} {}",
        "items F1",
        f1(&scores.all),
        f1(&scores.a),
        f1(&scores.b)
    );
    let json = serde_json::json!({
        "receipts": receipts,
        "all": summary(&scores.all),
        "a": summary(&scores.a),
        "b": summary(&scores.b),
    });
    println!("{json}");
}

fn summary(s: &Scores) -> serde_json::Value {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    serde_json::json!({
        "totalAmount": round(s.total_amount.accuracy()),
        "date": round(s.date.accuracy()),
        "storeName": round(s.store_name.accuracy()),
        "itemsF1": round(s.items.f1()),
        "subtotal": round(s.subtotal.accuracy()),
        "tax": round(s.tax.accuracy()),
    })
}
