//! The BullMQ queue on Redis, through `bullmq-official`: enqueue, job
//! lookups, readiness, metrics and the global rate limit. A plain handle,
//! cheap to clone: `bullmq::Queue` multiplexes one connection, so callers
//! use it directly and concurrently.

use std::sync::LazyLock;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{Job, JobOptions, Queue, QueueOptions};

use crate::config::{QueueSettings, RateLimit, RetentionSettings, WebhookSettings};
use crate::job::{JOB_NAME, JobState, ReceiptJobData, ReceiptResult, Schedule};
use crate::telemetry::{propagation, spans};
use tracing::Instrument;

mod control;
mod events;
pub mod exporter;
pub mod stalls;
mod webhooks;
pub use control::{ConnectedWorker, JobCounts, QueueOverview};
pub use exporter::QueueMetricsLease;
pub use stalls::StallCounter;
pub use webhooks::{DELIVERY_JOB_NAME, DeliveryJobData, webhook_queue_name};

/// How long a request waits for Redis before answering 503.
const REDIS_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "Redis did not answer at {url} ({source}) — is it running? try `redis-cli -u {url} ping` \
         and check REDIS_URL"
    )]
    Redis {
        url: String,
        #[source]
        source: bullmq::Error,
    },
    #[error(
        "Redis did not answer at {url} within {}s — is it running? try `redis-cli -u {url} ping` \
         and check REDIS_URL", .waited.as_secs()
    )]
    Timeout { url: String, waited: Duration },
    #[error(
        "QUEUE_PREFIX `{prefix}` has no hash tag: on a Redis Cluster every key of a queue must \
         hash to one slot, so the prefix must hold a name in braces — use QUEUE_PREFIX={{bull}}"
    )]
    NoHashTag { prefix: String },
    #[error(
        "Redis at {url} is a Redis Cluster node: set REDIS_CLUSTER_NODES to the cluster's nodes \
         (comma-separated redis:// URLs) and QUEUE_PREFIX to a hash tag such as {{bull}}"
    )]
    ClusterNotConfigured { url: String },
}

/// A job as BullMQ holds it, reduced to what clients are shown.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueJob {
    pub id: String,
    pub state: JobState,
    pub progress: u8,
    pub result: Option<ReceiptResult>,
    pub failed_reason: Option<String>,
    /// Attempts that have ended (failed ones while a retry is pending).
    pub attempts_made: u32,
    /// 0 when the job has none.
    pub priority: u32,
    /// When a delayed job becomes due.
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was added, its latest attempt started, and it finished.
    pub added_at: Option<chrono::DateTime<chrono::Utc>>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The worker that ran its latest attempt (BullMQ's `processedBy`).
    pub worker: Option<String>,
    /// The receipt's run the job is (its data's `run`; 0 when absent).
    pub run: u32,
}

/// The global rate limit as BullMQ keeps it in the queue's meta hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Jobs per window; 0 = no limit.
    pub max: u64,
    pub duration_ms: u64,
    /// Milliseconds until jobs may start again; 0 when not limited now.
    pub wait_ms: u64,
}

#[derive(Clone)]
pub struct QueueHandle {
    queue: Queue,
    /// The webhook deliveries' own queue, `<queue name>-webhooks`.
    webhooks: Queue,
    delivery_options: JobOptions,
    /// `<prefix>:<queue name>`, the start of every key of the queue.
    keys: String,
    /// The queue's name and its span names, built once.
    span_names: spans::QueueSpanNames,
    /// Where Redis is, passwords hidden, for error messages.
    url: String,
    job_options: JobOptions,
}

/// How long a cancellation request waits for the worker holding the job.
const CANCEL_REQUEST_TTL_S: u64 = 24 * 3600;

/// One client's request to stop a job (its token in Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest(String);

