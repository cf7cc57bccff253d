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
          default_value = "10485760", value_parser = parse::upload_bytes)]
    pub max_upload_bytes: usize,
    /// Comma-separated keys accepted in `X-Api-Key`: `name:key`,
    /// `name:key:admin` or a plain `key`; empty = open.
    #[arg(long, env = "API_KEYS", value_name = "API_KEYS", default_value = "",
          value_parser = parse::api_keys)]
    pub api_keys: ApiKeys,
    #[command(flatten)]
    pub limits: ServerLimits,
    #[command(flatten)]
    pub graphql: GraphqlLimits,
}

/// What one client may hold of the HTTP server, so that slow or greedy
/// clients cannot starve the others.
#[derive(Debug, Clone, Args)]
pub struct ServerLimits {
    /// How long a client may take to send a request's headers, from the
    /// connection's start or the request's first byte (ms).
    #[arg(long = "http-header-timeout-ms", env = "HTTP_HEADER_TIMEOUT_MS",
          value_name = "HTTP_HEADER_TIMEOUT_MS", default_value = "10000",
          value_parser = parse::positive_millis)]
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (ms).
    #[arg(long = "http-idle-timeout-ms", env = "HTTP_IDLE_TIMEOUT_MS",
          value_name = "HTTP_IDLE_TIMEOUT_MS", default_value = "60000",
          value_parser = parse::positive_millis)]
    pub idle_timeout: Duration,
    /// How long a client may take to send a request's body (ms).
    #[arg(long = "http-body-timeout-ms", env = "HTTP_BODY_TIMEOUT_MS",
          value_name = "HTTP_BODY_TIMEOUT_MS", default_value = "120000",
          value_parser = parse::positive_millis)]
    pub body_timeout: Duration,
    /// Open connections at most; beyond it the oldest connection that has
    /// no request in progress is closed to make room.
    #[arg(long = "http-max-connections", env = "HTTP_MAX_CONNECTIONS",
          value_name = "HTTP_MAX_CONNECTIONS", default_value = "1024",
          value_parser = parse::positive_usize)]
    pub max_connections: usize,
    /// Request-body bytes the process takes in at once, over all requests;
    /// beyond it requests get 503 with Retry-After.
    #[arg(long = "max-upload-bytes-in-flight", env = "MAX_UPLOAD_BYTES_IN_FLIGHT",
          value_name = "MAX_UPLOAD_BYTES_IN_FLIGHT", default_value = "104857600",
          value_parser = parse::positive_usize)]
    pub max_body_bytes_in_flight: usize,
}

/// What one GraphQL request may cost.
#[derive(Debug, Clone, Args)]
pub struct GraphqlLimits {
    /// Deepest selection nesting (introspection needs about 13).
    #[arg(long = "graphql-max-depth", env = "GRAPHQL_MAX_DEPTH",
          value_name = "GRAPHQL_MAX_DEPTH", default_value = "16",
          value_parser = parse::positive_usize)]
    pub max_depth: usize,
    /// Highest cost: 1 per field, 10 per lookup, a listing's page size
    /// times its selection.
    #[arg(long = "graphql-max-complexity", env = "GRAPHQL_MAX_COMPLEXITY",
          value_name = "GRAPHQL_MAX_COMPLEXITY", default_value = "1000",
          value_parser = parse::positive_usize)]
    pub max_complexity: usize,
    /// Most aliased fields in one document.
    #[arg(long = "graphql-max-aliases", env = "GRAPHQL_MAX_ALIASES",
          value_name = "GRAPHQL_MAX_ALIASES", default_value = "30",
          value_parser = parse::number_usize)]
    pub max_aliases: usize,
    /// Longest query text, in bytes.
    #[arg(long = "graphql-max-query-bytes", env = "GRAPHQL_MAX_QUERY_BYTES",
          value_name = "GRAPHQL_MAX_QUERY_BYTES", default_value = "16384",
          value_parser = parse::positive_usize)]
    pub max_query_bytes: usize,
    /// Most queries in one batch (a JSON array of requests).
    #[arg(long = "graphql-max-batch", env = "GRAPHQL_MAX_BATCH",
          value_name = "GRAPHQL_MAX_BATCH", default_value = "10",
          value_parser = parse::positive_usize)]
    pub max_batch: usize,
    /// Most subscriptions one GraphQL WebSocket connection may hold open.
    #[arg(long = "graphql-max-subscriptions", env = "GRAPHQL_MAX_SUBSCRIPTIONS",
          value_name = "GRAPHQL_MAX_SUBSCRIPTIONS", default_value = "100",
          value_parser = parse::positive_usize)]
    pub max_subscriptions: usize,
    /// Whether the schema answers introspection (`__schema`, `__type`).
    #[arg(long = "graphql-introspection", env = "GRAPHQL_INTROSPECTION",
          value_name = "GRAPHQL_INTROSPECTION", default_value = "true",
          value_parser = parse::boolean, action = clap::ArgAction::Set)]
    pub introspection: bool,
}

/// One configured API key: its name (the owner recorded on what it
/// uploads), whether it sees everything, and the key's SHA-256 (the key
/// itself is not kept, nor printed).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub admin: bool,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// The API keys a request may carry; none means the API is open. Entries
/// are `name:key`, `name:key:admin` or a plain `key` (named `key1`,
/// `key2`, … by its position).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
    /// Some entry has a name: queue control then needs an admin key.
    named: bool,
}

