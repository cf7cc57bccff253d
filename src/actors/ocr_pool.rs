//! The idle OCR workers, and the BullMQ processor that lends one to each job.
//!
//! A job borrows a worker for its whole read. A worker that dies while
//! reading is not given back: the supervisor starts a fresh one and adds it
//! here, so a panic costs the job one attempt and never shrinks the pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bullmq::{Job, JobProgress};
use ractor::rpc::CallResult;
use ractor::{ActorRef, ActorStatus};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tracing::Instrument;

use super::ocr_worker::{OcrMessage, ReadRequest};
use super::{JobError, OcrJobData};
use crate::jobs::ReceiptSummary;
use crate::store::Db;

/// Idle workers; the semaphore counts them so a job waits for one.
pub struct OcrPool {
    idle: Mutex<Vec<ActorRef<OcrMessage>>>,
    available: Semaphore,
}

impl OcrPool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(Vec::new()),
            available: Semaphore::new(0),
        })
    }

    /// Add a worker (new or done with its job).
    pub async fn give_back(&self, worker: ActorRef<OcrMessage>) {
        self.idle.lock().await.push(worker);
        self.available.add_permits(1);
    }

    /// Wait for a live idle worker. Workers that died while idle are dropped.
    async fn borrow(&self) -> ActorRef<OcrMessage> {
        loop {
            // The semaphore is never closed, so acquiring cannot fail.
            self.available
                .acquire()
                .await
                .expect("pool semaphore open")
                .forget();
            // One permit per pushed worker: the list cannot be empty here.
            let worker = self
                .idle
                .lock()
                .await
                .pop()
                .expect("a permit means an idle worker");
            if worker.get_status() == ActorStatus::Running {
                return worker;
            }
        }
    }
}

/// Runs one BullMQ job: borrow a worker, forward its progress to the job,
/// and translate its outcome into what BullMQ should do next.
pub struct JobProcessor {
    pub pool: Arc<OcrPool>,
    pub db: Db,
    /// JOB_TIMEOUT_MS: the longest one read may take.
    pub read_timeout: Duration,
}

/// How long a job waits for PostgreSQL to come back before trying anyway.
const DATABASE_PATIENCE: Duration = Duration::from_secs(600);

const CRASHED_FINAL: &str = "the OCR worker crashed while reading this receipt on its last attempt";
const CRASHED: &str = "the OCR worker crashed while reading this receipt; \
                       it has been restarted and the job will be retried";

impl JobProcessor {
    pub async fn process(&self, mut job: Job) -> Result<Value, bullmq::Error> {
        let data: OcrJobData = serde_json::from_value(job.data().clone()).map_err(|e| {
            bullmq::Error::Unrecoverable(format!(
                "job data must be {{receiptId, blobKey, contentType}}: {e}"
            ))
        })?;
        let is_last_attempt = job.attempts_made() + 1 >= job.opts().attempts.unwrap_or(1);
        let span = tracing::info_span!(
            "process_receipt",
            job_id = job.id(),
            receipt_id = %data.receipt_id,
            attempt = job.attempts_made() + 1,
        );
        crate::telemetry::continue_trace(&span, &data.trace_context);
        async move {
            self.wait_for_database().await;
            let outcome = self
                .read_on_worker(&mut job, data.clone(), is_last_attempt)
                .await;
            match outcome {
                Ok(summary) => {
                    mark_saved(&mut job).await;
                    Ok(serde_json::to_value(summary)?)
                }
                Err(error) => {
                    tracing::warn!(%error, "reading the receipt failed");
                    Err(self.failed(job.id(), error, is_last_attempt).await)
                }
            }
        }
        .instrument(span)
        .await
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

    async fn read_on_worker(
        &self,
        job: &mut Job,
        data: OcrJobData,
        is_last_attempt: bool,
    ) -> Result<ReceiptSummary, JobError> {
        let worker = self.pool.borrow().await;
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let request = ReadRequest {
            job_id: job.id().to_string(),
            data,
            progress: progress_tx,
            span: tracing::Span::current(),
        };
        let call = worker.call(
            |reply| OcrMessage::Read(request, reply),
            Some(self.read_timeout),
        );
        let reply = forward_progress(job, call, progress_rx).await;
        match reply {
            Ok(CallResult::Success(outcome)) => {
                self.pool.give_back(worker).await;
                outcome
            }
            Ok(CallResult::Timeout) => {
                // Tesseract cannot be interrupted: retire the worker (the
                // supervisor starts a fresh one) and give the image up.
                worker.kill();
                Err(JobError::Permanent(format!(
                    "reading the image took longer than {} ms (JOB_TIMEOUT_MS); it was given up",
                    self.read_timeout.as_millis()
                )))
            }
            // The worker died mid-read (a panic): it is not given back.
            _ if is_last_attempt => Err(JobError::Transient(CRASHED_FINAL.to_string())),
            _ => Err(JobError::Transient(CRASHED.to_string())),
        }
    }

    /// Record a failure: on the receipt row when it is final, and as the
    /// BullMQ error that retries (or not).
    async fn failed(&self, job_id: &str, error: JobError, is_last_attempt: bool) -> bullmq::Error {
        let permanent = matches!(error, JobError::Permanent(_));
        if (permanent || is_last_attempt)
            && let Err(e) = self.db.mark_job_failed(job_id, &error.to_string()).await
        {
            tracing::warn!(job_id, error = %e, "could not mark the receipt failed");
        }
        match error {
            JobError::Permanent(reason) => bullmq::Error::Unrecoverable(reason),
            JobError::Transient(reason) => bullmq::Error::ProcessingError(reason),
        }
    }
}

/// Progress 100: the result is saved. Set here, after the worker's reply,
/// rather than reported through the worker's progress channel, so a
/// completed job always shows 100; retried because clients wait for it.
async fn mark_saved(job: &mut Job) {
    for _ in 0..3 {
        match job.update_progress(JobProgress::Number(100.0)).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "could not set progress 100; retrying"),
        }
    }
}

/// Await the worker's reply while copying its progress reports to the job.
async fn forward_progress<T>(
    job: &mut Job,
    call: impl Future<Output = T>,
    mut progress: mpsc::UnboundedReceiver<u8>,
) -> T {
    let report = async |job: &mut Job, percent: u8| {
        // Progress is advisory: a failed update must not fail the job.
        let _ = job
            .update_progress(JobProgress::Number(f64::from(percent)))
            .await;
    };
    tokio::pin!(call);
    let reply = loop {
        tokio::select! {
            Some(percent) = progress.recv() => report(job, percent).await,
            reply = &mut call => break reply,
        }
    };
    // Reports sent just before the reply may still be queued.
    while let Ok(percent) = progress.try_recv() {
        report(job, percent).await;
    }
    reply
}
