//! The QueueWorker actor: owns this process's BullMQ worker, which fetches
//! jobs, renews their locks, and completes or fails them with what the
//! [`ReceiptPipeline`] answers. It also reads the worker's events (the
//! crate queues every one, so unread events would grow memory without
//! bound), records on the receipt every job BullMQ has failed for good,
//! and logs stalled jobs.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bullmq::worker::WorkerEvent;
use bullmq::{Job, JobProgress, Worker, WorkerOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::ocr_pool::OcrPool;
use crate::config::QueueSettings;
use crate::job::{
    CANCELLED_REASON, FailureClass, JobError, JobState, LATEST_RUN, ReceiptJobData, ReceiptResult,
};
use crate::outcomes::ReceiptOutcomes;
use crate::pipeline::{
    JobAttempt, Progress, ReceiptPipeline, ReceiptReader, ReceiptRecords, record_pauses,
};
use crate::queue::stalls::StallCheck;
use crate::queue::{QueueHandle, StallCounter};
use crate::store::Db;
use crate::telemetry::metrics::metrics;
use crate::telemetry::{propagation, spans};

pub type Pipeline = ReceiptPipeline<ReceiptOutcomes, OcrPool>;

/// How long a job waits for PostgreSQL to come back before trying anyway.
const DATABASE_PATIENCE: Duration = Duration::from_secs(600);
/// How long PostgreSQL answering the check before a job vouches for it.
const DATABASE_CHECK_LASTS: Duration = Duration::from_secs(1);

/// What the worker runs for each attempt: the receipt pipeline in the
/// service; `bench queue` runs a no-op one through the same path.
pub trait JobProcessor: Send + Sync + 'static {
    /// Run one attempt (see [`ReceiptPipeline::run`]).
    fn run(
        &self,
        attempt: &JobAttempt,
        progress: Progress,
    ) -> impl Future<Output = Result<ReceiptResult, JobError>> + Send;

    /// Record that BullMQ failed the job for good, on the receipt's `run`
    /// the job was.
    fn job_failed(&self, job_id: &str, reason: &str, run: u32) -> impl Future<Output = ()> + Send;

    /// BullMQ has moved the job to `completed` (the worker's event).
    fn completed(&self, _job_id: &str) {}
}

impl<S, R> JobProcessor for ReceiptPipeline<S, R>
where
    S: ReceiptRecords + 'static,
    R: ReceiptReader + 'static,
{
    async fn run(
        &self,
        attempt: &JobAttempt,
        progress: Progress,
    ) -> Result<ReceiptResult, JobError> {
        ReceiptPipeline::run(self, attempt, progress).await
    }

    async fn job_failed(&self, job_id: &str, reason: &str, run: u32) {
        ReceiptPipeline::job_failed(self, job_id, reason, run).await
    }
}

/// The actor, generic over what runs the attempts (the service's
/// [`Pipeline`] unless said otherwise).
pub struct QueueWorker<P = Pipeline>(PhantomData<fn() -> P>);

impl<P> QueueWorker<P> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<P> Default for QueueWorker<P> {
    fn default() -> Self {
        Self::new()
    }
}

pub struct QueueWorkerArgs<P = Pipeline> {
    pub settings: QueueSettings,
    /// OCR workers in this process: the BullMQ worker's concurrency.
    pub concurrency: usize,
    /// How long a stopping worker lets its active jobs finish.
    pub grace: Duration,
    pub pipeline: Arc<P>,
    pub queue: QueueHandle,
    pub db: Db,
    /// Stalls this process logged (see [`crate::queue::stalls`]).
    pub stalls: StallCounter,
}

pub struct QueueWorkerState {
    worker: Arc<Worker>,
    events: JoinHandle<()>,
    stall_watch: JoinHandle<()>,
    grace: Duration,
    /// Set when the grace is over: running jobs go back to `waiting`.
    hand_back: watch::Sender<bool>,
}

/// Time the worker gets after the grace to hand its jobs back to BullMQ.
const HAND_BACK_TIME: Duration = Duration::from_secs(3);
/// Time a stopping worker then gives the final failures its events are
/// recording (within the 5 s after the grace the process has).
const SETTLE_TIME: Duration = Duration::from_secs(1);

