//! The service functions both APIs call: accept an upload, report a job,
//! fetch a receipt. REST and GraphQL only translate to and from these.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use crate::inputs::{InputError, InputSettings, UploadLimits};
use crate::job::{
    InvalidField, JobState, ReceiptJobData, Schedule, ScheduleRequest, is_plausible_job_id,
    new_job_id,
};
use crate::live::LiveEvents;
use crate::outcomes::ReceiptOutcomes;
use crate::pauses::Pauses;
use crate::queue::{QueueError, QueueHandle, QueueMetricsLease};
use crate::store::models::{NewReceipt, StoredReceipt};
use crate::store::{BlobError, BlobStore, Db, DbError};
use crate::telemetry::metrics::metrics;
use crate::webhooks::WebhookUrl;

mod access;
mod batch;
mod cancel;
mod control;
mod dedup;
mod deliveries;
mod image;
mod listing;
mod views;
mod watch;
pub use access::Caller;
pub use deliveries::{AttemptView, DeliveryList, DeliveryView};
pub use image::ReceiptImage;
pub use listing::ListingQuery;
pub use views::{
    JobCountsView, JobStatusView, QueueView, RateLimitView, ReceiptPage, ReceiptSummary,
    ReceiptView, UploadAccepted, WorkerView,
};
pub use watch::LiveUpdate;

/// What a client did wrong, or which dependency is down.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("No file uploaded: send the image as multipart/form-data field `file`.")]
    NoFile,
    #[error("The uploaded file is empty: send the receipt image's bytes in field `file`.")]
    EmptyFile,
    #[error(
        "The file is {size} bytes; the limit is {limit} bytes (MAX_UPLOAD_BYTES). Send a smaller or compressed image."
    )]
    TooLarge { size: usize, limit: usize },
    #[error(
        "The file is not an image we read. Send a JPEG, PNG, TIFF, WebP, BMP, GIF, PDF, HEIC or AVIF (checked by its content, not its name)."
    )]
    UnsupportedType,
    #[error("{}{}.", .0.to_string()[..1].to_uppercase(), &.0.to_string()[1..])]
    Document(#[source] InputError),
    #[error(
        "The request carries {count} files; the limit is {limit} (MAX_BATCH_FILES). Send them in several requests."
    )]
    TooManyFiles { count: usize, limit: usize },
    #[error(transparent)]
    InvalidField(#[from] InvalidField),
    #[error("No job with id `{}`. Use the jobId returned by POST /api/upload.", shown(.0))]
    JobNotFound(String),
    #[error("No receipt with id `{}`.", shown(.0))]
    ReceiptNotFound(String),
    #[error(
        "The file uploaded for receipt `{0}` is no longer in the blob store; its fields are still at GET /api/receipt/{0}."
    )]
    ImageMissing(Uuid),
    #[error(
        "The file uploaded for receipt `{0}` was removed on {1} (IMAGE_KEEP_DAYS); its fields are still at GET /api/receipt/{0}."
    )]
    ImageRemoved(Uuid, chrono::DateTime<chrono::Utc>),
    #[error("Job `{}` is {state}; only {allowed}.", shown(job_id))]
    Conflict {
        job_id: String,
        state: JobState,
        allowed: &'static str,
    },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("Bad parameter `{parameter}`: {message}.")]
    BadParameter {
        parameter: &'static str,
        message: String,
    },
    #[error(transparent)]
    Redis(#[from] QueueError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("The upload was interrupted while being stored; send it again.")]
    Interrupted(#[source] tokio::task::JoinError),
    #[error("{0}.")]
    Busy(&'static str),
}

impl ServiceError {
    /// A dependency that did not answer (asking again may work), not a
    /// mistake of the caller's or data we cannot read.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Redis(_) | Self::Blobs(_) => true,
            Self::Database(error) => !matches!(error, DbError::Corrupt(..) | DbError::Encode(_)),
            _ => false,
        }
    }

    fn from_input(error: InputError) -> Self {
        match error {
            InputError::Unsupported => ServiceError::UnsupportedType,
            other => ServiceError::Document(other),
        }
    }
}

/// The longest id an error message repeats.
const SHOWN_ID_CHARS: usize = 64;

/// A client's id as an error message repeats it: cut short, so a huge id
/// does not come back in full.
fn shown(id: &str) -> String {
    match id.char_indices().nth(SHOWN_ID_CHARS) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_string(),
    }
}

