//! The settings sections. Flags are long forms of the environment variables
//! (`--ocr-concurrency` / `OCR_CONCURRENCY`); durations keep the variables'
//! units (`_MS`, `_S`) on the outside and are `Duration`s inside.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use clap::Args;

use super::parse;

/// The HTTP server and what it accepts.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// HTTP port (`worker` serves health and metrics on it).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 4000)]
    pub port: u16,
    /// Address to bind the HTTP server to.
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Largest accepted upload, in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", value_name = "MAX_UPLOAD_BYTES",
          default_value = "10485760", value_parser = parse::positive_usize)]
    pub max_upload_bytes: usize,
    /// Comma-separated keys accepted in `X-Api-Key`; empty = open.
    #[arg(long, env = "API_KEYS", value_name = "API_KEYS", default_value = "",
          value_parser = parse::api_keys)]
    pub api_keys: ApiKeys,
}

/// The API keys a request may carry; none means the API is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<String>);

impl ApiKeys {
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys)
    }

    pub fn is_open(&self) -> bool {
        self.0.is_empty()
    }

    pub fn keys(&self) -> &[String] {
        &self.0
    }

    pub fn accepts(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }
}

/// The BullMQ queue on Redis, its jobs' retry policy and the global limit.
#[derive(Debug, Clone, Args)]
pub struct QueueSettings {
    /// Redis holding the BullMQ queue.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL",
          default_value = "redis://127.0.0.1:6379", value_parser = parse::redis_url)]
    pub redis_url: String,
    #[arg(long = "queue-name", env = "QUEUE_NAME", value_name = "QUEUE_NAME",
          default_value = "ocr-processing", value_parser = parse::queue_name)]
    pub name: String,
    #[arg(long = "queue-prefix", env = "QUEUE_PREFIX", value_name = "QUEUE_PREFIX",
          default_value = "bull", value_parser = parse::non_empty)]
    pub prefix: String,
    /// Attempts per job before it fails for good.
    #[arg(
        long = "job-attempts",
        env = "JOB_ATTEMPTS",
        value_name = "JOB_ATTEMPTS",
        default_value = "3"
    )]
    pub attempts: NonZeroU32,
    /// First retry delay (ms); doubles on each retry.
    #[arg(long = "job-backoff-ms", env = "JOB_BACKOFF_MS", value_name = "JOB_BACKOFF_MS",
          default_value = "2000", value_parser = parse::millis)]
    pub backoff: Duration,
    /// How long a worker's lock on a job lasts without renewal (ms, at least
    /// 1000); a crashed worker's job goes back to `waiting` after this.
    #[arg(long = "job-lock-ms", env = "JOB_LOCK_MS", value_name = "JOB_LOCK_MS",
          default_value = "30000", value_parser = parse::millis_at_least_a_second)]
    pub lock: Duration,
    #[command(flatten)]
    pub rate_limit: RateLimit,
    /// This worker process's name in `CLIENT LIST` and Bull Board.
    #[arg(long, env = "WORKER_NAME", value_name = "WORKER_NAME")]
    pub worker_name: Option<String>,
}

impl QueueSettings {
    /// The name this process's BullMQ worker connection carries.
    pub fn worker_name(&self) -> String {
        self.worker_name.clone().unwrap_or_else(|| {
            // In containers every process is pid 1: the host name tells
            // scaled workers apart.
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("receipt-ocr-{}-{}", host.trim(), std::process::id())
        })
    }
}

/// The global limit on job starts, across all worker processes.
#[derive(Debug, Clone, Copy, Args)]
pub struct RateLimit {
    /// Jobs started per window across all workers; 0 = no limit.
    #[arg(
        long = "ocr-rate-max",
        env = "OCR_RATE_MAX",
        value_name = "OCR_RATE_MAX",
        default_value_t = 5
    )]
    pub max: u64,
    /// The rate limit's window (ms, above 0).
    #[arg(long = "ocr-rate-duration-ms", env = "OCR_RATE_DURATION_MS",
          value_name = "OCR_RATE_DURATION_MS", default_value = "60000",
          value_parser = parse::positive_millis)]
    pub window: Duration,
}

impl RateLimit {
    pub fn is_on(&self) -> bool {
        self.max > 0
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// PostgreSQL database; created if missing.
    #[arg(long = "database-url", env = "DATABASE_URL", value_name = "DATABASE_URL",
          default_value = "postgres://postgres@localhost/receipt_ocr",
          value_parser = parse::postgres_url)]
    pub url: String,
}