impl<P> Clone for QueueWorkerArgs<P> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            concurrency: self.concurrency,
            grace: self.grace,
            pipeline: self.pipeline.clone(),
            queue: self.queue.clone(),
            db: self.db.clone(),
            stalls: self.stalls.clone(),
        }
    }
}

impl<P: JobProcessor> Actor for QueueWorker<P> {
    type Msg = ();
    type State = QueueWorkerState;
    type Arguments = QueueWorkerArgs<P>;

    async fn pre_start(
        &self,
        _me: ActorRef<()>,
        args: QueueWorkerArgs<P>,
    ) -> Result<QueueWorkerState, ActorProcessingErr> {
        let (hand_back, handed_back) = watch::channel(false);
        let final_failures = FinalFailures::default();
        let runner = Arc::new(JobRunner {
            final_failures: final_failures.clone(),
            pipeline: args.pipeline.clone(),
            db: args.db.clone(),
            queue: args.queue.clone(),
            handed_back,
            worker_name: args.settings.worker_name(),
            database_checked: std::sync::Mutex::new(None),
        });
        let options = worker_options(&args.settings, args.concurrency);
        let stall_check = StallCheck::of(&options);
        let worker = Arc::new(start_worker(&args.settings.name, options, runner).await?);
        let stall_watch = tokio::spawn(crate::queue::stalls::watch(
            args.queue.clone(),
            stall_check,
            args.stalls.clone(),
        ));
        let events = drain_events(
            worker.clone(),
            args.queue,
            args.db,
            args.pipeline,
            final_failures,
        );
        Ok(QueueWorkerState {
            worker,
            events,
            stall_watch,
            grace: args.grace,
            hand_back,
        })
    }

    async fn post_stop(
        &self,
        _me: ActorRef<()>,
        state: &mut QueueWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        // No job starts from here on. Active jobs may finish within the
        // grace (their locks stay renewed); at the grace, those still
        // running go back to `waiting` at once, with no attempt spent.
        let bound = state.grace + HAND_BACK_TIME;
        let close = state.worker.close(bound.as_millis() as u64);
        tokio::pin!(close);
        tokio::select! {
            closed = &mut close => closed?,
            () = tokio::time::sleep(state.grace) => {
                let _ = state.hand_back.send(true);
                close.await?;
            }
        }
        // Failures being recorded get a moment; the reconciler settles the
        // rest from Redis (or adds a job Redis removed as it failed it
        // again: it runs once more).
        let _ = tokio::time::timeout(SETTLE_TIME, &mut state.events).await;
        state.events.abort();
        state.stall_watch.abort();
        Ok(())
    }
}

async fn start_worker<P: JobProcessor>(
    queue_name: &str,
    options: WorkerOptions,
    runner: Arc<JobRunner<P>>,
) -> Result<Worker, ActorProcessingErr> {
    let process = move |job: Job, _cancel| {
        let runner = runner.clone();
        async move { runner.process(job).await }
    };
    Ok(Worker::with_options(queue_name, process, options).await?)
}

/// The BullMQ worker's options: `concurrency` jobs at once, locks of
/// `JOB_LOCK_MS`, per-minute metrics, and no stalled-jobs check of the
/// crate's own: [`crate::queue::stalls`] runs BullMQ's on the same
/// schedule and reads its answer.
pub fn worker_options(settings: &QueueSettings, concurrency: usize) -> WorkerOptions {
    let lock = settings.lock.as_millis() as u64;
    WorkerOptions {
        connection: crate::queue::worker_connection(settings),
        prefix: settings.prefix.clone(),
        name: Some(settings.worker_name()),
        concurrency,
        lock_duration: lock,
        stalled_interval: lock,
        skip_stalled_check: true,
        // Per-minute completed/failed counts for `/metrics` and Bull Board,
        // kept for two weeks (one list entry a minute).
        metrics: Some(bullmq::MetricsOptions {
            max_data_points: 2 * 7 * 24 * 60,
        }),
        ..WorkerOptions::default()
    }
}

