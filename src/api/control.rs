//! The REST endpoints for the queue as a whole (overview, pause, resume)
//! and for listing receipts; thin calls into [`crate::jobs::ReceiptService`].

use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};

use super::errors::{ListingError, QueueControlError};
use crate::jobs::{Caller, ListingQuery, QueueView, ReceiptPage, ReceiptService};

#[derive(Tags)]
enum Tag {
    /// The queue as a whole: counts, workers, pause and resume.
    Queue,
    /// Receipts already uploaded, newest first, with filters.
    Listing,
}

pub struct ControlApi {
    pub service: ReceiptService,
}

#[OpenApi]
impl ControlApi {
    /// Job counts per state (BullMQ's `getJobCounts`), whether the queue is
    /// paused, the global rate limit and when jobs may start again, and the
    /// connected workers.
    #[oai(path = "/api/queue", method = "get", tag = "Tag::Queue")]
    async fn queue(&self) -> Result<Json<QueueView>, QueueControlError> {
        Ok(Json(self.service.queue_overview().await?))
    }

    /// Pause the queue for every worker process: uploads are accepted and
    /// wait; running jobs finish; nothing starts until resumed. Idempotent.
    /// With named API keys, only an admin key may (403 otherwise).
    #[oai(path = "/api/queue/pause", method = "post", tag = "Tag::Queue")]
    async fn pause(&self, caller: Data<&Caller>) -> Result<Json<QueueView>, QueueControlError> {
        Ok(Json(self.service.pause_queue(&caller).await?))
    }

    /// Resume a paused queue. Idempotent. An admin key with named API keys.
    #[oai(path = "/api/queue/resume", method = "post", tag = "Tag::Queue")]
    async fn resume(&self, caller: Data<&Caller>) -> Result<Json<QueueView>, QueueControlError> {
        Ok(Json(self.service.resume_queue(&caller).await?))
    }

    /// Receipts newest first, a page at a time: pass the answer's
    /// `nextCursor` as `cursor` for the next page (stable while uploads
    /// arrive).
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/api/receipts", method = "get", tag = "Tag::Listing")]
    async fn receipts(
        &self,
        caller: Data<&Caller>,
        /// `queued`, `processing`, `completed`, `failed` or `cancelled`.
        status: Query<Option<String>>,
        /// Created at or after: RFC 3339 timestamp or date (start of day, UTC).
        from: Query<Option<String>>,
        /// Created before: RFC 3339 timestamp, or a date (that whole day included).
        to: Query<Option<String>>,
        /// Purchased on or after this date (YYYY-MM-DD).
        #[oai(name = "purchasedFrom")]
        purchased_from: Query<Option<String>>,
        /// Purchased on or before this date (YYYY-MM-DD).
        #[oai(name = "purchasedTo")]
        purchased_to: Query<Option<String>>,
        /// Store-name substring, case-insensitive.
        q: Query<Option<String>>,
        /// 1–100, default 20.
        limit: Query<Option<String>>,
        /// `nextCursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Json<ReceiptPage>, ListingError> {
        let query = ListingQuery {
            status: status.0,
            from: from.0,
            to: to.0,
            purchased_from: purchased_from.0,
            purchased_to: purchased_to.0,
            q: q.0,
            limit: limit.0,
            cursor: cursor.0,
        };
        Ok(Json(self.service.list_receipts(&caller, &query).await?))
    }
}