/// Everything the service functions need; cheap to clone.
#[derive(Clone)]
pub struct ReceiptService {
    pub queue: QueueHandle,
    pub db: Db,
    pub blobs: BlobStore,
    pub max_upload_bytes: usize,
    /// MAX_IMAGE_PIXELS, checked from the image's header at upload.
    pub max_image_pixels: u64,
    /// Whether this process exports the queue-wide metrics.
    pub queue_metrics: QueueMetricsLease,
    /// Where final states are written and announced (cancel).
    pub outcomes: ReceiptOutcomes,
    /// This process's reader of the queue's events (live updates).
    pub live: LiveEvents,
    /// WEBHOOK_ALLOW_PRIVATE: whether a `callbackUrl` may be a private address.
    pub allow_private_callbacks: bool,
    /// MAX_PDF_PAGES, checked with `pdfinfo` at upload.
    pub max_pdf_pages: usize,
    /// Batch size and the duplicate window.
    pub inputs: InputSettings,
    /// Turns for checking PDFs with `pdfinfo` (MAX_PDF_CHECKS at once).
    pub pdf_checks: Arc<Semaphore>,
}

/// How long a PDF upload waits for a turn to be checked.
const PDF_CHECK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

impl ReceiptService {
    /// Validate, store the image, write the placeholder row and queue the
    /// job. Any failure undoes the earlier steps: bad input changes nothing.
    pub async fn enqueue_receipt(
        &self,
        caller: &Caller,
        file: Option<Bytes>,
        schedule: &ScheduleRequest,
        callback_url: Option<&str>,
    ) -> Result<UploadAccepted, ServiceError> {
        let schedule = schedule.resolve(chrono::Utc::now())?;
        let callback = self.check_callback(callback_url).await?;
        self.enqueue_resolved(caller, file, schedule, callback.as_ref())
            .await
    }

    /// [`enqueue_receipt`](Self::enqueue_receipt) with its scheduling
    /// fields and `callbackUrl` already checked (once for a whole batch).
    async fn enqueue_resolved(
        &self,
        caller: &Caller,
        file: Option<Bytes>,
        schedule: Schedule,
        callback: Option<&WebhookUrl>,
    ) -> Result<UploadAccepted, ServiceError> {
        let bytes = file.ok_or(ServiceError::NoFile)?;
        if bytes.is_empty() {
            return Err(ServiceError::EmptyFile);
        }
        if bytes.len() > self.max_upload_bytes {
            return Err(ServiceError::TooLarge {
                size: bytes.len(),
                limit: self.max_upload_bytes,
            });
        }
        let kind = self.check_input(&bytes).await?;
        let receipt_id = Uuid::new_v4();
        let extension = kind.extension();
        let new = NewReceipt::queued(
            receipt_id,
            new_job_id(),
            format!("receipts/{receipt_id}.{extension}"),
            kind.mime_type().to_string(),
        )
        .with_content(&bytes)
        .with_callback(callback.map(|url| url.as_str().to_string()))
        .owned_by(caller.owner());
        if let Some(earlier) = self.earlier_upload(&new).await? {
            return Ok(earlier);
        }
        // In a task of its own: a client that disconnects mid-request must
        // not cancel the undo steps that keep a failed upload from leaving
        // a file or a row behind.
        let service = self.clone();
        let receipt = new.clone();
        let size = bytes.len();
        // The task stays in the request's span: the enqueue's PRODUCER span
        // is the request's child, and the job continues the same trace.
        let stored = tokio::spawn(
            async move { service.store_and_queue(&receipt, bytes, schedule).await }
                .instrument(tracing::Span::current()),
        );
        stored.await.map_err(ServiceError::Interrupted)??;
        metrics().upload_size.observe(size as f64);
        Ok(UploadAccepted::new(new.job_id, receipt_id))
    }

    /// What the upload is, refusing what cannot be read (a blocking check:
    /// a PDF is looked at with `pdfinfo`).
    async fn check_input(&self, bytes: &Bytes) -> Result<crate::inputs::InputKind, ServiceError> {
        let limits = UploadLimits {
            max_image_pixels: self.max_image_pixels,
            max_pdf_pages: self.max_pdf_pages,
        };
        // `pdfinfo` may take long on a crafted PDF: a few at a time, so a
        // flood of them cannot take every blocking thread and core.
        let turn = match crate::inputs::InputKind::sniff(bytes) {
            Some(crate::inputs::InputKind::Pdf) => Some(self.pdf_check_turn().await?),
            _ => None,
        };
        #[cfg(feature = "fault-injection")]
        let hold = std::time::Duration::from_millis(self.inputs.inject_pdf_check_hold_ms);
        let bytes = bytes.clone();
        let checked = tokio::task::spawn_blocking(move || {
            #[cfg(feature = "fault-injection")]
            if turn.is_some() {
                std::thread::sleep(hold);
            }
            let checked = crate::inputs::check_upload(&bytes, limits);
            drop(turn);
            checked
        });
        checked
            .await
            .map_err(ServiceError::Interrupted)?
            .map_err(ServiceError::from_input)
    }