impl QueueHandle {
    /// Connect (failing fast with a clear message when Redis is down).
    pub async fn open(
        settings: &QueueSettings,
        retention: &RetentionSettings,
        deliveries: &WebhookSettings,
    ) -> Result<Self, QueueError> {
        let url = settings.redis_target();
        check_redis(settings).await?;
        let open = async |name: &str| {
            let options = QueueOptions::new()
                .connection(connection(settings))
                .prefix(settings.prefix.clone());
            Queue::with_options(name, options)
                .await
                .map_err(|source| QueueError::Redis {
                    url: url.clone(),
                    source,
                })
        };
        let queue = open(&settings.name).await?;
        let webhooks = open(&webhook_queue_name(settings)).await?;
        Ok(Self {
            queue,
            webhooks,
            delivery_options: webhooks::delivery_options(deliveries, retention),
            keys: format!("{}:{}", settings.prefix, settings.name),
            span_names: spans::QueueSpanNames::new(&settings.name),
            url,
            job_options: job_options(settings, retention),
        })
    }

    /// Add a job again under an id it had before (a retry, a lost job),
    /// with fresh attempts and no priority; a cancellation request left
    /// from before is dropped first.
    pub async fn enqueue_again(
        &self,
        job_id: String,
        data: ReceiptJobData,
    ) -> Result<(), QueueError> {
        self.withdraw_cancel(&job_id).await?;
        self.enqueue(job_id, data, Schedule::default()).await
    }

    /// Drop any request to stop `job_id` (before the job runs again).
    pub async fn withdraw_cancel(&self, job_id: &str) -> Result<(), QueueError> {
        let mut clear = redis::cmd("DEL");
        clear.arg(self.cancel_key(job_id));
        self.command(clear).await
    }

    /// Drop the request `request` made, one that came too late; a request
    /// made since by another client (after a retry, say) stays.
    pub async fn withdraw_cancel_request(
        &self,
        job_id: &str,
        request: &CancelRequest,
    ) -> Result<(), QueueError> {
        static COMPARE_AND_DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                   return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        self.script(&COMPARE_AND_DELETE, self.cancel_key(job_id), &request.0)
            .await
    }

    /// Remove a job that no worker holds; false when a worker holds it
    /// (or it is gone already).
    pub async fn remove(&self, job_id: &str) -> Result<bool, QueueError> {
        match self.deadline(self.queue.remove(job_id)).await {
            // BullMQ refuses to remove a locked (active) job.
            Err(QueueError::Redis {
                source: bullmq::Error::Script { .. } | bullmq::Error::JobLocked(_),
                ..
            }) => Ok(false),
            outcome => outcome,
        }
    }

    fn cancel_key(&self, job_id: &str) -> String {
        format!("{}:receipt-ocr:cancel:{job_id}", self.keys)
    }

    /// Ask whichever worker process holds `job_id` to stop it; the answer
    /// names this request, to withdraw it alone if it came too late.
    pub async fn request_cancel(&self, job_id: &str) -> Result<CancelRequest, QueueError> {
        let request = CancelRequest(uuid::Uuid::new_v4().to_string());
        let mut set = redis::cmd("SET");
        set.arg(self.cancel_key(job_id))
            .arg(&request.0)
            .arg("EX")
            .arg(CANCEL_REQUEST_TTL_S);
        self.command::<()>(set).await?;
        Ok(request)
    }