impl ApiKeys {
    /// Keys as `(name, key, admin)`; `named` says whether the names were
    /// given rather than made up from positions.
    pub fn new(keys: Vec<(String, String, bool)>, named: bool) -> Self {
        let keys = keys
            .into_iter()
            .map(|(name, key, admin)| ApiKey {
                name,
                admin,
                digest: digest(&key),
            })
            .collect();
        Self { keys, named }
    }

    /// Plain keys, named by position (tests, tools).
    pub fn plain(keys: &[&str]) -> Self {
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, key)| (format!("key{}", i + 1), key.to_string(), false))
            .collect();
        Self::new(keys, false)
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the keys were given names (`name:key`).
    pub fn are_named(&self) -> bool {
        self.named
    }

    pub fn names(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.name.as_str()).collect()
    }

    /// The key `presented` matches, compared in constant time: every
    /// configured key is compared (as SHA-256 digests, so lengths leak
    /// nothing either), whichever matches.
    pub fn identify(&self, presented: &str) -> Option<&ApiKey> {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let presented = digest(presented);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, key) in self.keys.iter().enumerate() {
            let matches = key.digest.ct_eq(&presented);
            // Key counts are tiny: the index fits in a u32.
            index.conditional_assign(&(i as u32), matches);
            found |= matches;
        }
        bool::from(found).then(|| &self.keys[index as usize])
    }
}

fn digest(key: &str) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()).into()
}

/// The BullMQ queue on Redis, its jobs' retry policy and the global limit.
#[derive(Debug, Clone, Args)]
pub struct QueueSettings {
    /// Redis holding the BullMQ queue.
    #[arg(long, env = "REDIS_URL", value_name = "REDIS_URL",
          default_value = "redis://127.0.0.1:6379", value_parser = parse::redis_url)]
    pub redis_url: String,
    /// Redis Cluster seed nodes, comma-separated `redis://host:port` URLs;
    /// when set, every Redis user talks to the cluster and REDIS_URL is
    /// unused. QUEUE_PREFIX must then hold a hash tag, such as `{bull}`.
    #[arg(long = "redis-cluster-nodes", env = "REDIS_CLUSTER_NODES",
          value_name = "REDIS_CLUSTER_NODES", default_value = "",
          value_parser = parse::redis_nodes)]
    pub cluster_nodes: RedisNodes,
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

/// Redis Cluster seed nodes (`REDIS_CLUSTER_NODES`); empty: one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisNodes(pub Vec<String>);

impl QueueSettings {
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.0.is_empty()
    }

    /// Where Redis is, passwords hidden, for messages: REDIS_URL, or the
    /// cluster's seed nodes.
    pub fn redis_target(&self) -> String {
        match self.is_cluster() {
            false => crate::store::redact_url(&self.redis_url),
            true => {
                let nodes: Vec<String> = self
                    .cluster_nodes
                    .0
                    .iter()
                    .map(|n| crate::store::redact_url(n))
                    .collect();
                format!("the Redis Cluster at {}", nodes.join(","))
            }
        }
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
    /// Most connections this process opens to PostgreSQL (size the
    /// server's `max_connections` for every process together).
    #[arg(id = "database_max_connections", long = "database-max-connections", env = "DATABASE_MAX_CONNECTIONS",
          value_name = "DATABASE_MAX_CONNECTIONS", default_value = "16",
          value_parser = parse::at_least_one)]
    pub max_connections: NonZeroUsize,
}

#[derive(Debug, Clone, Args)]
pub struct BlobSettings {
    /// Where uploads are kept: a local directory, or `s3://bucket/prefix`.
    #[arg(long = "blob-store", env = "BLOB_STORE", value_name = "BLOB_STORE",
          default_value = "./data/blobs", value_parser = parse::non_empty)]
    pub location: String,
    /// Days the image of a settled receipt (completed, failed or
    /// cancelled) is kept after its last change; then it is removed from
    /// the blob store and the receipt's fields stay. 0 keeps images for ever.
    #[arg(
        long = "image-keep-days",
        env = "IMAGE_KEEP_DAYS",
        value_name = "IMAGE_KEEP_DAYS",
        default_value = "0"
    )]
    pub keep_days: u32,
}

impl BlobSettings {
    /// How long a settled receipt's image is kept; `None`: for ever.
    pub fn keep(&self) -> Option<Duration> {
        parse::kept_for(self.keep_days)
    }
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
    /// Fault injection for tests: the first read in this process reports
    /// progress 10, then is held this long (ms) before it starts, like a
    /// stuck engine.
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
    /// Fault injection for tests: the first N passes in this process panic,
    /// so the supervisor restarts the reconciler. Only in builds with
    /// `fault-injection`.
    #[cfg(feature = "fault-injection")]
    #[arg(
        id = "reconcile_inject_panics",
        long = "reconcile-inject-panics",
        env = "RECONCILE_INJECT_PANICS",
        value_name = "RECONCILE_INJECT_PANICS",
        default_value_t = 0,
        hide = true
    )]
    pub inject_panics: u32,
}
