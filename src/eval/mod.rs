//! `receipt-ocr eval DIR`: score the OCR pipeline on labelled receipts and
//! compare its speed with the plain `tesseract` command line.
//!
//! Every image under DIR with a sibling `.json` label is read by
//! [`OcrEngine::read`](crate::ocr::OcrEngine::read), exactly as workers read
//! uploads, on one thread per core. The last line printed is one JSON object
//! with the headline figures, for scripts.
//!
//! Environment switches (the CLI passes only DIR):
//! - `RECEIPT_OCR_EVAL_BASELINE=off` skips the `tesseract` CLI baseline.
//! - `RECEIPT_OCR_EVAL_VERBOSE=1` lists each receipt's misses on stderr.
//! - `RECEIPT_OCR_EVAL_TEXT_DIR=path` saves each receipt's OCR text there.

pub mod labels;
mod runner;
pub mod score;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::ocr::ReceiptReading;
use labels::LabelledReceipt;
use score::{ReceiptVerdict, Scores};

/// Run the evaluation over every labelled image in `dir`.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    ensure_single_threaded_tesseract()?;
    let receipts = labels::find_labelled_receipts(dir)?;
    anyhow::ensure!(
        !receipts.is_empty(),
        "no image with a .json label under {}",
        dir.display()
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let images: Vec<PathBuf> = receipts.iter().map(|r| r.image.clone()).collect();
    eprintln!("reading {} receipts on {threads} threads…", images.len());
    let (readings, elapsed, baseline) = read_and_time(&images, threads)?;
    save_texts(&receipts, &readings)?;
    let scores = score_all(&receipts, &readings);
    let speed = Speed::new(images.len(), elapsed, baseline);
    print_report(&scores, &speed, threads);
    Ok(())
}

/// How many slices the images are cut into for timing.
const TIMING_ROUNDS: usize = 4;

/// Read every image with the pipeline and, unless switched off, with the
/// CLI baseline. The two alternate slice by slice, so that whatever else
/// the machine is doing weighs on both alike.
fn read_and_time(
    images: &[PathBuf],
    threads: usize,
) -> anyhow::Result<(
    Vec<Result<ReceiptReading, String>>,
    Duration,
    Option<Duration>,
)> {
    let with_baseline = baseline_enabled();
    let (mut readings, mut pipeline, mut cli) = (Vec::new(), Duration::ZERO, Duration::ZERO);
    for slice in images.chunks(images.len().div_ceil(TIMING_ROUNDS).max(1)) {
        let (slice_readings, elapsed) = runner::read_with_pipeline(slice, threads)?;
        readings.extend(slice_readings);
        pipeline += elapsed;
        if with_baseline {
            cli += runner::read_with_tesseract_cli(slice, threads)?;
        }
    }
    Ok((readings, pipeline, with_baseline.then_some(cli)))
}

/// Tesseract's OpenMP runtime reads `OMP_THREAD_LIMIT` once, when the
/// library is loaded at process start: setting it from here would be too
/// late. So when it is unset, run this same command again with it set.
/// One OpenMP thread per engine is ~5× faster per core than the default.
fn ensure_single_threaded_tesseract() -> anyhow::Result<()> {
    if std::env::var_os("OMP_THREAD_LIMIT").is_some() {
        return Ok(());
    }
    let program = std::env::current_exe().context("finding this program to re-run it")?;
    let status = std::process::Command::new(program)
        .args(std::env::args_os().skip(1))
        .env("OMP_THREAD_LIMIT", "1")
        .status()
        .context("re-running eval with OMP_THREAD_LIMIT=1")?;
    std::process::exit(status.code().unwrap_or(1));
}

fn baseline_enabled() -> bool {
    std::env::var("RECEIPT_OCR_EVAL_BASELINE").map_or(true, |v| v != "off" && v != "0")
}

fn verbose() -> bool {
    std::env::var("RECEIPT_OCR_EVAL_VERBOSE").is_ok_and(|v| v != "0")
}

fn save_texts(
    receipts: &[LabelledReceipt],
    readings: &[Result<ReceiptReading, String>],
) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("RECEIPT_OCR_EVAL_TEXT_DIR") else {
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (receipt, reading) in receipts.iter().zip(readings) {
        let stem = receipt.image.file_stem().unwrap_or_default();
        let text = reading
            .as_ref()
            .map_or_else(|e| format!("ERROR: {e}"), |r| r.text.clone());
        std::fs::write(dir.join(stem).with_extension("txt"), text)?;
    }
    Ok(())
}