/// Runs one BullMQ job through the pipeline: its data in, its progress
/// forwarded to the job, its outcome translated for BullMQ.
struct JobRunner<P> {
    pipeline: Arc<P>,
    db: Db,
    queue: QueueHandle,
    /// Becomes true when a stopping process's grace is over.
    handed_back: watch::Receiver<bool>,
    /// This process's BullMQ worker name, for the consumer spans.
    worker_name: String,
    /// When PostgreSQL last answered the check before a job.
    database_checked: std::sync::Mutex<Option<Instant>>,
    /// Jobs this process is failing for good, for the failed event.
    final_failures: FinalFailures,
}

/// The jobs whose last attempt this process has failed for good and whose
/// failed event has not been read yet, with the receipt's run each was.
/// The event records the failure on the receipt once Redis has it; this
/// tells it the run when BullMQ removed the job as it failed it
/// (`removeOnFail`), so Redis cannot.
#[derive(Clone, Default)]
struct FinalFailures(Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>);

impl FinalFailures {
    fn insert(&self, job_id: &str, run: u32) {
        if let Ok(mut jobs) = self.0.lock() {
            jobs.insert(job_id.to_string(), run);
        }
    }

    fn take(&self, job_id: &str) -> Option<u32> {
        self.0.lock().ok()?.remove(job_id)
    }
}

/// How often a running job checks whether a client cancelled it.
const CANCEL_POLL: Duration = Duration::from_millis(250);
/// How long a cancel waits for a save under way to answer.
const SAVE_PATIENCE: Duration = Duration::from_secs(30);

impl<P: JobProcessor> JobRunner<P> {
    async fn process(&self, mut job: Job) -> Result<Value, bullmq::Error> {
        let started = Instant::now();
        let attempt = attempt_of(&job)?;
        let span = self.consumer_span(&attempt).await;
        if attempt.attempt == 1 {
            record_queue_wait(&job);
        }
        let outcome = async {
            let (progress, reports) = mpsc::unbounded_channel();
            let run = async {
                self.wait_for_database().await;
                let pipeline = self.pipeline.run(&attempt, progress);
                tokio::pin!(pipeline);
                // The pipeline first: an attempt that answers on its first
                // poll never starts the cancellation poll's timer.
                tokio::select! {
                    biased;
                    outcome = &mut pipeline => outcome,
                    () = self.cancel_requested(&attempt.job_id) => {
                        // A save under way finishes: its transaction decides
                        // (within SAVE_PATIENCE: a save that hangs is cut).
                        let saving = attempt.saving.load(std::sync::atomic::Ordering::Acquire);
                        match saving {
                            true => tokio::time::timeout(SAVE_PATIENCE, pipeline)
                                .await
                                .unwrap_or_else(|_| Err(JobError::cancelled())),
                            false => Err(JobError::cancelled()),
                        }
                    }
                }
            };
            let grace_over = async {
                let mut handed_back = self.handed_back.clone();
                let _ = handed_back.wait_for(|over| *over).await;
            };
            tokio::select! {
                biased;
                outcome = forward_progress(&mut job, run, reports) => Some(outcome),
                () = grace_over => None,
            }
        }
        .instrument(span.clone())
        .await;
        let Some(outcome) = outcome else {
            // Boxed here, where it runs, as are the other rare steps below:
            // inline, each would size every job's future (the crate moves
            // it and keeps it for the job's life) for a path that runs once
            // in a shutdown.
            return Box::pin(self.hand_back(&attempt.job_id)).await;
        };
        let outcome = match outcome {
            Err(error) if error.is_permanent() || attempt.is_last() => {
                Err(Box::pin(self.failing_for_good(&attempt, error)).await)
            }
            other => other,
        };
        record_attempt(&span, &attempt, &outcome, started);
        match outcome {
            // No separate "progress 100" write: a completed job reads as
            // 100 from its state (`queue::queue_job`), which saves one
            // round trip to Redis per job.
            Ok(result) => Ok(serde_json::to_value(result)?),
            Err(JobError::Permanent { reason, .. }) => Err(bullmq::Error::Unrecoverable(reason)),
            Err(JobError::Retry { reason, .. }) => Err(bullmq::Error::ProcessingError(reason)),
        }
    }