    /// True once a client asked to cancel `job_id`.
    pub async fn cancel_requested(&self, job_id: &str) -> Result<bool, QueueError> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.cancel_key(job_id));
        self.command(exists).await
    }

    /// Take (or keep) the lock `name` for `owner` for `ttl`; true when held.
    pub async fn try_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, QueueError> {
        let key = format!("{}:receipt-ocr:lock:{name}", self.keys);
        let mut take = redis::cmd("SET");
        take.arg(&key)
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        if self.command::<Option<String>>(take).await?.is_some() {
            return Ok(true);
        }
        let mut holder = redis::cmd("GET");
        holder.arg(&key);
        let held = self.command::<Option<String>>(holder).await?;
        if held.as_deref() != Some(owner) {
            return Ok(false);
        }
        let mut extend = redis::cmd("PEXPIRE");
        extend.arg(&key).arg(ttl.as_millis() as u64);
        self.command::<()>(extend).await?;
        Ok(true)
    }

    /// Run one of our own Lua scripts on `key` with `arg`, on the queue's
    /// connection, within the deadline.
    async fn script(
        &self,
        script: &redis::Script,
        key: String,
        arg: &str,
    ) -> Result<(), QueueError> {
        let mut conn = self.queue.connection().connection();
        let mut invocation = script.key(key);
        invocation.arg(arg);
        let run = async { Ok(invocation.invoke_async::<()>(&mut conn).await?) };
        self.deadline(run).await
    }

    /// Run one of our own Redis commands (keys beside BullMQ's, under the
    /// queue's prefix), on the queue's own connection, within the deadline.
    async fn command<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, QueueError> {
        let mut redis = self.queue.connection().connection();
        let run = async move { cmd.query_async::<T>(&mut redis).await };
        self.deadline(async { run.await.map_err(bullmq::Error::from) })
            .await
    }

    async fn deadline<T>(
        &self,
        call: impl Future<Output = Result<T, bullmq::Error>>,
    ) -> Result<T, QueueError> {
        match tokio::time::timeout(REDIS_DEADLINE, call).await {
            Ok(outcome) => outcome.map_err(|source| QueueError::Redis {
                url: self.url.clone(),
                source,
            }),
            Err(_) => Err(QueueError::Timeout {
                url: self.url.clone(),
                waited: REDIS_DEADLINE,
            }),
        }
    }

    /// Add the job, in a PRODUCER span whose context the job carries (in
    /// `traceContext`) so that its processing continues this trace.
    pub async fn enqueue(
        &self,
        job_id: String,
        mut data: ReceiptJobData,
        schedule: Schedule,
    ) -> Result<(), QueueError> {
        let span = spans::enqueue(&self.span_names, &job_id);
        data.trace_context = propagation::trace_context_of(&span);
        let options = JobOptions {
            job_id: Some(job_id),
            priority: schedule.priority,
            delay: (schedule.delay_ms > 0).then_some(schedule.delay_ms),
            ..self.job_options.clone()
        };
        let add = self
            .queue
            .add(JOB_NAME, data)
            .options(options)
            .into_future();
        let added = self.deadline(add).instrument(span.clone()).await;
        if let Err(e) = &added {
            spans::record_error(&span, "redis_unavailable", &e.to_string());
        }
        added.map(|_| ())
    }

    /// The raw `opts` JSON of a job's hash, where a Node producer leaves
    /// BullMQ's `tm` trace context (which `bullmq-official` drops).
    pub async fn raw_options(&self, job_id: &str) -> Result<Option<String>, QueueError> {
        let mut get = redis::cmd("HGET");
        get.arg(format!("{}:{job_id}", self.keys)).arg("opts");
        self.command(get).await
    }

    /// BullMQ's queue itself and the options our jobs get, for
    /// `bench queue --bare` (the crate alone, beside our path).
    pub fn bare(&self) -> (&Queue, &JobOptions) {
        (&self.queue, &self.job_options)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        self.span_names.queue()
    }

    /// The queue's name and span names, for the consumer spans.
    pub fn span_names(&self) -> &spans::QueueSpanNames {
        &self.span_names
    }

    /// The job as Redis holds it, or `None` once Redis no longer has it.
    pub async fn lookup(&self, job_id: &str) -> Result<Option<QueueJob>, QueueError> {
        // Two reads, not one atomic one: the state first, so that a job seen
        // `completed` is read with its result and final progress (finishing
        // sets state and result in one script). The other order can pair an
        // old hash (progress 90, no result) with the new state.
        let state = self.deadline(self.queue.get_job_state(job_id)).await?;
        let job = match self.deadline(self.queue.get_job(job_id)).await {
            Ok(Some(job)) => job,
            Ok(None) => return Ok(None),
            // The id names another of the queue's keys (`1:lock`): no job.
            Err(QueueError::Redis {
                source: bullmq::Error::Redis(e),
                ..
            }) if e.code() == Some("WRONGTYPE") => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut found = queue_job(job, client_state(state));
        if found.state == JobState::Delayed {
            found.run_at = self.due_at(job_id).await?;
        }
        Ok(Some(found))
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.deadline(self.queue.get_version()).await.map(|_| ())
    }

    /// Job counts and completed/failed totals in Prometheus's text format
    /// (BullMQ's own names, as its Node exporter writes them).
    pub async fn metrics(&self) -> Result<String, QueueError> {
        let text = self
            .deadline(self.queue.export_prometheus_metrics(&[]))
            .await?;
        Ok(text + "\n")
    }

    /// Write the global limit where BullMQ's scripts enforce it for every
    /// worker, Node ones included (a limit of 0 removes it).
    pub async fn set_rate_limit(&self, limit: RateLimit) -> Result<(), QueueError> {
        if limit.is_on() {
            let window = limit.window.as_millis() as u64;
            self.deadline(self.queue.set_global_rate_limit(limit.max, window))
                .await
        } else {
            self.deadline(self.queue.remove_global_rate_limit()).await
        }
    }

    /// The limit in force, read back from Redis, and the current wait.
    pub async fn rate_limit(&self) -> Result<RateLimitStatus, QueueError> {
        let Some((max, duration_ms)) = self.deadline(self.queue.get_global_rate_limit()).await?
        else {
            return Ok(RateLimitStatus {
                max: 0,
                duration_ms: 0,
                wait_ms: 0,
            });
        };
        let ttl = self
            .deadline(self.queue.get_rate_limit_ttl(Some(max)))
            .await?;
        Ok(RateLimitStatus {
            max,
            duration_ms,
            wait_ms: ttl.max(0) as u64,
        })
    }
}