#[derive(Debug, Clone, Args)]
pub struct BlobSettings {
    /// Where uploads are kept: a local directory, or `s3://bucket/prefix`.
    #[arg(long = "blob-store", env = "BLOB_STORE", value_name = "BLOB_STORE",
          default_value = "./data/blobs", value_parser = parse::non_empty)]
    pub location: String,
}

/// The OCR worker pool.
#[derive(Debug, Clone, Args)]
pub struct OcrSettings {
    /// OCR workers in this process.
    #[arg(
        long = "ocr-concurrency",
        env = "OCR_CONCURRENCY",
        value_name = "OCR_CONCURRENCY",
        default_value = "2",
        value_parser = parse::at_least_one
    )]
    pub concurrency: NonZeroUsize,
    /// Longest a single read may take (ms, at least 1000); a worker still
    /// reading then is replaced and the job fails for good.
    #[arg(long = "job-timeout-ms", env = "JOB_TIMEOUT_MS", value_name = "JOB_TIMEOUT_MS",
          default_value = "120000", value_parser = parse::millis_at_least_a_second)]
    pub read_timeout: Duration,
    /// Which engine reads receipts, and where the learned models are.
    #[command(flatten)]
    pub engine: crate::ocr::EngineSettings,
    /// Fault injection for tests: the first N reads in this process panic
    /// inside their OCR worker. Only in builds with `fault-injection`.
    #[cfg(feature = "fault-injection")]
    #[arg(
        long = "ocr-inject-panics",
        env = "OCR_INJECT_PANICS",
        value_name = "OCR_INJECT_PANICS",
        default_value_t = 0,
        hide = true
    )]
    pub inject_panics: u32,
    /// Fault injection for tests: the first read in this process is held
    /// this long (ms) before it starts, like a stuck engine.
    #[cfg(feature = "fault-injection")]
    #[arg(
        long = "ocr-inject-hold-ms",
        env = "OCR_INJECT_HOLD_MS",
        value_name = "OCR_INJECT_HOLD_MS",
        default_value_t = 0,
        hide = true
    )]
    pub inject_hold_ms: u64,
}

/// How long finished jobs stay in Redis (the receipt row stays for good).
#[derive(Debug, Clone, Args)]
pub struct RetentionSettings {
    /// Completed jobs kept in Redis (the newest N).
    #[arg(
        long = "keep-completed-count",
        env = "KEEP_COMPLETED_COUNT",
        value_name = "KEEP_COMPLETED_COUNT",
        default_value_t = 1_000
    )]
    pub completed_count: usize,
    /// Completed jobs older than this (s) are trimmed from Redis.
    #[arg(long = "keep-completed-age-s", env = "KEEP_COMPLETED_AGE_S",
          value_name = "KEEP_COMPLETED_AGE_S", default_value = "86400",
          value_parser = parse::seconds)]
    pub completed_age: Duration,
    #[arg(
        long = "keep-failed-count",
        env = "KEEP_FAILED_COUNT",
        value_name = "KEEP_FAILED_COUNT",
        default_value_t = 5_000
    )]
    pub failed_count: usize,
    /// Failed jobs older than this (s) are trimmed from Redis.
    #[arg(long = "keep-failed-age-s", env = "KEEP_FAILED_AGE_S",
          value_name = "KEEP_FAILED_AGE_S", default_value = "604800",
          value_parser = parse::seconds)]
    pub failed_age: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ShutdownSettings {
    /// How long a stopping worker lets its active jobs finish (ms).
    #[arg(long = "shutdown-grace-ms", env = "SHUTDOWN_GRACE_MS",
          value_name = "SHUTDOWN_GRACE_MS", default_value = "60000",
          value_parser = parse::millis)]
    pub grace: Duration,
}

/// The reconciler that mends receipts whose job left Redis unfinished.
#[derive(Debug, Clone, Args)]
pub struct ReconcileSettings {
    /// Pause between two passes (ms, above 0).
    #[arg(long = "reconcile-interval-ms", env = "RECONCILE_INTERVAL_MS",
          value_name = "RECONCILE_INTERVAL_MS", default_value = "60000",
          value_parser = parse::positive_millis)]
    pub interval: Duration,
    /// How long (ms) a receipt stays `queued` or `processing` untouched
    /// before a missing job is taken as lost.
    #[arg(long = "reconcile-after-ms", env = "RECONCILE_AFTER_MS",
          value_name = "RECONCILE_AFTER_MS", default_value = "600000",
          value_parser = parse::millis)]
    pub after: Duration,
}
