//! The evaluation's report: one line per field, the speeds, one line per
//! source folder, and a last line of JSON for scripts.

use std::time::Duration;

use super::runner::Cost;
use super::score::{FieldTally, Scores};
use crate::ocr::EngineChoice;

/// One source folder's scores and CPU seconds per receipt (the reading
/// threads' CPU time, summed over its receipts).
pub struct FolderReport {
    pub name: String,
    pub receipts: usize,
    pub scores: Scores,
    pub cpu_per_receipt: f64,
}

/// Throughput of the pipeline and of the CLI baseline, in receipts a
/// minute: by the wall clock, and by CPU time spread over the threads (the
/// wall clock on an otherwise idle machine; unaffected by other load).
pub struct Speed {
    receipts: usize,
    pipeline_per_min: f64,
    cli_per_min: Option<f64>,
    pipeline_cpu_per_min: Option<f64>,
    cli_cpu_per_min: Option<f64>,
    /// The process's CPU seconds over the receipts read.
    cpu_seconds_per_receipt: Option<f64>,
    /// Inputs the `tesseract` command cannot open (PDF, HEIC, AVIF); when
    /// there are any, no baseline is timed.
    pub baseline_left_out: usize,
}

impl Speed {
    pub fn new(receipts: usize, threads: usize, pipeline: Cost, cli: Option<Cost>) -> Self {
        let per_min = |d: Duration| receipts as f64 * 60.0 / d.as_secs_f64().max(1e-9);
        let cpu_per_min = |d: Duration| per_min(d / threads.max(1) as u32);
        Self {
            receipts,
            pipeline_per_min: per_min(pipeline.wall),
            cli_per_min: cli.map(|c| per_min(c.wall)),
            pipeline_cpu_per_min: pipeline.cpu.map(cpu_per_min),
            cli_cpu_per_min: cli.and_then(|c| c.cpu).map(cpu_per_min),
            cpu_seconds_per_receipt: pipeline
                .cpu
                .map(|d| d.as_secs_f64() / receipts.max(1) as f64),
            baseline_left_out: 0,
        }
    }

    fn ratio(&self) -> Option<f64> {
        self.cli_per_min.map(|cli| self.pipeline_per_min / cli)
    }

    fn cpu_ratio(&self) -> Option<f64> {
        Some(self.pipeline_cpu_per_min? / self.cli_cpu_per_min?)
    }
}

pub fn print_report(
    scores: &Scores,
    speed: &Speed,
    threads: usize,
    engine: EngineChoice,
    folders: &[FolderReport],
) {
    println!("engine             {}", engine_name(engine));
    println!("field              score    right/scored");
    print_field("totalAmount", &scores.total_amount, "exact amount");
    let either = "exact day (either reading of an ambiguous label like 05/11/18)";
    print_field("date", &scores.date, either);
    let letters = "letters and digits equal, ignoring case";
    print_field("storeName", &scores.store_name, letters);
    let similar = "same, ≥ 80% similar (context only)";
    print_field("storeName ~", &scores.store_name_fuzzy, similar);
    print_field("subtotal", &scores.subtotal, "exact amount, where labelled");
    print_field("tax", &scores.tax, "exact amount, where labelled");
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
    print_speed(speed, threads);
    print_folders(folders);
    println!("{}", summary_json(scores, speed, engine, folders));
}

fn engine_name(engine: EngineChoice) -> &'static str {
    match engine {
        EngineChoice::Auto => "auto",
        EngineChoice::Tesseract => "tesseract",
        EngineChoice::Ppocr => "ppocr",
    }
}

fn print_folders(folders: &[FolderReport]) {
    println!("folder        n  total   date  store  itemsF1  CPU s/receipt");
    for f in folders {
        let pct = |t: &FieldTally| format!("{:5.1}%", t.accuracy() * 100.0);
        let items = match f.scores.items.receipts {
            0 => "    n/a".to_string(),
            _ => format!("{:6.1}%", f.scores.items.f1() * 100.0),
        };
        println!(
            "{:<10} {:>4} {} {} {}  {items}  {:.2}",
            f.name,
            f.receipts,
            pct(&f.scores.total_amount),
            pct(&f.scores.date),
            pct(&f.scores.store_name),
            f.cpu_per_receipt
        );
    }
}

fn print_field(name: &str, tally: &FieldTally, how: &str) {
    let percent = tally.accuracy() * 100.0;
    println!(
        "{name:<18} {percent:>6.1}%  {:>4}/{:<4} {how}",
        tally.correct, tally.scored
    );
}