    /// The attempt failed and BullMQ will fail the job for good: its
    /// failed event is to record it on the receipt, on this run, or as a
    /// client's cancel that came meanwhile ([`settle_failure`]).
    async fn failing_for_good(&self, attempt: &JobAttempt, error: JobError) -> JobError {
        self.final_failures
            .insert(&attempt.job_id, attempt.data.run);
        #[cfg(feature = "fault-injection")]
        hold_final_failure(&attempt.job_id).await;
        error
    }

    /// The CONSUMER span of this attempt, a child of the producer's span:
    /// ours from the job data, or a Node producer's from BullMQ's `tm`.
    async fn consumer_span(&self, attempt: &JobAttempt) -> tracing::Span {
        let span = spans::process(
            self.queue.span_names(),
            &attempt.job_id,
            attempt.attempt,
            &self.worker_name,
            attempt.data.receipt_id,
        );
        let ours = &attempt.data.trace_context;
        let raw_options = async || self.queue.raw_options(&attempt.job_id).await.ok().flatten();
        if let Some(parent) = propagation::job_parent(ours, raw_options).await {
            // Only fails when the span is filtered out: nothing to link then.
            let _ = span.set_parent(parent);
        }
        span
    }

    /// The process is stopping and the grace is over: BullMQ puts the job
    /// back in `waiting` (or `prioritized`) when the processor answers
    /// `RateLimited`, without counting an attempt; its row says `queued`
    /// again. The OCR read, if one is under way, is left to finish on its
    /// thread and thrown away. The row's write may take [`ROW_PATIENCE`]
    /// at most: the job must be back before the process's time is up (a
    /// row left `processing` is set again when the job next starts).
    async fn hand_back(&self, job_id: &str) -> Result<Value, bullmq::Error> {
        const ROW_PATIENCE: Duration = Duration::from_secs(1);
        tracing::warn!(
            job_id,
            "shutting down: job handed back to the queue unfinished"
        );
        match tokio::time::timeout(ROW_PATIENCE, self.db.mark_queued_again(job_id)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(job_id, error = %e, "could not mark the handed-back receipt queued")
            }
            Err(_) => tracing::warn!(
                job_id,
                "PostgreSQL did not answer in time; the handed-back receipt still says processing"
            ),
        }
        Err(bullmq::Error::RateLimited { delay_ms: 0 })
    }

    /// Resolves once a client asks to cancel the job, from any process.
    /// The pipeline is dropped then: an OCR read under way finishes on its
    /// thread and its result is thrown away.
    /// The first look comes after one poll interval: a job cancelled
    /// before it started is stopped by its receipt's state when the
    /// pipeline begins, so a quick job costs no Redis round trip here.
    async fn cancel_requested(&self, job_id: &str) {
        tokio::time::sleep(CANCEL_POLL).await;
        // Boxed: only a job still running after one poll interval gets here.
        Box::pin(self.poll_cancel_requests(job_id)).await
    }

    async fn poll_cancel_requests(&self, job_id: &str) {
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
    /// A check that succeeded within [`DATABASE_CHECK_LASTS`] stands for
    /// this job too (it saves two PostgreSQL round trips per job on a busy
    /// worker); a job that meets an outage after it fails its attempt with
    /// a database error and is retried, as before.
    async fn wait_for_database(&self) {
        let checked = self.database_checked.lock().ok().and_then(|at| *at);
        if checked.is_some_and(|at| at.elapsed() < DATABASE_CHECK_LASTS) {
            return;
        }
        // Boxed: on a busy worker a check is due about once a second.
        Box::pin(self.check_database()).await;
    }

    async fn check_database(&self) {
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
        if let Ok(mut checked) = self.database_checked.lock() {
            *checked = Some(Instant::now());
        }
    }
}

