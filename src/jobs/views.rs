//! The shapes clients see, shared by REST (poem-openapi) and GraphQL, and
//! built here only: from a queue job, or from a stored receipt through its
//! one conversion to a [`ReceiptResult`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ServiceError;
use crate::job::{CANCELLED_REASON, JobState, ReceiptResult, ReceiptStatus};
use crate::queue::QueueJob;
use crate::store::models::StoredReceipt;

mod listing;
mod queue;
pub use listing::{ReceiptPage, ReceiptSummary};
pub use queue::{JobCountsView, QueueView, RateLimitView, WorkerView};

/// A job as clients poll it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct JobStatusView {
    pub id: String,
    pub state: JobState,
    /// 0–100.
    pub progress: u32,
    /// Null until the job has completed.
    #[oai(nullable)]
    pub result: Option<ReceiptResult>,
    #[oai(nullable)]
    pub failed_reason: Option<String>,
    /// Attempts that have ended; a failed one while a retry is pending
    /// leaves its reason in `failedReason`.
    pub attempts_made: u32,
    /// 0 when the job has none.
    pub priority: u32,
    /// When a delayed job is due to run.
    #[oai(nullable)]
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why a waiting job is not starting when the queue holds it, e.g.
    /// `queue paused` or `rate limited for another 12 s`.
    #[oai(nullable)]
    pub waiting_reason: Option<String>,
    /// When the job was added (the receipt row's time once Redis has
    /// trimmed the job).
    #[oai(nullable)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its latest attempt started.
    #[oai(nullable)]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it completed, failed or was cancelled.
    #[oai(nullable)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The worker that ran its latest attempt (WORKER_NAME, by default
    /// `receipt-ocr-<host>-<pid>`).
    #[oai(nullable)]
    pub worker: Option<String>,
}

impl JobStatusView {
    pub(crate) fn from_queue(job: &QueueJob) -> Self {
        // A job cancelled while it ran ends failed in BullMQ, with our reason.
        let cancelled = job.failed_reason.as_deref() == Some(CANCELLED_REASON);
        Self {
            id: job.id.clone(),
            state: match job.state {
                JobState::Failed if cancelled => JobState::Cancelled,
                state => state,
            },
            progress: u32::from(job.progress),
            result: job.result.clone(),
            // A failed attempt's reason is kept on the job for its retry;
            // once the job has completed it no longer describes it.
            failed_reason: job
                .failed_reason
                .clone()
                .filter(|_| job.state != JobState::Completed),
            attempts_made: job.attempts_made,
            priority: job.priority,
            run_at: job.run_at,
            waiting_reason: None,
            created_at: job.added_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            worker: job.worker.clone(),
        }
    }

    /// The job as a client's cancel ended it (its receipt says so).
    pub(crate) fn cancelled(&mut self) {
        self.state = JobState::Cancelled;
        self.failed_reason = Some(CANCELLED_REASON.to_string());
    }

    /// After Redis has trimmed the job, the receipt row still answers.
    pub(crate) fn from_receipt(stored: &StoredReceipt) -> Result<Self, ServiceError> {
        let (state, progress) = match stored.status()? {
            ReceiptStatus::Completed => (JobState::Completed, 100),
            ReceiptStatus::Failed => (JobState::Failed, 100),
            ReceiptStatus::Cancelled => (JobState::Cancelled, 0),
            // Queued or processing in the row but absent from Redis: the
            // queue lost track of it (flushed Redis?).
            ReceiptStatus::Queued | ReceiptStatus::Processing => (JobState::Unknown, 0),
        };
        let result = match state {
            JobState::Completed => Some(stored.result()?),
            _ => None,
        };
        Ok(Self {
            id: stored.row.job_id.clone(),
            state,
            progress,
            result,
            failed_reason: stored.row.failed_reason.clone(),
            attempts_made: 0,
            priority: 0,
            run_at: None,
            waiting_reason: None,
            created_at: Some(stored.row.created_at),
            started_at: None,
            finished_at: (state != JobState::Unknown)
                .then(|| stored.row.cancelled_at.unwrap_or(stored.row.updated_at)),
            worker: None,
        })
    }
}

/// A stored receipt: its row's state and, flattened in, what was read
/// (`receiptId` repeats `id`).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ReceiptView {
    pub id: Uuid,
    #[oai(nullable)]
    pub job_id: Option<String>,
    /// `queued`, `processing`, `completed`, `failed` or `cancelled`.
    #[oai(nullable)]
    pub status: Option<String>,
    #[oai(nullable)]
    pub failed_reason: Option<String>,
    /// The text OCR (or a PDF's text layer) gave, as the parser read it.
    #[oai(nullable)]
    pub raw_text: Option<String>,
    /// The upload's media type; `GET /api/receipt/{id}/image` serves it.
    #[oai(nullable)]
    pub content_type: Option<String>,
    #[oai(nullable)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When IMAGE_KEEP_DAYS removed the uploaded file (its fields stay);
    /// null while it is kept.
    #[oai(nullable)]
    #[serde(default)]
    pub image_removed_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(flatten)]
    #[oai(flatten)]
    #[graphql(flatten)]
    pub read: ReceiptResult,
}

impl ReceiptView {
    pub(crate) fn from_stored(stored: &StoredReceipt) -> Result<Self, ServiceError> {
        Ok(Self {
            id: stored.row.id,
            job_id: Some(stored.row.job_id.clone()),
            status: Some(stored.status()?.to_string()),
            failed_reason: stored.row.failed_reason.clone(),
            raw_text: stored.row.raw_text.clone(),
            content_type: Some(stored.row.content_type.clone()),
            created_at: Some(stored.row.created_at),
            image_removed_at: stored.row.image_removed_at,
            read: stored.result()?,
        })
    }

    fn placeholder(id: Uuid, job_id: &str) -> Self {
        Self {
            id,
            job_id: Some(job_id.to_string()),
            status: Some(ReceiptStatus::Queued.to_string()),
            failed_reason: None,
            raw_text: None,
            content_type: None,
            created_at: None,
            image_removed_at: None,
            read: ReceiptResult {
                receipt_id: id,
                ..ReceiptResult::default()
            },
        }
    }
}

/// The answer to an accepted upload (the seed's shape).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UploadAccepted {
    pub job_id: String,
    pub receipt_id: Uuid,
    pub message: String,
    /// `processing`; for a duplicate, its receipt's status (`queued`,
    /// `processing` or `completed`).
    pub status: String,
    pub receipt: ReceiptView,
    /// `true` when the same bytes were uploaded within DEDUP_WINDOW: the
    /// job and receipt are that upload's. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(skip_serializing_if_is_none, nullable)]
    pub duplicate: Option<bool>,
}

impl UploadAccepted {
    pub(crate) fn new(job_id: String, receipt_id: Uuid) -> Self {
        Self {
            receipt: ReceiptView::placeholder(receipt_id, &job_id),
            job_id,
            receipt_id,
            message: "File uploaded successfully. OCR processing started in background."
                .to_string(),
            status: "processing".to_string(),
            duplicate: None,
        }
    }

    /// The answer for an upload of bytes already accepted as `job_id`,
    /// with that receipt as it stands now.
    pub(crate) fn duplicate_of(job_id: String, receipt: ReceiptView, status: &str) -> Self {
        Self {
            message: "The same file was uploaded recently (DEDUP_WINDOW): this is its job."
                .to_string(),
            status: status.to_string(),
            duplicate: Some(true),
            receipt_id: receipt.id,
            receipt,
            job_id,
        }
    }
}
