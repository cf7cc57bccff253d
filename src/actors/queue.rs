//! The QueueActor: BullMQ on Redis through `bullmq-official`.
//!
//! It owns the queue handle (enqueue, lookups) and, in worker processes, the
//! BullMQ worker loop that fetches jobs, renews their locks, and completes or
//! fails them with what the OCR pool returns. Requests run in tasks of their
//! own, so one slow Redis answer never holds up the mailbox.

use std::sync::Arc;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{Job, JobOptions, JobState, Queue, QueueOptions, Worker, WorkerOptions};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use super::OcrJobData;
use super::ocr_pool::JobProcessor;
use crate::config::Settings;
use crate::store::redact_url;

/// BullMQ's job name for our jobs (the seed's).
pub const JOB_NAME: &str = "process-receipt";
/// How long an API request waits for Redis before answering 503.
const REDIS_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "Redis did not answer at {url} ({reason}) — is it running? try `redis-cli -u {url} ping` \
     and check REDIS_URL"
)]
pub struct QueueError {
    pub url: String,
    pub reason: String,
}

/// A job as BullMQ holds it, reduced to what clients are shown.
#[derive(Debug, Clone)]
pub struct QueueJob {
    pub id: String,
    pub state: JobState,
    pub progress: u8,
    pub return_value: Option<Value>,
    pub failed_reason: Option<String>,
}

pub enum QueueMessage {
    Enqueue {
        job_id: String,
        data: OcrJobData,
        reply: RpcReplyPort<Result<(), QueueError>>,
    },
    Lookup {
        job_id: String,
        reply: RpcReplyPort<Result<Option<QueueJob>, QueueError>>,
    },
    Ping(RpcReplyPort<Result<(), QueueError>>),
    /// Job counts and totals in Prometheus's text format.
    Metrics(RpcReplyPort<Result<String, QueueError>>),
}

pub struct QueueActor;

#[derive(Clone)]
pub struct QueueArgs {
    pub settings: Arc<Settings>,
    /// Present in worker processes: the BullMQ worker hands jobs to it.
    pub processor: Option<Arc<JobProcessor>>,
}

pub struct QueueState {
    queue: Queue,
    /// In worker processes: the BullMQ worker and the task reading its events.
    worker: Option<(Arc<Worker>, JoinHandle<()>)>,
    settings: Arc<Settings>,
}

