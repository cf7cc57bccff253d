//! The QueueWorker actor: owns this process's BullMQ worker, which fetches
//! jobs, renews their locks, and completes or fails them with what the
//! [`ReceiptPipeline`] answers. It also reads the worker's events (the
//! crate queues every one, so unread events would grow memory without
//! bound) and records jobs BullMQ fails on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bullmq::worker::WorkerEvent;
use bullmq::{Job, JobProgress, Worker, WorkerOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::ocr_pool::OcrPool;
use crate::config::QueueSettings;
use crate::job::{JobError, JobState, ReceiptJobData};
use crate::outcomes::ReceiptOutcomes;
use crate::pipeline::{JobAttempt, ReceiptPipeline};
use crate::queue::QueueHandle;
use crate::store::Db;

pub type Pipeline = ReceiptPipeline<ReceiptOutcomes, OcrPool>;

/// How long a job waits for PostgreSQL to come back before trying anyway.
const DATABASE_PATIENCE: Duration = Duration::from_secs(600);

pub struct QueueWorker;

#[derive(Clone)]
pub struct QueueWorkerArgs {
    pub settings: QueueSettings,
    /// OCR workers in this process: the BullMQ worker's concurrency.
    pub concurrency: usize,
    /// How long a stopping worker lets its active jobs finish.
    pub grace: Duration,
    pub pipeline: Arc<Pipeline>,
    pub queue: QueueHandle,
    pub db: Db,
}

pub struct QueueWorkerState {
    worker: Arc<Worker>,
    events: JoinHandle<()>,
    grace: Duration,
}

impl Actor for QueueWorker {
    type Msg = ();
    type State = QueueWorkerState;
    type Arguments = QueueWorkerArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<()>,
        args: QueueWorkerArgs,
    ) -> Result<QueueWorkerState, ActorProcessingErr> {
        let runner = Arc::new(JobRunner {
            pipeline: args.pipeline.clone(),
            db: args.db.clone(),
            queue: args.queue.clone(),
        });
        let worker = Arc::new(start_worker(&args, runner).await?);
        let events = drain_events(worker.clone(), args.queue, args.pipeline);
        Ok(QueueWorkerState {
            worker,
            events,
            grace: args.grace,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<()>,
        state: &mut QueueWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        // Let active jobs finish (their locks stay renewed meanwhile).
        state.worker.close(state.grace.as_millis() as u64).await?;
        state.events.abort();
        Ok(())
    }
}

async fn start_worker(
    args: &QueueWorkerArgs,
    runner: Arc<JobRunner>,
) -> Result<Worker, ActorProcessingErr> {
    let settings = &args.settings;
    let lock = settings.lock.as_millis() as u64;
    let options = WorkerOptions {
        connection: crate::queue::worker_connection(settings),
        prefix: settings.prefix.clone(),
        name: Some(settings.worker_name()),
        concurrency: args.concurrency,
        lock_duration: lock,
        stalled_interval: lock,
        // Per-minute completed/failed counts for `/metrics` and Bull Board,
        // kept for two weeks (one list entry a minute).
        metrics: Some(bullmq::MetricsOptions {
            max_data_points: 2 * 7 * 24 * 60,
        }),
        ..WorkerOptions::default()
    };
    let process = move |job: Job, _cancel| {
        let runner = runner.clone();
        async move { runner.process(job).await }
    };
    Ok(Worker::with_options(&settings.name, process, options).await?)
}

/// Runs one BullMQ job through the pipeline: its data in, its progress
/// forwarded to the job, its outcome translated for BullMQ.
struct JobRunner {
    pipeline: Arc<Pipeline>,
    db: Db,
    queue: QueueHandle,
}

/// How often a running job checks whether a client cancelled it.
const CANCEL_POLL: Duration = Duration::from_millis(250);

impl JobRunner {
    async fn process(&self, mut job: Job) -> Result<Value, bullmq::Error> {
        let attempt = attempt_of(&job)?;
        let span = tracing::info_span!(
            "process_receipt",
            job_id = attempt.job_id,
            receipt_id = %attempt.data.receipt_id,
            attempt = attempt.attempt,
        );
        crate::telemetry::continue_trace(&span, &attempt.data.trace_context);
        async move {
            self.wait_for_database().await;
            let (progress, reports) = mpsc::unbounded_channel();
            let run = async {
                tokio::select! {
                    outcome = self.pipeline.run(&attempt, progress) => outcome,
                    () = self.cancel_requested(&attempt.job_id) => Err(JobError::cancelled()),
                }
            };
            match forward_progress(&mut job, run, reports).await {
                Ok(result) => {
                    mark_saved(&mut job).await;
                    Ok(serde_json::to_value(result)?)
                }
                Err(JobError::Permanent { reason, .. }) => {
                    Err(bullmq::Error::Unrecoverable(reason))
                }
                Err(JobError::Retry { reason, .. }) => Err(bullmq::Error::ProcessingError(reason)),
            }
        }
        .instrument(span)
        .await
    }

    /// Resolves once a client asks to cancel the job, from any process.
    /// The pipeline is dropped then: an OCR read under way finishes on its
    /// thread and its result is thrown away.
    async fn cancel_requested(&self, job_id: &str) {
        loop {
            if let Ok(true) = self.queue.cancel_requested(job_id).await {
                tracing::info!(job_id, "cancelled by a client; stopping");
                return;
            }
            tokio::time::sleep(CANCEL_POLL).await;
        }
    }

    /// While PostgreSQL is down, hold the job (BullMQ keeps renewing its
    /// lock) instead of burning its attempts on certain failures.
    async fn wait_for_database(&self) {
        let started = Instant::now();
        let mut warned = false;
        while let Err(e) = self.db.ping().await {
            if started.elapsed() > DATABASE_PATIENCE {
                return; // Let the attempt run and fail with the real error.
            }
            if !warned {
                tracing::warn!(error = %e, "PostgreSQL is unreachable; holding the job until it answers");
                warned = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The attempt a BullMQ job stands for; data we cannot read fails it for good.
fn attempt_of(job: &Job) -> Result<JobAttempt, bullmq::Error> {
    let data: ReceiptJobData = serde_json::from_value(job.data().clone()).map_err(|e| {
        bullmq::Error::Unrecoverable(format!(
            "job data must be {{receiptId, blobKey, contentType}}: {e}"
        ))
    })?;
    Ok(JobAttempt {
        job_id: job.id().to_string(),
        data,
        attempt: job.attempts_made() + 1,
        max_attempts: job.opts().attempts.unwrap_or(1),
    })
}

/// Progress 100: the result is saved. Set here, after the pipeline's
/// answer, rather than reported as progress, so a completed job always
/// shows 100; retried because clients wait for it.
async fn mark_saved(job: &mut Job) {
    for _ in 0..3 {
        match job.update_progress(JobProgress::Number(100.0)).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "could not set progress 100; retrying"),
        }
    }
}

/// Await `run` while copying its progress reports to the job.
async fn forward_progress<T>(
    job: &mut Job,
    run: impl Future<Output = T>,
    mut progress: mpsc::UnboundedReceiver<u8>,
) -> T {
    let report = async |job: &mut Job, percent: u8| {
        // Progress is advisory: a failed update must not fail the job.
        let _ = job
            .update_progress(JobProgress::Number(f64::from(percent)))
            .await;
    };
    tokio::pin!(run);
    let outcome = loop {
        tokio::select! {
            Some(percent) = progress.recv() => report(job, percent).await,
            outcome = &mut run => break outcome,
        }
    };
    // Reports sent just before the answer may still be queued.
    while let Ok(percent) = progress.try_recv() {
        report(job, percent).await;
    }
    outcome
}

/// Read the worker's events until it closes.
fn drain_events(
    worker: Arc<Worker>,
    queue: QueueHandle,
    pipeline: Arc<Pipeline>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = worker.next_event().await {
            match event {
                WorkerEvent::Failed { job_id, error } => {
                    // BullMQ reports every failed attempt; only a job now
                    // in the failed set has failed for good.
                    match queue.lookup(&job_id).await {
                        Ok(Some(job)) if job.state == JobState::Failed => {
                            pipeline.job_failed(&job_id, &error).await;
                        }
                        Ok(Some(_)) => {
                            if let Err(e) = queue.record_failed_attempt(&job_id, &error).await {
                                tracing::warn!(job_id, error = %e, "could not keep the failed attempt's reason");
                            }
                        }
                        _ => {}
                    }
                }
                WorkerEvent::Stalled { job_id } => {
                    tracing::warn!(job_id, "job stalled (its worker died?); BullMQ retries it")
                }
                WorkerEvent::Error(error) => tracing::warn!(%error, "BullMQ worker error"),
                WorkerEvent::Closed => break,
                _ => {}
            }
        }
    })
}