/// Score every reading; a failed read scores as a receipt where nothing was found.
fn score_all(receipts: &[LabelledReceipt], readings: &[Result<ReceiptReading, String>]) -> Scores {
    let mut scores = Scores::default();
    for (receipt, reading) in receipts.iter().zip(readings) {
        let parsed = reading
            .as_ref()
            .map(|r| r.receipt.clone())
            .unwrap_or_default();
        let verdict = scores.add(&receipt.label, &parsed);
        if verbose() {
            describe_misses(receipt, reading, &verdict);
        }
    }
    scores
}

fn describe_misses(
    receipt: &LabelledReceipt,
    reading: &Result<ReceiptReading, String>,
    verdict: &ReceiptVerdict,
) {
    let name = receipt.image.display();
    let parsed = match reading {
        Ok(r) => &r.receipt,
        Err(e) => return eprintln!("{name}: read failed: {e}"),
    };
    let label = &receipt.label;
    if verdict.total == Some(false) {
        eprintln!(
            "{name}: total {:?} want {:?}",
            parsed.total_amount, label.total_amount
        );
    }
    if verdict.date == Some(false) {
        eprintln!(
            "{name}: date {:?} want {:?}",
            parsed.purchase_date, label.dates
        );
    }
    if verdict.store == Some(false) {
        eprintln!(
            "{name}: store {:?} want {:?}",
            parsed.store_name, label.store_name
        );
    }
    if let Some((matched, predicted, labelled)) = verdict.items_matched {
        eprintln!("{name}: items {matched} matched of {predicted} read, {labelled} labelled");
    }
}

/// Throughput of the pipeline and of the CLI baseline, in receipts a minute.
struct Speed {
    receipts: usize,
    pipeline_per_min: f64,
    cli_per_min: Option<f64>,
}

impl Speed {
    fn new(receipts: usize, pipeline: Duration, cli: Option<Duration>) -> Self {
        let per_min = |d: Duration| receipts as f64 * 60.0 / d.as_secs_f64().max(1e-9);
        Self {
            receipts,
            pipeline_per_min: per_min(pipeline),
            cli_per_min: cli.map(per_min),
        }
    }

    fn ratio(&self) -> Option<f64> {
        self.cli_per_min.map(|cli| self.pipeline_per_min / cli)
    }
}

fn print_report(scores: &Scores, speed: &Speed, threads: usize) {
    let field = |name: &str, t: &score::FieldTally, how: &str| {
        println!(
            "{name:<18} {:>6.1}%  {:>4}/{:<4} {how}",
            t.accuracy() * 100.0,
            t.correct,
            t.scored
        );
    };
    println!("field              score    right/scored");
    field("totalAmount", &scores.total_amount, "exact amount");
    field(
        "date",
        &scores.date,
        "exact day (either reading of an ambiguous label like 05/11/18)",
    );
    field(
        "storeName",
        &scores.store_name,
        "letters and digits equal, ignoring case",
    );
    field(
        "storeName ~",
        &scores.store_name_fuzzy,
        "same, ≥ 80% similar (context only)",
    );
    let items = &scores.items;
    println!(
        "items              F1 {:.1}%  P {:.1}% ({}/{})  R {:.1}% ({}/{})  over {} receipts; \
         same line total and a ≥ 75% similar or contained name",
        items.f1() * 100.0,
        items.precision() * 100.0,
        items.matched,
        items.predicted,
        items.recall() * 100.0,
        items.matched,
        items.labelled,
        items.receipts
    );
    println!(
        "pipeline           {:.1} receipts/min on {threads} threads",
        speed.pipeline_per_min
    );
    match (speed.cli_per_min, speed.ratio()) {
        (Some(cli), Some(ratio)) => println!(
            "tesseract CLI      {cli:.1} receipts/min, one process per thread; pipeline/CLI = {ratio:.2}"
        ),
        _ => println!("tesseract CLI      skipped (RECEIPT_OCR_EVAL_BASELINE=off)"),
    }
    println!("{}", summary_json(scores, speed));
}

fn summary_json(scores: &Scores, speed: &Speed) -> serde_json::Value {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    serde_json::json!({
        "receipts": speed.receipts,
        "totalAmount": round(scores.total_amount.accuracy()),
        "date": round(scores.date.accuracy()),
        "storeName": round(scores.store_name.accuracy()),
        "itemsF1": round(scores.items.f1()),
        "receiptsPerMin": round(speed.pipeline_per_min),
        "tesseractCliPerMin": speed.cli_per_min.map(round),
        "speedRatio": speed.ratio().map(round),
    })
}
