//! `receipt-ocr eval DIR`: score the OCR pipeline on labelled receipts and
//! compare its speed with the plain `tesseract` command line.
//!
//! Every image under DIR with a sibling `.json` label is read by
//! [`OcrEngine::read`](crate::ocr::OcrEngine::read), exactly as workers read
//! uploads, on one thread per core. The last line printed is one JSON object
//! with the headline figures, for scripts.
//!
//! `--engine` (default `OCR_ENGINE`, else `auto`) picks the engine. Scores
//! and CPU seconds per receipt are reported overall and per source folder
//! (the first folder under DIR, e.g. `sroie`, `srd`).
//!
//! Environment switches:
//! - `RECEIPT_OCR_EVAL_BASELINE=off` skips the `tesseract` CLI baseline.
//! - `RECEIPT_OCR_EVAL_VERBOSE=1` lists each receipt's misses on stderr.
//! - `RECEIPT_OCR_EVAL_TEXT_DIR=path` saves each receipt's OCR text there,
//!   and each engine pass's text apart (`<stem>.ppocr.txt`, `.tess1.txt`,
//!   `.tess2.txt`; see [`components`]).
//! - `RECEIPT_OCR_EVAL_THREADS=n` reads on n threads (default: one a core).
//! - `RECEIPT_OCR_EVAL_TEXTS=path` runs no OCR: it scores the parser on the
//!   texts saved there, per half and overall: `auto`'s choice and merge of
//!   passes replayed on the pass texts where they exist, else `<stem>.txt`
//!   parsed whole.
//! - `RECEIPT_OCR_EVAL_HALF=a|b` scores only that half of the receipts
//!   (split by a hash of the file name; see [`labels::half_of`]).

mod components;
pub mod labels;
mod report;
mod runner;
pub mod score;
mod texts;

pub(crate) use runner::cpu_clock;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::ocr::{EngineChoice, EngineSettings, ReceiptReading};
use labels::LabelledReceipt;
use runner::{Cost, TimedReading};
use score::{ReceiptVerdict, Scores};

/// Run the evaluation over every labelled image in `dir` with `engine`.
pub fn run(dir: &Path, engine: EngineChoice) -> anyhow::Result<()> {
    let saved_texts = std::env::var_os("RECEIPT_OCR_EVAL_TEXTS").map(PathBuf::from);
    if saved_texts.is_none() {
        ensure_single_threaded_tesseract()?;
    }
    let receipts = labels::find_labelled_receipts(dir)?;
    let receipts = labels::only_half(receipts, labels::half_from_env()?);
    anyhow::ensure!(
        !receipts.is_empty(),
        "no image with a .json label under {}",
        dir.display()
    );
    if let Some(texts) = saved_texts {
        return texts::run(&receipts, &texts);
    }
    let threads = eval_threads();
    let images: Vec<PathBuf> = receipts.iter().map(|r| r.image.clone()).collect();
    eprintln!("reading {} receipts on {threads} threads…", images.len());
    let settings = EngineSettings::with_engine(engine);
    let (timed, elapsed, baseline) = read_and_time(&images, threads, &settings)?;
    let (readings, cpu): (Vec<_>, Vec<_>) = timed.into_iter().unzip();
    save_texts(&receipts, &readings)?;
    save_pass_texts(&images, threads, engine, &readings)?;
    let scores = score_all(&receipts, &readings);
    let mut speed = report::Speed::new(images.len(), threads, elapsed, baseline);
    speed.baseline_left_out = labels::documents_among(&images);
    let folders = folder_reports(dir, &receipts, &readings, &cpu);
    report::print_report(&scores, &speed, threads, engine, &folders);
    Ok(())
}

fn eval_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::env::var("RECEIPT_OCR_EVAL_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(cores)
}

