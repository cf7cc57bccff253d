//! The one home of a receipt's final state. Every way a job ends passes
//! here: the pipeline's saved reading, a job BullMQ has failed for good
//! (the worker's failed event; a retry or the reconciler when that write
//! is late), a lost job the reconciler gives up, a client's cancel. Each writes the row's final status and the webhook deliveries it
//! raises in one transaction ([`crate::store::finish`]), then queues the
//! deliveries; one the queue missed (a crash, Redis down) is queued later
//! by the delivery worker's sweep.

use std::sync::Arc;

use uuid::Uuid;

use crate::job::{CANCELLED_REASON, ReceiptResult};
use crate::ocr::ReceiptReading;
use crate::pipeline::ReceiptRecords;
use crate::queue::{QueueHandle, QueueJob};
use crate::store::models::NewReceipt;
use crate::store::{Db, DbError, Notify, Unfinished};
use crate::webhooks::WebhookUrl;

/// The events-stream entry for a job cancelled by a client, for live
/// subscribers (BullMQ writes nothing when a waiting job is removed for
/// that reason).
pub const CANCELLED_EVENT: &str = "receipt-cancelled";

/// The events-stream entry for a failure recorded on a receipt after
/// BullMQ's own `failed` entry: a subscriber that read the job at that
/// entry, and found it gone from Redis (`removeOnFail`) with its row not
/// yet written, reads it again.
pub const FAILED_EVENT: &str = "receipt-failed";

/// The reason recorded for a job Redis failed without keeping one.
const UNKNOWN_FAILURE: &str = "the job failed without a recorded reason";

#[derive(Clone)]
pub struct ReceiptOutcomes {
    db: Db,
    queue: QueueHandle,
    /// WEBHOOK_URLS: told about every receipt.
    targets: Arc<[WebhookUrl]>,
}

impl ReceiptOutcomes {
    pub fn new(db: Db, queue: QueueHandle, targets: Vec<WebhookUrl>) -> Self {
        Self {
            db,
            queue,
            targets: targets.into(),
        }
    }

    /// The reading is saved: the receipt is completed. `None` when a
    /// client cancelled it meanwhile.
    pub async fn completed(
        &self,
        receipt_id: Uuid,
        reading: &ReceiptReading,
    ) -> Result<Option<ReceiptResult>, DbError> {
        let notify = Notify::Targets(&self.targets);
        let Some(saved) = self.db.save_reading(receipt_id, reading, notify).await? else {
            return Ok(None);
        };
        self.queue_deliveries(saved.deliveries).await;
        saved.value.result().map(Some)
    }

    /// The job has failed for good, for `reason`, on the receipt's `run`
    /// (a failure of a run a client has since retried changes nothing).
    pub async fn failed(&self, job_id: &str, reason: &str, run: u32) -> Result<(), DbError> {
        // A job a client's cancel stopped ends `cancelled`, whether the
        // worker's failed event or the cancelling process writes it first;
        // from `processing` only: a retry may have put it back to `queued`.
        if reason == CANCELLED_REASON {
            return self
                .cancel(job_id, Unfinished::Processing(run))
                .await
                .map(|_| ());
        }
        let notify = Notify::Targets(&self.targets);
        if let Some(failed) = self.db.mark_job_failed(job_id, reason, run, notify).await? {
            self.queue_deliveries(failed.deliveries).await;
            self.tell_subscribers(FAILED_EVENT, job_id).await;
        }
        Ok(())
    }

    /// BullMQ has failed `job` for good and its receipt was not told (the
    /// worker's write is late, PostgreSQL was down then, or the process
    /// died): record it from what Redis kept, on the run the job was.
    pub async fn failed_in_queue(&self, job: &QueueJob) -> Result<(), DbError> {
        match job.failed_reason.as_deref() {
            Some(CANCELLED_REASON) => {
                let cancelled = self.cancel(&job.id, Unfinished::AnyOnRun(job.run));
                cancelled.await.map(|_| ())
            }
            reason => {
                let reason = reason.unwrap_or(UNKNOWN_FAILURE);
                self.failed(&job.id, reason, job.run).await
            }
        }
    }

    /// A client cancelled the job; false when it had already finished.
    pub async fn cancelled(&self, job_id: &str) -> Result<bool, DbError> {
        self.cancel(job_id, Unfinished::Any).await
    }

    async fn cancel(&self, job_id: &str, from: Unfinished) -> Result<bool, DbError> {
        let notify = Notify::Targets(&self.targets);
        let cancelled = self.db.cancel_receipt_from(job_id, from, notify).await?;
        let Some(cancelled) = cancelled else {
            return Ok(false);
        };
        self.queue_deliveries(cancelled.deliveries).await;
        self.tell_subscribers(CANCELLED_EVENT, job_id).await;
        Ok(true)
    }

    /// Write `event` for `job_id` to the queue's events stream, which live
    /// subscribers read.
    async fn tell_subscribers(&self, event: &str, job_id: &str) {
        if let Err(e) = self.queue.publish_event(event, job_id).await {
            tracing::warn!(job_id, event, error = %e, "could not tell live subscribers");
        }
    }

    /// Queue committed deliveries. A failure here loses nothing: the
    /// delivery stays unqueued in PostgreSQL and the sweep queues it.
    pub async fn queue_deliveries(&self, ids: Vec<Uuid>) {
        let mut queued = Vec::with_capacity(ids.len());
        for id in ids {
            match self.queue.enqueue_delivery(id).await {
                Ok(()) => queued.push(id),
                Err(e) => {
                    tracing::warn!(delivery_id = %id, error = %e, "could not queue a webhook delivery; the sweep will")
                }
            }
        }
        if !queued.is_empty()
            && let Err(e) = self.db.mark_deliveries_queued(&queued).await
        {
            tracing::warn!(error = %e, "could not note queued webhook deliveries");
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn queue(&self) -> &QueueHandle {
        &self.queue
    }
}

/// The pipeline's receipt rows: its final states go through the outcomes.
impl ReceiptRecords for ReceiptOutcomes {
    async fn begin_processing(&self, receipt: &NewReceipt) -> Result<bool, DbError> {
        self.db.begin_processing(receipt).await
    }

    async fn save_reading(
        &self,
        receipt_id: Uuid,
        reading: &ReceiptReading,
    ) -> Result<Option<ReceiptResult>, DbError> {
        self.completed(receipt_id, reading).await
    }

    async fn mark_failed(&self, job_id: &str, reason: &str, run: u32) -> Result<(), DbError> {
        self.failed(job_id, reason, run).await
    }
}