/// The BullMQ connection options every Redis user of this queue shares:
/// one server (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES).
fn connection(settings: &QueueSettings) -> RedisConnectionOptions {
    match settings.is_cluster() {
        false => RedisConnectionOptions::new().url(settings.redis_url.clone()),
        true => RedisConnectionOptions::new().cluster_nodes(settings.cluster_nodes.0.clone()),
    }
}

/// The BullMQ connection options of a worker on this queue.
pub fn worker_connection(settings: &QueueSettings) -> RedisConnectionOptions {
    connection(settings)
}

/// Check Redis answers before anything else uses it, so start-up fails
/// with a clear message instead of retrying in the background; and that
/// a cluster is used as one (cluster client, hash-tagged prefix).
pub async fn check_redis(settings: &QueueSettings) -> Result<(), QueueError> {
    let url = settings.redis_target();
    if settings.is_cluster() && hash_tag(&settings.prefix).is_none() {
        return Err(QueueError::NoHashTag {
            prefix: settings.prefix.clone(),
        });
    }
    let probe = async {
        let mut conn = match settings.is_cluster() {
            false => {
                let client = redis::Client::open(settings.redis_url.as_str())?;
                bullmq::redis_connection::AnyConnection::Single(
                    redis::aio::ConnectionManager::new(client).await?,
                )
            }
            true => {
                let client = redis::cluster::ClusterClient::new(settings.cluster_nodes.0.clone())?;
                bullmq::redis_connection::AnyConnection::Cluster(
                    client.get_async_connection().await?,
                )
            }
        };
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        if settings.is_cluster() {
            return Ok(String::new());
        }
        // A cluster node behind REDIS_URL would answer MOVED to most keys.
        redis::cmd("INFO")
            .arg("cluster")
            .query_async::<String>(&mut conn)
            .await
    };
    let waited = Duration::from_secs(3);
    match tokio::time::timeout(waited, probe).await {
        Ok(Ok(info)) if !settings.is_cluster() && info.contains("cluster_enabled:1") => {
            Err(QueueError::ClusterNotConfigured { url })
        }
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(QueueError::Redis {
            url,
            source: e.into(),
        }),
        Err(_) => Err(QueueError::Timeout { url, waited }),
    }
}