    async fn pdf_check_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        let turn = self.pdf_checks.clone().acquire_owned();
        match tokio::time::timeout(PDF_CHECK_PATIENCE, turn).await {
            Ok(Ok(turn)) => Ok(turn),
            _ => Err(ServiceError::Busy(
                "PDF uploads are being checked as many at once as this server allows \
                 (MAX_PDF_CHECKS); send it again in a few seconds",
            )),
        }
    }

    async fn store_and_queue(
        &self,
        new: &NewReceipt,
        bytes: Bytes,
        schedule: Schedule,
    ) -> Result<(), ServiceError> {
        self.blobs.put(&new.blob_key, bytes).await?;
        if let Err(e) = self.db.insert_receipt(new).await {
            self.forget_blob(&new.blob_key).await;
            return Err(e.into());
        }
        let data = ReceiptJobData {
            receipt_id: new.id,
            blob_key: new.blob_key.clone(),
            content_type: new.content_type.clone(),
            trace_context: Default::default(),
            run: 0,
        };
        if let Err(e) = self.queue.enqueue(new.job_id.clone(), data, schedule).await {
            match self.db.delete_unshared_receipt(new.id).await {
                Ok(true) => self.take_back(new).await,
                // A duplicate upload was handed the job, which it saw in
                // Redis: the add landed after all, and the upload stands.
                Ok(false) => {
                    tracing::warn!(job_id = new.job_id, error = %e, "the add answered late but landed; a duplicate upload holds the job, so it is kept");
                    return Ok(());
                }
                Err(db_error) => {
                    tracing::warn!(error = %db_error, receipt_id = %new.id, "could not remove the placeholder row; trying again");
                    tokio::spawn(self.clone().undo_later(new.clone()));
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The placeholder row of an upload whose add failed is gone: remove
    /// its image, and its job should the add still land (a Redis that
    /// stalled past our deadline, then answered) once Redis answers.
    async fn take_back(&self, new: &NewReceipt) {
        self.forget_blob(&new.blob_key).await;
        tokio::spawn(self.clone().withdraw(new.job_id.clone(), new.id));
    }

    /// [`take_back`](Self::take_back) once the placeholder row could be
    /// removed (PostgreSQL failed the first time), unless a duplicate
    /// upload claimed it meanwhile: then the row, image and job stay
    /// (the reconciler adds the job again should the add have been lost).
    async fn undo_later(self, new: NewReceipt) {
        let mut pauses = withdraw_pauses();
        if let Some(true) = self.remove_placeholder(new.id, &mut pauses).await {
            self.take_back(&new).await;
        }
    }

    /// Remove an undone upload's row unless a duplicate upload claimed it
    /// (false), trying again within `pauses` while PostgreSQL fails
    /// (`None`: it never answered; the reconciler settles the row).
    async fn remove_placeholder(&self, receipt_id: Uuid, pauses: &mut Pauses) -> Option<bool> {
        loop {
            match self.db.delete_unshared_receipt(receipt_id).await {
                Ok(removed) => return Some(removed),
                Err(e) if !pauses.next_fits() => {
                    tracing::warn!(error = %e, %receipt_id, "could not remove the row of a refused upload");
                    return None;
                }
                Err(_) => pauses.sleep().await,
            }
        }
    }

    /// Make sure the job of an upload that was answered with an error does
    /// not exist: remove it once Redis answers (the removal is sent after
    /// the add, so an add that landed late is found), stopping it first if
    /// a worker already took it, then remove the row again in case that
    /// worker recreated it (else the reconciler would later fail, and
    /// announce, a receipt whose upload was refused). Gives up after
    /// [`WITHDRAW_PATIENCE`].
    async fn withdraw(self, job_id: String, receipt_id: Uuid) {
        let mut pauses = withdraw_pauses();
        loop {
            if let Ok(_removed) = self.queue.remove(&job_id).await
                && let Ok(None) = self.queue.lookup(&job_id).await
            {
                break;
            }
            // Still there: a worker holds it (stop it), or Redis is down.
            let _ = self.queue.request_cancel(&job_id).await;
            if !pauses.next_fits() {
                tracing::error!(
                    job_id,
                    "could not withdraw the job of a failed upload; it may run and fail (image missing)"
                );
                return;
            }
            pauses.sleep().await;
        }
        self.remove_placeholder(receipt_id, &mut pauses).await;
    }

    /// An upload's `callbackUrl`: an http(s) URL whose host is a public
    /// address (unless WEBHOOK_ALLOW_PRIVATE).
    async fn check_callback(&self, raw: Option<&str>) -> Result<Option<WebhookUrl>, InvalidField> {
        let Some(raw) = raw else { return Ok(None) };
        let refuse = |problem: String| InvalidField {
            field: "callbackUrl",
            problem,
        };
        let url = WebhookUrl::parse(raw).map_err(|e| refuse(format!("is refused: {e}")))?;
        url.check_addresses(self.allow_private_callbacks)
            .await
            .map_err(|e| refuse(format!("is refused: {e}")))?;
        Ok(Some(url))
    }

    async fn forget_blob(&self, key: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(error = %e, key, "could not remove the stored upload");
        }
    }

    /// A job's state: from Redis while it holds the job, then from the
    /// receipt row (which outlives Redis's retention, and Redis outages).
    pub async fn job_status(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<JobStatusView, ServiceError> {
        if !is_plausible_job_id(job_id) || !self.may_see_job(caller, job_id).await? {
            return Err(ServiceError::JobNotFound(job_id.to_string()));
        }
        let mut from_queue = self.queue.lookup(job_id).await;
        if let Ok(Some(job)) = &mut from_queue
            && job.state == JobState::Active
            && self.queue.cancel_requested(job_id).await?
        {
            // Cancelled by a client; its worker stops it at its next check.
            job.state = JobState::Cancelled;
        }
        if let Ok(Some(job)) = &from_queue {
            // A completed job whose return value we cannot read is answered
            // from its row below.
            if job.state != JobState::Completed || job.result.is_some() {
                let mut view = JobStatusView::from_queue(job);
                if view.state == JobState::Failed && self.row_says_cancelled(job_id).await {
                    view.cancelled();
                }
                return Ok(self.with_waiting_reason(view).await);
            }
        }
        let stored = self.db.receipt_by_job_id(job_id).await?;
        match (stored, from_queue) {
            // The row's answer is final, whatever Redis says or not.
            (Some(stored), _) if stored.is_finished()? => JobStatusView::from_receipt(&stored),
            // Still running and Redis cannot say how far: unavailable.
            (_, Err(redis_down)) => Err(redis_down.into()),
            (Some(stored), Ok(_)) => JobStatusView::from_receipt(&stored),
            (None, Ok(_)) => Err(ServiceError::JobNotFound(job_id.to_string())),
        }
    }

    /// Whether the receipt of a job Redis holds as failed says cancelled: a
    /// client's cancel came as its last attempt failed, and the failed
    /// event could not make the job's reason say so (Redis down, or the
    /// process died): the cancel, answered 200 and announced, stands.
    /// PostgreSQL down: Redis's answer stands.
    async fn row_says_cancelled(&self, job_id: &str) -> bool {
        let cancelled = crate::job::ReceiptStatus::Cancelled.as_str();
        match self.db.status_of_job(job_id).await {
            Ok(status) => status.as_deref() == Some(cancelled),
            Err(_) => false,
        }
    }

    /// Whether `caller` may see job `job_id`: its receipt is theirs or has
    /// no owner, or there is no receipt (a job from another producer).
    async fn may_see_job(&self, caller: &Caller, job_id: &str) -> Result<bool, ServiceError> {
        if caller.sees_all() {
            return Ok(true);
        }
        let owner = self.db.owner_of_job(job_id).await?;
        Ok(owner.is_none_or(|owner| caller.may_see(owner.as_deref())))
    }

    pub async fn receipt(&self, caller: &Caller, id: &str) -> Result<ReceiptView, ServiceError> {
        ReceiptView::from_stored(&self.visible_receipt(caller, id).await?)
    }

    /// Receipt `id`, when `caller` may see it; otherwise not found, so that
    /// another key's receipts cannot be told from missing ones.
    async fn visible_receipt(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<StoredReceipt, ServiceError> {
        let not_found = || ServiceError::ReceiptNotFound(id.to_string());
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        self.db
            .receipt_by_id(uuid)
            .await?
            .filter(|stored| caller.may_see(stored.row.owner.as_deref()))
            .ok_or_else(not_found)
    }

    /// This process's metrics in Prometheus's text format, and the
    /// queue-wide series when this process holds the export lease (left
    /// out while Redis does not answer).
    pub async fn metrics(&self) -> String {
        let mut text = metrics().render();
        if self.queue_metrics.is_held() {
            match self.queue.metrics().await {
                Ok(queue) => text.push_str(&queue),
                Err(e) => tracing::debug!(error = %e, "queue series left out of /metrics"),
            }
        }
        text
    }

    /// Ready when Redis and PostgreSQL answer and the blob store takes a
    /// write.
    pub async fn readiness(&self) -> Result<(), ServiceError> {
        self.queue.ping().await?;
        self.db.ping().await?;
        self.blobs.check_writable().await?;
        Ok(())
    }
}

/// How long a failed upload keeps trying to take back its job.
const WITHDRAW_PATIENCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Pauses between a refused upload's undo steps while Redis or PostgreSQL
/// fails: doubling from 250 ms to 10 s, for [`WITHDRAW_PATIENCE`].
fn withdraw_pauses() -> Pauses {
    let second = std::time::Duration::from_secs(1);
    Pauses::new(second / 4, 10 * second, WITHDRAW_PATIENCE)
}
