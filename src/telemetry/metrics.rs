//! This process's metrics, in Prometheus's text format, named as
//! OpenMetrics asks (unit suffix, `_total` on counters). Every series here
//! is about this process only, so summing over processes is right; the
//! queue-wide counts are added by the service functions (`jobs`) in one
//! process at a time.

use std::sync::{LazyLock, Mutex};

use prometheus::{
    Counter, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every instrument of the process.
pub struct Metrics {
    registry: Registry,
    /// `http_server_request_duration_seconds{http_request_method, http_route, http_response_status_code}`
    pub http_duration: HistogramVec,
    /// `receipt_ocr_upload_size_bytes`: accepted uploads.
    pub upload_size: Histogram,
    /// `receipt_ocr_stage_duration_seconds{stage}`: download, preprocess,
    /// recognise, parse, save.
    pub stage_duration: HistogramVec,
    /// `receipt_ocr_job_duration_seconds{outcome}`: one attempt, start to end.
    pub job_duration: HistogramVec,
    /// `receipt_ocr_queue_wait_seconds`: from when a job was due to the
    /// start of its first attempt.
    pub queue_wait: Histogram,
    /// `receipt_ocr_jobs_processed_total{outcome}`: completed, retried,
    /// failed (for good), cancelled; one per attempt.
    pub jobs_processed: IntCounterVec,
    /// `receipt_ocr_job_failures_total{reason, final}`: failed attempts by
    /// reason class; `final="true"` when the job failed for good.
    pub job_failures: IntCounterVec,
    /// `receipt_ocr_worker_restarts_total{worker}`: `ocr` workers replaced
    /// by the pool, `actor` children restarted by the supervisor.
    pub worker_restarts: IntCounterVec,
    /// `receipt_ocr_jobs_stalled_total`: stalls this process logged (each
    /// stall is logged by one process of the deployment).
    pub jobs_stalled: IntCounterVec,
    /// `receipt_ocr_ocr_workers`: OCR workers with a loaded engine.
    pub ocr_workers: IntGauge,
    /// `receipt_ocr_ocr_workers_busy`: OCR workers reading right now.
    pub ocr_workers_busy: IntGauge,
    process: ProcessMetrics,
}

/// The process's own resources, read from `/proc` at each scrape.
struct ProcessMetrics {
    resident_memory: IntGauge,
    cpu_seconds: Counter,
    /// Serialises scrapes: the CPU counter is advanced by differences.
    refresh: Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics, created on first use.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

const SECONDS_FAST: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const SECONDS_SLOW: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let histogram = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            // Names and buckets are constants, valid by construction.
            let metric = HistogramVec::new(opts, labels).expect("a valid histogram");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric =
                IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("a valid gauge");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let bytes: Vec<f64> = (0..8).map(|i| 16_384.0 * 4f64.powi(i)).collect();
        let cpu_seconds = Counter::new(
            "process_cpu_seconds_total",
            "CPU time (user and system) this process used, in seconds.",
        )
        .expect("a valid counter");
        registry
            .register(Box::new(cpu_seconds.clone()))
            .expect("registered once");
        Self {
            http_duration: histogram(
                "http_server_request_duration_seconds",
                "Time from a request's arrival to its response, by route and status.",
                SECONDS_FAST,
                &[
                    "http_request_method",
                    "http_route",
                    "http_response_status_code",
                ],
            ),
            upload_size: histogram(
                "receipt_ocr_upload_size_bytes",
                "Size of each accepted upload.",
                &bytes,
                &[],
            )
            .with_label_values(&[] as &[&str]),
            stage_duration: histogram(
                "receipt_ocr_stage_duration_seconds",
                "Time spent in each stage of reading a receipt.",
                SECONDS_FAST,
                &["stage"],
            ),
            job_duration: histogram(
                "receipt_ocr_job_duration_seconds",
                "Time one attempt at a job took, by outcome.",
                SECONDS_SLOW,
                &["outcome"],
            ),
            queue_wait: histogram(
                "receipt_ocr_queue_wait_seconds",
                "Time from when a job was due to the start of its first attempt.",
                SECONDS_SLOW,
                &[],
            )
            .with_label_values(&[] as &[&str]),
            jobs_processed: counter(
                "receipt_ocr_jobs_processed_total",
                "Attempts this process ended, by outcome: completed, retried, failed, cancelled.",
                &["outcome"],
            ),
            job_failures: counter(
                "receipt_ocr_job_failures_total",
                "Failed attempts by reason class; final=\"true\" when the job failed for good.",
                &["reason", "final"],
            ),
            worker_restarts: counter(
                "receipt_ocr_worker_restarts_total",
                "OCR workers replaced (worker=\"ocr\") and actors restarted (worker=\"actor\").",
                &["worker"],
            ),
            jobs_stalled: counter(
                "receipt_ocr_jobs_stalled_total",
                "Stalled jobs (a worker stopped renewing the lock) this process logged; each stall is logged by one process.",
                &[],
            ),
            ocr_workers: gauge(
                "receipt_ocr_ocr_workers",
                "OCR workers with a loaded engine.",
            ),
            ocr_workers_busy: gauge(
                "receipt_ocr_ocr_workers_busy",
                "OCR workers reading an image right now.",
            ),
            process: ProcessMetrics {
                resident_memory: gauge(
                    "process_resident_memory_bytes",
                    "Resident memory of this process, in bytes.",
                ),
                cpu_seconds,
                refresh: Mutex::new(()),
            },
            registry,
        }
    }

    /// Every series of this process, in Prometheus's text format.
    pub fn render(&self) -> String {
        self.process.refresh();
        let mut text = Vec::new();
        // Encoding our own registry into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl ProcessMetrics {
    fn refresh(&self) {
        let _one_at_a_time = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(usage) = read_proc_self() {
            self.resident_memory.set(usage.resident_bytes);
            let behind = usage.cpu_seconds - self.cpu_seconds.get();
            if behind > 0.0 {
                self.cpu_seconds.inc_by(behind);
            }
        }
    }
}

struct ProcessUsage {
    resident_bytes: i64,
    cpu_seconds: f64,
}

/// RSS and CPU time from `/proc/self/stat`; `None` off Linux.
fn read_proc_self() -> Option<ProcessUsage> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are the 14th and 15th fields, rss the 24th.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<i64>().ok();
    // SAFETY: sysconf only reads a system constant.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if ticks <= 0 || page <= 0 {
        return None;
    }
    Some(ProcessUsage {
        resident_bytes: field(24)? * page,
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reports_its_memory_and_cpu() {
        let usage = read_proc_self().expect("/proc/self/stat on Linux");
        assert!(
            usage.resident_bytes > 1024 * 1024,
            "RSS {}",
            usage.resident_bytes
        );
        assert!(usage.cpu_seconds >= 0.0);
        // A labelled family is rendered once it has a series: record one
        // here rather than rely on another test having read a receipt.
        let stage = metrics().stage_duration.with_label_values(&["parse"]);
        stage.observe(0.001);
        let text = metrics().render();
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.contains("# TYPE receipt_ocr_stage_duration_seconds histogram"));
    }
}