impl Actor for QueueActor {
    type Msg = QueueMessage;
    type State = QueueState;
    type Arguments = QueueArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<QueueMessage>,
        args: QueueArgs,
    ) -> Result<QueueState, ActorProcessingErr> {
        let settings = args.settings;
        let queue = open_queue(&settings).await?;
        let worker = match args.processor {
            Some(processor) => {
                let db = processor.db.clone();
                let worker = Arc::new(start_worker(&settings, processor).await?);
                let events = super::worker_events::drain(worker.clone(), queue.clone(), db);
                Some((worker, events))
            }
            None => None,
        };
        Ok(QueueState {
            queue,
            worker,
            settings,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<QueueMessage>,
        state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((worker, events)) = state.worker.take() {
            // Let active jobs finish (their locks stay renewed meanwhile).
            worker.close(state.settings.shutdown_grace_ms).await?;
            events.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<QueueMessage>,
        message: QueueMessage,
        state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        let queue = state.queue.clone();
        let settings = state.settings.clone();
        tokio::spawn(async move {
            match message {
                QueueMessage::Enqueue {
                    job_id,
                    data,
                    reply,
                } => {
                    let _ = reply.send(enqueue(&queue, &settings, job_id, data).await);
                }
                QueueMessage::Lookup { job_id, reply } => {
                    let _ = reply.send(lookup(&queue, &settings, &job_id).await);
                }
                QueueMessage::Ping(reply) => {
                    let outcome = deadline(&settings, queue.get_version()).await.map(|_| ());
                    let _ = reply.send(outcome);
                }
                QueueMessage::Metrics(reply) => {
                    let metrics = queue.export_prometheus_metrics(&[]);
                    let _ = reply.send(deadline(&settings, metrics).await);
                }
            }
        });
        Ok(())
    }
}

fn connection(settings: &Settings) -> RedisConnectionOptions {
    RedisConnectionOptions::new().url(settings.redis_url.clone())
}

fn queue_error(settings: &Settings, reason: impl ToString) -> QueueError {
    QueueError {
        url: redact_url(&settings.redis_url),
        reason: reason.to_string(),
    }
}

async fn deadline<T>(
    settings: &Settings,
    call: impl Future<Output = Result<T, bullmq::Error>>,
) -> Result<T, QueueError> {
    match tokio::time::timeout(REDIS_DEADLINE, call).await {
        Ok(outcome) => outcome.map_err(|e| queue_error(settings, e)),
        Err(_) => Err(queue_error(settings, "no answer within 5 s")),
    }
}

/// Check Redis answers before anything else uses it, so start-up fails
/// with a clear message instead of retrying in the background.
pub async fn check_redis(settings: &Settings) -> Result<(), QueueError> {
    let probe = async {
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(queue_error(settings, e)),
        Err(_) => Err(queue_error(settings, "no answer within 3 s")),
    }
}

async fn open_queue(settings: &Settings) -> Result<Queue, QueueError> {
    check_redis(settings).await?;
    let options = QueueOptions::new()
        .connection(connection(settings))
        .prefix(settings.queue_prefix.clone());
    Queue::with_options(&settings.queue_name, options)
        .await
        .map_err(|e| queue_error(settings, e))
}

fn job_options(settings: &Settings, job_id: String) -> JobOptions {
    let keep = |count, age| {
        RemoveOnFinish::Options(KeepJobs {
            age: Some(age),
            count: Some(count),
            limit: None,
        })
    };
    JobOptions {
        job_id: Some(job_id),
        attempts: Some(settings.job_attempts),
        backoff: Some(BackoffStrategy::Exponential(settings.job_backoff_ms)),
        remove_on_complete: Some(keep(
            settings.keep_completed_count,
            settings.keep_completed_age_s,
        )),
        remove_on_fail: Some(keep(settings.keep_failed_count, settings.keep_failed_age_s)),
        ..JobOptions::default()
    }
}

async fn enqueue(
    queue: &Queue,
    settings: &Settings,
    job_id: String,
    data: OcrJobData,
) -> Result<(), QueueError> {
    let options = job_options(settings, job_id);
    deadline(
        settings,
        queue.add(JOB_NAME, data).options(options).into_future(),
    )
    .await?;
    Ok(())
}

async fn lookup(
    queue: &Queue,
    settings: &Settings,
    job_id: &str,
) -> Result<Option<QueueJob>, QueueError> {
    // Two reads, not one atomic one: the state first, so that a job seen
    // `completed` is read with its result and final progress (finishing
    // sets state and result in one script). The other order can pair an
    // old hash (progress 90, no result) with the new state.
    let state = deadline(settings, queue.get_job_state(job_id)).await?;
    let Some(job) = deadline(settings, queue.get_job(job_id)).await? else {
        return Ok(None);
    };
    Ok(Some(queue_job(job, state)))
}

fn queue_job(job: Job, state: JobState) -> QueueJob {
    let progress = match job.progress() {
        bullmq::JobProgress::Number(n) => n.clamp(0.0, 100.0).round() as u8,
        bullmq::JobProgress::Object(_) => 0,
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    QueueJob {
        id: job.id().to_string(),
        state,
        progress,
        return_value: non_empty(job.returnvalue()).and_then(|raw| serde_json::from_str(&raw).ok()),
        failed_reason: non_empty(job.failed_reason()),
    }
}

async fn start_worker(
    settings: &Settings,
    processor: Arc<JobProcessor>,
) -> Result<Worker, ActorProcessingErr> {
    let mut options = WorkerOptions::default();
    options.connection = connection(settings);
    options.prefix = settings.queue_prefix.clone();
    options.name = Some(settings.worker_name());
    options.concurrency = settings.ocr_concurrency;
    options.lock_duration = settings.job_lock_ms;
    options.stalled_interval = settings.job_lock_ms;
    options.limiter = super::rate_limiter::limiter_options(settings);
    // Per-minute completed/failed counts for `/metrics` and Bull Board,
    // kept for two weeks (one list entry a minute).
    options.metrics = Some(bullmq::MetricsOptions {
        max_data_points: 2 * 7 * 24 * 60,
    });
    let process = move |job: Job, _cancel| {
        let processor = processor.clone();
        async move { processor.process(job).await }
    };
    Ok(Worker::with_options(&settings.queue_name, process, options).await?)
}

/// How the rest of the program reaches the current QueueActor; the
/// supervisor swaps in the new one when it restarts it.
#[derive(Clone)]
pub struct QueueHandle {
    current: Arc<RwLock<ActorRef<QueueMessage>>>,
    settings: Arc<Settings>,
}

impl QueueHandle {
    pub fn new(actor: ActorRef<QueueMessage>, settings: Arc<Settings>) -> Self {
        Self {
            current: Arc::new(RwLock::new(actor)),
            settings,
        }
    }

    pub async fn replace(&self, actor: ActorRef<QueueMessage>) {
        *self.current.write().await = actor;
    }

    pub async fn actor(&self) -> ActorRef<QueueMessage> {
        self.current.read().await.clone()
    }

    async fn ask<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<Result<T, QueueError>>) -> QueueMessage,
    ) -> Result<T, QueueError> {
        let actor = self.actor().await;
        match actor.call(build, Some(REDIS_DEADLINE * 2)).await {
            Ok(CallResult::Success(outcome)) => outcome,
            Ok(_) => Err(queue_error(
                &self.settings,
                "the queue actor did not answer in time",
            )),
            Err(e) => Err(queue_error(
                &self.settings,
                format!("the queue actor is restarting ({e})"),
            )),
        }
    }

    pub async fn enqueue(&self, job_id: String, data: OcrJobData) -> Result<(), QueueError> {
        self.ask(|reply| QueueMessage::Enqueue {
            job_id,
            data,
            reply,
        })
        .await
    }

    pub async fn lookup(&self, job_id: String) -> Result<Option<QueueJob>, QueueError> {
        self.ask(|reply| QueueMessage::Lookup { job_id, reply })
            .await
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.ask(QueueMessage::Ping).await
    }

    pub async fn metrics(&self) -> Result<String, QueueError> {
        self.ask(QueueMessage::Metrics).await
    }
}
