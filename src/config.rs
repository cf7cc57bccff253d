//! Typed settings: every value comes from a flag, an environment variable
//! (a `.env` file is read first) or its default here, the one place that
//! defines defaults. A bad value stops start-up with a message naming it.

use clap::Args;

use crate::ocr::EngineSettings;

/// Settings shared by every subcommand that talks to Redis, PostgreSQL or
/// the blob store. Each flag's value name is its environment variable, so a
/// parse error names the variable to fix.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Redis holding the BullMQ queue.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// PostgreSQL database; created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "postgres://postgres@localhost/receipt_ocr"
    )]
    pub database_url: String,
    /// HTTP port (`worker` serves health and metrics on it).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 4000)]
    pub port: u16,
    /// Address to bind the HTTP server to.
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Where uploads are kept: a local directory, or `s3://bucket/prefix`.
    #[arg(
        long,
        env = "BLOB_STORE",
        value_name = "BLOB_STORE",
        default_value = "./data/blobs"
    )]
    pub blob_store: String,
    /// OCR workers in this process.
    #[arg(
        long,
        env = "OCR_CONCURRENCY",
        value_name = "OCR_CONCURRENCY",
        default_value_t = 2
    )]
    pub ocr_concurrency: usize,
    /// Jobs started per window across all workers; 0 = no limit.
    #[arg(
        long,
        env = "OCR_RATE_MAX",
        value_name = "OCR_RATE_MAX",
        default_value_t = 5
    )]
    pub ocr_rate_max: u64,
    /// The rate limit's window.
    #[arg(
        long,
        env = "OCR_RATE_DURATION_MS",
        value_name = "OCR_RATE_DURATION_MS",
        default_value_t = 60_000
    )]
    pub ocr_rate_duration_ms: u64,
    /// Attempts per job before it fails for good.
    #[arg(
        long,
        env = "JOB_ATTEMPTS",
        value_name = "JOB_ATTEMPTS",
        default_value_t = 3
    )]
    pub job_attempts: u32,
    /// First retry delay; doubles on each retry.
    #[arg(
        long,
        env = "JOB_BACKOFF_MS",
        value_name = "JOB_BACKOFF_MS",
        default_value_t = 2_000
    )]
    pub job_backoff_ms: u64,
    #[arg(
        long,
        env = "QUEUE_NAME",
        value_name = "QUEUE_NAME",
        default_value = "ocr-processing"
    )]
    pub queue_name: String,
    #[arg(
        long,
        env = "QUEUE_PREFIX",
        value_name = "QUEUE_PREFIX",
        default_value = "bull"
    )]
    pub queue_prefix: String,
    /// Largest accepted upload.
    #[arg(long, env = "MAX_UPLOAD_BYTES", value_name = "MAX_UPLOAD_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Comma-separated keys accepted in `X-Api-Key`; empty = open.
    #[arg(long, env = "API_KEYS", value_name = "API_KEYS", default_value = "")]
    pub api_keys: String,
    /// Completed jobs kept in Redis (the newest N).
    #[arg(
        long,
        env = "KEEP_COMPLETED_COUNT",
        value_name = "KEEP_COMPLETED_COUNT",
        default_value_t = 1_000
    )]
    pub keep_completed_count: usize,
    /// Completed jobs older than this are trimmed from Redis.
    #[arg(long, env = "KEEP_COMPLETED_AGE_S", value_name = "KEEP_COMPLETED_AGE_S", default_value_t = 24 * 3600)]
    pub keep_completed_age_s: u64,
    #[arg(
        long,
        env = "KEEP_FAILED_COUNT",
        value_name = "KEEP_FAILED_COUNT",
        default_value_t = 5_000
    )]
    pub keep_failed_count: usize,
    #[arg(long, env = "KEEP_FAILED_AGE_S", value_name = "KEEP_FAILED_AGE_S", default_value_t = 7 * 24 * 3600)]
    pub keep_failed_age_s: u64,
    /// How long a worker's lock on a job lasts without renewal; a crashed
    /// worker's job goes back to `waiting` after this.
    #[arg(
        long,
        env = "JOB_LOCK_MS",
        value_name = "JOB_LOCK_MS",
        default_value_t = 30_000
    )]
    pub job_lock_ms: u64,
    /// How long a stopping worker lets its active jobs finish.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_MS",
        value_name = "SHUTDOWN_GRACE_MS",
        default_value_t = 60_000
    )]
    pub shutdown_grace_ms: u64,
    /// Longest a single read may take; a read still running then is given
    /// up (its OCR worker replaced) and the job fails for good.
    #[arg(
        long,
        env = "JOB_TIMEOUT_MS",
        value_name = "JOB_TIMEOUT_MS",
        default_value_t = 120_000
    )]
    pub job_timeout_ms: u64,
    /// This worker process's name in `CLIENT LIST` and Bull Board.
    #[arg(long, env = "WORKER_NAME", value_name = "WORKER_NAME")]
    pub worker_name: Option<String>,
    /// Test-only fault injection: the first N jobs this process reads panic
    /// inside their OCR worker.
    #[arg(
        long,
        env = "OCR_INJECT_PANICS",
        value_name = "OCR_INJECT_PANICS",
        default_value_t = 0,
        hide = true
    )]
    pub inject_panics: u32,
    #[command(flatten)]
    pub engine: EngineSettings,
}

/// A setting that parsed but makes no sense.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

impl Settings {
    /// Settings from the environment and defaults alone, no flags (for the
    /// default subcommand, tests and tools).
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        <Only as clap::Parser>::try_parse_from(["receipt-ocr"]).map(|only| only.settings)
    }

    /// Check what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = |name, value: &str, schemes: &[&str]| match url::Url::parse(value) {
            Ok(u) if schemes.contains(&u.scheme()) => Ok(()),
            Ok(u) => Err(invalid(
                name,
                format!("scheme `{}` is not one of {schemes:?}", u.scheme()),
            )),
            Err(e) => Err(invalid(name, format!("`{value}` is not a URL ({e})"))),
        };
        url(
            "REDIS_URL",
            &self.redis_url,
            &["redis", "rediss", "redis+unix", "unix"],
        )?;
        url(
            "DATABASE_URL",
            &self.database_url,
            &["postgres", "postgresql"],
        )?;
        if self.ocr_concurrency == 0 {
            return Err(invalid("OCR_CONCURRENCY", "must be at least 1"));
        }
        if self.ocr_rate_max > 0 && self.ocr_rate_duration_ms == 0 {
            return Err(invalid(
                "OCR_RATE_DURATION_MS",
                "must be above 0 when OCR_RATE_MAX is set",
            ));
        }
        if self.job_attempts == 0 {
            return Err(invalid("JOB_ATTEMPTS", "must be at least 1"));
        }
        if self.queue_name.is_empty() || self.queue_name.contains(':') {
            return Err(invalid(
                "QUEUE_NAME",
                "must be non-empty and contain no `:`",
            ));
        }
        if self.queue_prefix.is_empty() {
            return Err(invalid("QUEUE_PREFIX", "must be non-empty"));
        }
        if self.max_upload_bytes == 0 {
            return Err(invalid("MAX_UPLOAD_BYTES", "must be above 0"));
        }
        if self.job_lock_ms < 1_000 {
            return Err(invalid("JOB_LOCK_MS", "must be at least 1000"));
        }
        if self.job_timeout_ms < 1_000 {
            return Err(invalid("JOB_TIMEOUT_MS", "must be at least 1000"));
        }
        Ok(())
    }

    /// The accepted API keys; empty means the API is open.
    pub fn api_keys(&self) -> Vec<String> {
        self.api_keys
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect()
    }

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