fn print_speed(speed: &Speed, threads: usize) {
    let cpu = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.2}"));
    println!("machine            {}", Machine::this().describe());
    println!(
        "pipeline           {:.1} receipts/min on {threads} threads (by CPU time: {}); \
         {} CPU s/receipt",
        speed.pipeline_per_min,
        cpu(speed.pipeline_cpu_per_min),
        cpu(speed.cpu_seconds_per_receipt)
    );
    match (speed.cli_per_min, speed.ratio()) {
        (Some(cli), Some(ratio)) => println!(
            "tesseract CLI      {cli:.1} receipts/min, one process per thread (by CPU time: {}); \
             pipeline/CLI = {ratio:.2} (by CPU time: {})",
            cpu(speed.cli_cpu_per_min),
            speed
                .cpu_ratio()
                .map_or("n/a".to_string(), |r| format!("{r:.2}"))
        ),
        _ if speed.baseline_left_out > 0 => println!(
            "tesseract CLI      not timed: the tesseract CLI cannot open {} of the {} inputs \
             (PDF, HEIC, AVIF), so there is no like-for-like baseline",
            speed.baseline_left_out, speed.receipts
        ),
        _ => println!("tesseract CLI      skipped (RECEIPT_OCR_EVAL_BASELINE=off)"),
    }
}

fn summary_json(
    scores: &Scores,
    speed: &Speed,
    engine: EngineChoice,
    folders: &[FolderReport],
) -> serde_json::Value {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let folder = |f: &FolderReport| {
        let json = serde_json::json!({
            "receipts": f.receipts,
            "totalAmount": round(f.scores.total_amount.accuracy()),
            "date": round(f.scores.date.accuracy()),
            "storeName": round(f.scores.store_name.accuracy()),
            "itemsF1": (f.scores.items.receipts > 0).then(|| round(f.scores.items.f1())),
            "cpuSecondsPerReceipt": round(f.cpu_per_receipt),
        });
        (f.name.clone(), json)
    };
    let folders: serde_json::Map<String, serde_json::Value> = folders.iter().map(folder).collect();
    serde_json::json!({
        "engine": engine_name(engine),
        "receipts": speed.receipts,
        "totalAmount": round(scores.total_amount.accuracy()),
        "date": round(scores.date.accuracy()),
        "storeName": round(scores.store_name.accuracy()),
        "itemsF1": round(scores.items.f1()),
        "subtotal": round(scores.subtotal.accuracy()),
        "tax": round(scores.tax.accuracy()),
        "receiptsPerMin": round(speed.pipeline_per_min),
        "tesseractCliPerMin": speed.cli_per_min.map(round),
        "speedRatio": speed.ratio().map(round),
        "receiptsPerMinByCpu": speed.pipeline_cpu_per_min.map(round),
        "tesseractCliPerMinByCpu": speed.cli_cpu_per_min.map(round),
        "speedRatioByCpu": speed.cpu_ratio().map(round),
        "cpuSecondsPerReceipt": speed.cpu_seconds_per_receipt.map(round),
        "baselineLeftOut": speed.baseline_left_out,
        "machine": Machine::this().describe(),
        "folders": folders,
    })
}

/// The processor the figures were measured on. CPU seconds a receipt
/// depend on it: ONNX Runtime's kernels use AVX-512 where there is one,
/// and on an AVX2-only VM of the same kind the PP-OCR path measured 1.32×
/// the CPU where Tesseract measured 1.15× (docs/ocr-accuracy.md).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Machine {
    model: String,
    cores: usize,
    /// The widest vector extension: `AVX-512`, `AVX2`, or none of them.
    vectors: &'static str,
}

impl Machine {
    /// This machine, from `/proc/cpuinfo` (unknown elsewhere).
    fn this() -> Self {
        Self::from_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
    }

    fn from_cpuinfo(cpuinfo: &str) -> Self {
        let value = |key: &str| {
            cpuinfo.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        let flags = value("flags").unwrap_or_default();
        let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
        let vectors = match () {
            _ if has("avx512f") => "AVX-512",
            _ if has("avx2") => "AVX2 (no AVX-512)",
            _ => "no AVX2",
        };
        Self {
            model: value("model name").unwrap_or_else(|| "unknown processor".into()),
            cores: cpuinfo
                .lines()
                .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
                .count(),
            vectors,
        }
    }

    fn describe(&self) -> String {
        format!("{}, {} cores, {}", self.model, self.cores, self.vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::Machine;

    #[test]
    fn the_machine_is_named_with_its_widest_vector_extension() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n";
        let machine = Machine::from_cpuinfo(cpuinfo);
        assert_eq!(machine.describe(), "AMD EPYC, 2 cores, AVX2 (no AVX-512)");
        let wide = Machine::from_cpuinfo("processor : 0\nflags : avx2 avx512f avx512bw\n");
        assert_eq!(wide.describe(), "unknown processor, 1 cores, AVX-512");
        assert_eq!(Machine::from_cpuinfo("").cores, 0);
    }
}
