//! One receipt job, top to bottom:
//!
//! ```text
//! download the image → mark the receipt processing → check it is whole
//!   → read it (OCR + parse) → save the reading → the job's result
//!                       any step fails ↓
//!          the error, for BullMQ to retry the job or fail it for good
//! ```
//!
//! A job BullMQ has failed for good is recorded on its receipt afterwards
//! ([`ReceiptPipeline::job_failed`], from the worker's failed event): not
//! before, or a process that died in between would leave a receipt said
//! failed (and announced) whose job then runs again, stalled, and may
//! complete.
//!
//! The pipeline knows nothing of BullMQ or actors: it is handed the
//! attempt, a place to keep receipts ([`ReceiptRecords`]) and something
//! that reads images ([`ReceiptReader`]), so it runs in unit tests with a
//! fake store and a fake reader.

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{Instrument, info_span};
use uuid::Uuid;

use crate::job::{FailureClass, JobError, ReceiptJobData, ReceiptResult};
use crate::ocr::{ReceiptReading, integrity};
use crate::pauses::Pauses;
use crate::store::models::NewReceipt;
use crate::store::{BlobError, BlobStore, DbError};
use crate::telemetry::spans::{JobStage, in_stage};

/// Progress percentages (0–100) of a job, in order.
pub type Progress = UnboundedSender<u8>;

/// Where receipts are kept. Every status change of a receipt row during
/// its job goes through here (in the service, `outcomes`, which also
/// announces the final ones).
pub trait ReceiptRecords: Send + Sync {
    /// Mark the receipt `processing` (creating its row if a producer
    /// wrote none); false when a client cancelled it.
    fn begin_processing(
        &self,
        receipt: &NewReceipt,
    ) -> impl Future<Output = Result<bool, DbError>> + Send;

    /// Save a reading; answer the result as stored, or `None` when a
    /// client cancelled the receipt meanwhile.
    fn save_reading(
        &self,
        receipt_id: Uuid,
        reading: &ReceiptReading,
    ) -> impl Future<Output = Result<Option<ReceiptResult>, DbError>> + Send;