/// Test-only: OCR_INJECT_FINAL_FAILURE_HOLD_MS holds a job this process
/// has failed for good this long before BullMQ is told, as a process
/// about to die there would: nothing may say the receipt failed yet.
#[cfg(feature = "fault-injection")]
async fn hold_final_failure(job_id: &str) {
    static HOLD: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hold = crate::pipeline::injected_ms(&HOLD, "OCR_INJECT_FINAL_FAILURE_HOLD_MS");
    if hold > 0 {
        tracing::warn!(job_id, "fault injection: holding a final failure");
        tokio::time::sleep(Duration::from_millis(hold)).await;
    }
}

/// How long a job waited from when it was due (its upload, plus any delay
/// asked for) to the start of its first attempt.
fn record_queue_wait(job: &Job) {
    let due_ms = job.timestamp().saturating_add(job.delay());
    let now_ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let waited = now_ms.saturating_sub(due_ms) as f64 / 1000.0;
    metrics().queue_wait.observe(waited);
}

/// Count the attempt's outcome and time; a failure also marks its span.
fn record_attempt(
    span: &tracing::Span,
    attempt: &JobAttempt,
    outcome: &Result<ReceiptResult, JobError>,
    started: Instant,
) {
    let metrics = metrics();
    let label = match outcome {
        Ok(_) => "completed",
        Err(e) if e.class() == FailureClass::Cancelled => "cancelled",
        Err(e) if e.is_permanent() || attempt.is_last() => "failed",
        Err(_) => "retried",
    };
    metrics.jobs_processed.with_label_values(&[label]).inc();
    let elapsed = started.elapsed().as_secs_f64();
    let duration_label = if label == "retried" { "failed" } else { label };
    metrics
        .job_duration
        .with_label_values(&[duration_label])
        .observe(elapsed);
    if let Err(error) = outcome {
        let class = error.class().as_str();
        if label != "cancelled" {
            let last = if label == "failed" { "true" } else { "false" };
            metrics.job_failures.with_label_values(&[class, last]).inc();
        }
        spans::record_error(span, class, error.reason());
    }
}

/// The attempt a BullMQ job stands for; data we cannot read fails it for good.
fn attempt_of(job: &Job) -> Result<JobAttempt, bullmq::Error> {
    // Read in place: the crate hands out the data by reference.
    let data = ReceiptJobData::deserialize(job.data()).map_err(|e| {
        bullmq::Error::Unrecoverable(format!(
            "job data must be {{receiptId, blobKey, contentType}}: {e}"
        ))
    })?;
    Ok(JobAttempt {
        job_id: job.id().to_string(),
        data,
        attempt: job.attempts_made() + 1,
        max_attempts: job.opts().attempts.unwrap_or(1),
        saving: Default::default(),
    })
}

/// Await `run` while copying its progress reports to the job.
async fn forward_progress<T>(
    job: &mut Job,
    run: impl Future<Output = T>,
    mut progress: mpsc::UnboundedReceiver<u8>,
) -> T {
    let report = async |job: &mut Job, percent: u8| {
        // Progress is advisory: a failed update must not fail the job.
        // Boxed: a job that reports none (answered at once, or failed
        // early) does not carry the update's future; one that reports
        // spends a Redis round trip on each, beside which this is nothing.
        let update = job.update_progress(JobProgress::Number(f64::from(percent)));
        let _ = Box::pin(update).await;
    };
    tokio::pin!(run);
    let outcome = loop {
        // The run first: a finished run's last reports are still
        // forwarded below, and a run that answers at once never looks at
        // the channel.
        tokio::select! {
            biased;
            outcome = &mut run => break outcome,
            Some(percent) = progress.recv() => report(job, percent).await,
        }
    };
    // Reports sent just before the answer may still be queued.
    while let Ok(percent) = progress.try_recv() {
        report(job, percent).await;
    }
    outcome
}