/// The hash tag of `key` as Redis Cluster reads it: the text between the
/// first `{` and the next `}`, when not empty.
fn hash_tag(key: &str) -> Option<&str> {
    let (_, after) = key.split_once('{')?;
    let (tag, _) = after.split_once('}')?;
    (!tag.is_empty()).then_some(tag)
}

/// Keep at most `count` finished jobs, none older than `age`.
fn keep(count: usize, age: Duration) -> RemoveOnFinish {
    RemoveOnFinish::Options(KeepJobs {
        age: Some(age.as_secs()),
        count: Some(count),
        limit: None,
    })
}

fn job_options(settings: &QueueSettings, retention: &RetentionSettings) -> JobOptions {
    JobOptions {
        attempts: Some(settings.attempts.get()),
        backoff: Some(BackoffStrategy::Exponential(
            settings.backoff.as_millis() as u64
        )),
        remove_on_complete: Some(keep(retention.completed_count, retention.completed_age)),
        remove_on_fail: Some(keep(retention.failed_count, retention.failed_age)),
        ..JobOptions::default()
    }
}

/// BullMQ's state as clients are shown it.
pub fn client_state(state: bullmq::JobState) -> JobState {
    match state {
        bullmq::JobState::Waiting | bullmq::JobState::WaitingChildren => JobState::Waiting,
        bullmq::JobState::Active => JobState::Active,
        bullmq::JobState::Delayed => JobState::Delayed,
        bullmq::JobState::Prioritized => JobState::Prioritized,
        bullmq::JobState::Completed => JobState::Completed,
        bullmq::JobState::Failed => JobState::Failed,
        bullmq::JobState::Unknown => JobState::Unknown,
    }
}

fn queue_job(job: Job, state: JobState) -> QueueJob {
    let progress = match job.progress() {
        // The worker does not write a last "100" (one round trip per job
        // saved): BullMQ keeps its last step, and its state says the rest.
        _ if state == JobState::Completed => 100,
        bullmq::JobProgress::Number(n) => n.clamp(0.0, 100.0).round() as u8,
        bullmq::JobProgress::Object(_) => 0,
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let result = (state == JobState::Completed)
        .then(|| non_empty(job.returnvalue()))
        .flatten()
        .and_then(|raw| parse_result(job.id(), &raw));
    QueueJob {
        id: job.id().to_string(),
        state,
        progress,
        result,
        failed_reason: non_empty(job.failed_reason()),
        attempts_made: job.attempts_made(),
        priority: job.priority(),
        run_at: None,
        added_at: from_millis(Some(job.timestamp())),
        started_at: from_millis(job.processed_on()),
        finished_at: from_millis(job.finished_on()),
        worker: job.processed_by().and_then(non_empty),
        run: job_run(job.data()),
    }
}

/// The `run` a job's data names; 0 for a job without one (a Node
/// producer's, or the upload's own).
fn job_run(data: &serde_json::Value) -> u32 {
    let run = data.get("run").and_then(serde_json::Value::as_u64);
    u32::try_from(run.unwrap_or_default()).unwrap_or_default()
}

/// A BullMQ timestamp (milliseconds since the epoch; 0 when unset).
fn from_millis(millis: Option<u64>) -> Option<chrono::DateTime<chrono::Utc>> {
    let millis = i64::try_from(millis?).ok().filter(|&m| m > 0)?;
    chrono::DateTime::from_timestamp_millis(millis)
}

/// A completed job's return value; one not written by us is logged and
/// left out (the receipt row still answers for it).
fn parse_result(job_id: &str, raw: &str) -> Option<ReceiptResult> {
    serde_json::from_str(raw)
        .inspect_err(
            |e| tracing::warn!(job_id, error = %e, "a job's return value is not a receipt result"),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::hash_tag;

    #[test]
    fn a_hash_tag_is_the_first_non_empty_braced_name() {
        assert_eq!(hash_tag("{bull}"), Some("bull"));
        assert_eq!(hash_tag("app:{bull}:x"), Some("bull"));
        assert_eq!(hash_tag("bull"), None);
        assert_eq!(hash_tag("{}bull"), None);
        assert_eq!(hash_tag("{bull"), None);
    }
}