    /// Mark the receipt of `job_id` failed, unless it already finished or
    /// is on another run than `run` (a client retried it since).
    fn mark_failed(
        &self,
        job_id: &str,
        reason: &str,
        run: u32,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
}

/// Reads a receipt image into text and fields, reporting progress.
pub trait ReceiptReader: Send + Sync {
    fn read(
        &self,
        image: Bytes,
        progress: Progress,
    ) -> impl Future<Output = Result<ReceiptReading, JobError>> + Send;
}

/// One attempt at one job.
#[derive(Debug)]
pub struct JobAttempt {
    pub job_id: String,
    pub data: ReceiptJobData,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Set while the reading is being saved (until the save answers, and
    /// on success until the attempt does): a cancel seen then lets the save
    /// finish, and its transaction decides (a row the cancel wrote first is
    /// not overwritten; one saved first stays completed, and so does its
    /// job).
    pub saving: std::sync::atomic::AtomicBool,
}

impl JobAttempt {
    pub fn is_last(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// How long a final failure waits for PostgreSQL to record it.
pub const RECORD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Pauses while a final failure cannot be recorded yet: doubling from
/// 250 ms to 30 s, for [`RECORD_PATIENCE`].
pub fn record_pauses() -> Pauses {
    let second = std::time::Duration::from_secs(1);
    Pauses::new(second / 4, 30 * second, RECORD_PATIENCE)
}

pub struct ReceiptPipeline<S, R> {
    records: S,
    blobs: BlobStore,
    reader: R,
}

impl<S: ReceiptRecords, R: ReceiptReader> ReceiptPipeline<S, R> {
    pub fn new(records: S, blobs: BlobStore, reader: R) -> Self {
        Self {
            records,
            blobs,
            reader,
        }
    }

    /// Where the images are.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Run one attempt. A failure that ends the job (permanent, or on the
    /// last attempt) is recorded once BullMQ has failed the job
    /// ([`job_failed`](Self::job_failed)).
    pub async fn run(
        &self,
        attempt: &JobAttempt,
        progress: Progress,
    ) -> Result<ReceiptResult, JobError> {
        let outcome = self.process(attempt, progress).await;
        if let Err(error) = &outcome {
            tracing::warn!(%error, job_id = attempt.job_id, "reading the receipt failed");
        }
        outcome
    }

    /// Record that BullMQ failed a job for good (its last attempt failed,
    /// or a permanent error, or too many stalls), on the receipt's `run`
    /// the job was. While PostgreSQL is down this keeps trying, with
    /// pauses that double up to 30 s, for [`RECORD_PATIENCE`]; past that,
    /// or if the process dies meanwhile, the reconciler records it from
    /// Redis (or, when Redis removed the job as it failed it, adds the job
    /// again: it runs once more).
    pub async fn job_failed(&self, job_id: &str, reason: &str, run: u32) {
        let mut pauses = record_pauses();
        loop {
            match self.records.mark_failed(job_id, reason, run).await {
                Ok(()) => return,
                Err(e) if !pauses.next_fits() => {
                    tracing::warn!(job_id, error = %e, "could not mark the receipt failed; the reconciler will");
                    return;
                }
                Err(e) => {
                    tracing::warn!(job_id, error = %e, "could not mark the receipt failed; trying again");
                    pauses.sleep().await;
                }
            }
        }
    }

    async fn process(
        &self,
        attempt: &JobAttempt,
        progress: Progress,
    ) -> Result<ReceiptResult, JobError> {
        let data = &attempt.data;
        let image = in_stage(JobStage::Download, self.download(attempt)).await?;
        integrity::check_whole(&image)
            .map_err(|e| JobError::permanent_from(FailureClass::BadImage, e))?;
        // Waiting for a free OCR worker, then its preprocess, recognise and
        // parse stages (timed on the worker's thread).
        let reading = self
            .reader
            .read(image, progress)
            .instrument(info_span!("ocr"))
            .await?;
        attempt
            .saving
            .store(true, std::sync::atomic::Ordering::Release);
        let saved = in_stage(
            JobStage::Save,
            self.records.save_reading(data.receipt_id, &reading),
        )
        .await
        .map_err(|e| {
            // Nothing was saved: a cancel may stop the attempt again.
            attempt
                .saving
                .store(false, std::sync::atomic::Ordering::Release);
            JobError::retry_from(FailureClass::Database, e)
        })?;
        #[cfg(feature = "fault-injection")]
        hold_after_saving().await;
        saved.ok_or_else(JobError::cancelled)
    }

    /// Fetch the image and mark the receipt processing.
    async fn download(&self, attempt: &JobAttempt) -> Result<Bytes, JobError> {
        let data = &attempt.data;
        let image = self.blobs.get(&data.blob_key).await.map_err(blob_error)?;
        let receipt = NewReceipt::queued(
            data.receipt_id,
            attempt.job_id.clone(),
            data.blob_key.clone(),
            data.content_type.clone(),
        )
        .with_content(&image)
        .processing(data.run);
        let proceed = self
            .records
            .begin_processing(&receipt)
            .await
            .map_err(|e| JobError::retry_from(FailureClass::Database, e))?;
        if !proceed {
            return Err(JobError::cancelled());
        }
        Ok(image)
    }
}

/// A missing image can never appear: permanent. Anything else: retry.
fn blob_error(e: BlobError) -> JobError {
    match e {
        BlobError::Missing(_) => JobError::permanent_from(FailureClass::ImageMissing, e),
        other => JobError::retry_from(FailureClass::BlobStore, other),
    }
}

#[cfg(test)]
mod tests;

/// Test-only: OCR_INJECT_SAVED_HOLD_MS holds every attempt this long after
/// its reading is committed, as a slow answer from PostgreSQL would: a
/// cancel arriving then must not undo a save that has happened.
#[cfg(feature = "fault-injection")]
async fn hold_after_saving() {
    static HOLD: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let hold = injected_ms(&HOLD, "OCR_INJECT_SAVED_HOLD_MS");
    if hold > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    }
}

/// Test-only: the milliseconds the variable `name` asks for (0 when
/// unset), read once into `cell`.
#[cfg(feature = "fault-injection")]
pub(crate) fn injected_ms(cell: &'static std::sync::OnceLock<u64>, name: &str) -> u64 {
    *cell.get_or_init(|| {
        std::env::var(name)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0)
    })
}