/// Read the worker's events until it closes; then let the failures being
/// recorded finish (the actor waits [`SETTLE_TIME`] at most).
fn drain_events<P: JobProcessor>(
    worker: Arc<Worker>,
    queue: QueueHandle,
    db: Db,
    pipeline: Arc<P>,
    final_failures: FinalFailures,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut settling = tokio::task::JoinSet::new();
        while let Some(event) = worker.next_event().await {
            match event {
                WorkerEvent::Failed { job_id, error } => {
                    let ours = final_failures.take(&job_id);
                    // May wait for Redis or PostgreSQL: not in this loop.
                    let (queue, db, pipeline) = (queue.clone(), db.clone(), pipeline.clone());
                    settling.spawn(async move {
                        settle_failure(&queue, &db, pipeline.as_ref(), &job_id, &error, ours).await
                    });
                }
                WorkerEvent::Completed { job_id, .. } => pipeline.completed(&job_id),
                WorkerEvent::Error(error) => tracing::warn!(%error, "BullMQ worker error"),
                WorkerEvent::Closed => break,
                _ => {}
            }
            while settling.try_join_next().is_some() {}
        }
        while settling.join_next().await.is_some() {}
    })
}

/// What the worker's failed event calls for. BullMQ reports every failed
/// attempt, and also one it could not move (Redis down: the job stays
/// active and runs again once it stalls). Only a job now in the failed
/// set, or gone from Redis after this process failed it for good (`ours`),
/// has failed for good: recorded on its receipt, as a cancel if a client
/// asked for one as it failed. For a failure of ours, a lookup Redis does
/// not answer is tried again. A job gone that this process did not fail
/// itself (BullMQ failed it on fetching it, stalled too often, and removed
/// it: `KEEP_FAILED_COUNT=0`) is recorded if its receipt still says
/// `processing` (a client's retry puts it `queued` first).
async fn settle_failure<P: JobProcessor>(
    queue: &QueueHandle,
    db: &Db,
    pipeline: &P,
    job_id: &str,
    error: &str,
    ours: Option<u32>,
) {
    let mut pauses = record_pauses();
    let found = loop {
        match queue.lookup(job_id).await {
            Ok(found) => break found,
            Err(_) if ours.is_some() && pauses.next_fits() => pauses.sleep().await,
            Err(e) => {
                tracing::warn!(job_id, error = %e, "could not look up a failed job; the reconciler will settle its receipt");
                return;
            }
        }
    };
    match (found, ours) {
        // Another run of the job than the one that failed (a client retried
        // it meanwhile, and the new run failed too): its own event says so.
        (Some(job), Some(run)) if job.run != run => {}
        // An earlier attempt's event, read after the last one failed.
        (Some(job), None)
            if job.state == JobState::Failed && job.failed_reason.as_deref() != Some(error) => {}
        (Some(job), _) if job.state == JobState::Failed => {
            // What BullMQ stored: the event may be an earlier attempt's.
            let error = job.failed_reason.as_deref().unwrap_or(error);
            let reason = cancelled_as_it_failed(queue, job_id, error).await;
            pipeline.job_failed(job_id, reason, job.run).await
        }
        (None, Some(run)) => pipeline.job_failed(job_id, error, run).await,
        (None, None) => {
            let processing = crate::job::ReceiptStatus::Processing.as_str();
            if let Ok(Some(status)) = db.status_of_job(job_id).await
                && status == processing
            {
                pipeline.job_failed(job_id, error, LATEST_RUN).await
            }
        }
        // A job this process failed for good found not failed is another
        // one under its id (a retry): not told of the old reason.
        (Some(_), None) => {
            if let Err(e) = queue.record_failed_attempt(job_id, error).await {
                tracing::warn!(job_id, error = %e, "could not keep the failed attempt's reason");
            }
        }
        _ => {}
    }
}

/// The reason to record for a job BullMQ has failed for good: a client's
/// cancel that came as its last attempt failed (the job still active, the
/// cancel answered 200 and marked the receipt cancelled) wins, and the
/// job's reason in Redis says so too. (Until then, and should this fail,
/// the job reads cancelled from its receipt: `ReceiptService::job_status`.)
async fn cancelled_as_it_failed<'a>(queue: &QueueHandle, job_id: &str, error: &'a str) -> &'a str {
    if error == CANCELLED_REASON || !matches!(queue.fail_as_cancelled(job_id).await, Ok(true)) {
        return error;
    }
    tracing::info!(job_id, "cancelled by a client as it failed");
    CANCELLED_REASON
}