/// The source folder of an image: its first folder under `dir` ("." when
/// it sits in `dir` itself).
fn folder_of(dir: &Path, image: &Path) -> String {
    let relative = image.strip_prefix(dir).unwrap_or(image);
    match relative.components().count() {
        0 | 1 => ".".to_string(),
        _ => relative
            .components()
            .next()
            .map_or(".".into(), |c| c.as_os_str().to_string_lossy().into_owned()),
    }
}

/// Scores and CPU seconds per receipt for each source folder, by name.
fn folder_reports(
    dir: &Path,
    receipts: &[LabelledReceipt],
    readings: &[Result<ReceiptReading, String>],
    cpu: &[Duration],
) -> Vec<report::FolderReport> {
    let mut names: Vec<String> = receipts.iter().map(|r| folder_of(dir, &r.image)).collect();
    names.sort();
    names.dedup();
    let report_of = |name: String| {
        let mine = |i: &usize| folder_of(dir, &receipts[*i].image) == name;
        let indices: Vec<usize> = (0..receipts.len()).filter(mine).collect();
        let subset: Vec<LabelledReceipt> = indices.iter().map(|&i| receipts[i].clone()).collect();
        let read: Vec<_> = indices.iter().map(|&i| readings[i].clone()).collect();
        let cpu_total: Duration = indices.iter().map(|&i| cpu[i]).sum();
        report::FolderReport {
            receipts: indices.len(),
            scores: score_all(&subset, &read),
            cpu_per_receipt: cpu_total.as_secs_f64() / indices.len().max(1) as f64,
            name,
        }
    };
    names.into_iter().map(report_of).collect()
}

/// How many slices the images are cut into for timing.
const TIMING_ROUNDS: usize = 4;

/// The readings in input order, the pipeline's cost and the baseline's.
type Timed = (Vec<TimedReading>, Cost, Option<Cost>);

/// Read every image with the pipeline and, unless switched off, with the
/// CLI baseline. The two alternate slice by slice, so that whatever else
/// the machine is doing weighs on both alike.
fn read_and_time(
    images: &[PathBuf],
    threads: usize,
    settings: &EngineSettings,
) -> anyhow::Result<Timed> {
    // Tesseract's command opens images only: a folder with PDFs or HEIC/
    // AVIF photos has no like-for-like baseline, so none is timed.
    let with_baseline = baseline_enabled() && labels::documents_among(images) == 0;
    let zero = Cost {
        wall: Duration::ZERO,
        cpu: Some(Duration::ZERO),
    };
    let (mut readings, mut pipeline, mut cli) = (Vec::new(), zero, zero);
    for slice in images.chunks(images.len().div_ceil(TIMING_ROUNDS).max(1)) {
        let (slice_readings, elapsed) = runner::read_with_pipeline(slice, threads, settings)?;
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

/// With `RECEIPT_OCR_EVAL_TEXT_DIR`, also save each engine pass's text
/// apart (see [`components`]), and say whether replaying `auto` on them
/// gives what the pipeline parsed.
fn save_pass_texts(
    images: &[PathBuf],
    threads: usize,
    engine: EngineChoice,
    readings: &[Result<ReceiptReading, String>],
) -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("RECEIPT_OCR_EVAL_TEXT_DIR") else {
        return Ok(());
    };
    eprintln!("reading each engine pass apart, for RECEIPT_OCR_EVAL_TEXTS…");
    let parsed: Vec<_> = readings
        .iter()
        .map(|r| match engine {
            EngineChoice::Auto => r.as_ref().ok().map(|r| r.receipt.clone()),
            _ => None,
        })
        .collect();
    let (agree, compared) = components::save(images, threads, Path::new(&dir), &parsed)?;
    if compared > 0 {
        eprintln!(
            "replaying auto on the saved pass texts gives the pipeline's parse for {agree} of {compared} receipts"
        );
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
        if let Some(items) = label
            .items
            .as_ref()
            .filter(|_| matched < labelled.max(predicted))
        {
            let (missed, extra) = score::unmatched_items(items, &parsed.items);
            eprintln!("    not found: {}", missed.join(" | "));
            eprintln!("    not labelled: {}", extra.join(" | "));
        }
    }
}
