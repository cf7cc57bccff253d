//! A job's webhook deliveries as clients see them, every attempt included,
//! and sending them again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Caller, ReceiptService, ServiceError};
use crate::job::is_plausible_job_id;
use crate::store::redact_url;
use crate::store::webhooks::{AttemptRow, DeliveryState, StoredDelivery};
use crate::webhooks::target::origin_only;

/// Every webhook delivery of a job, oldest first.
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
pub struct DeliveryList {
    pub job_id: String,
    pub deliveries: Vec<DeliveryView>,
}

/// One final event of the job for one target.
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
pub struct DeliveryView {
    /// Also the `webhook-id` header of every attempt: receivers de-duplicate
    /// by it.
    pub id: Uuid,
    /// `receipt.completed`, `receipt.failed` or `receipt.cancelled`.
    pub event: String,
    /// The target (a password in it is hidden). A `WEBHOOK_URLS` target
    /// is shown to a key that does not see every receipt as its origin
    /// only (`https://hooks.example.com/…`): its path may hold a token.
    pub url: String,
    /// `pending` (queued or waiting for a retry), `delivered` (2xx),
    /// `failed` (attempts used up, or a target that may not be reached) or
    /// `gone` (the target answered 410).
    pub state: String,
    pub created_at: DateTime<Utc>,
    /// Oldest first.
    pub attempts: Vec<AttemptView>,
}

/// One attempt to send a delivery.
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
pub struct AttemptView {
    /// 1 for a run's first attempt (a redelivery starts a new run).
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    /// The target's HTTP status; null when it gave none.
    #[oai(nullable)]
    pub status_code: Option<u16>,
    pub duration_ms: u32,
    /// What went wrong, e.g. `HTTP 500`, a timeout, a refused address.
    #[oai(nullable)]
    pub error: Option<String>,
}

impl ReceiptService {
    pub async fn deliveries(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<DeliveryList, ServiceError> {
        let not_found = || ServiceError::JobNotFound(job_id.to_string());
        if !is_plausible_job_id(job_id) {
            return Err(not_found());
        }
        let receipt = self.db.receipt_by_job_id(job_id).await?;
        let receipt = receipt.ok_or_else(not_found)?;
        if !self.may_see_job(caller, job_id).await? {
            return Err(not_found());
        }
        // The upload's own callbackUrl is the caller's to see; the
        // deployment's WEBHOOK_URLS may carry tokens in their paths, which
        // only a key that sees everything is shown.
        let own = receipt.row.callback_url.as_deref();
        let shown = |url: &str| match caller.sees_all() || Some(url) == own {
            true => redact_url(url),
            false => stored_origin(url),
        };
        let stored = self.db.deliveries_of_job(job_id).await?;
        Ok(DeliveryList {
            job_id: job_id.to_string(),
            deliveries: (stored.iter())
                .map(|d| DeliveryView::from_stored(d, shown(&d.row.url)))
                .collect(),
        })
    }

    /// Send the job's latest event again to each of its targets, with fresh
    /// attempts (the same `webhook-id`, so a receiver that has it already
    /// can tell).
    pub async fn redeliver(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<DeliveryList, ServiceError> {
        let listed = self.deliveries(caller, job_id).await?;
        let Some(latest) = listed.deliveries.last().map(|d| d.created_at) else {
            return Err(ServiceError::Conflict {
                job_id: job_id.to_string(),
                state: self.job_status(caller, job_id).await?.state,
                allowed: "a job with webhook deliveries (it finished with a callbackUrl or \
                          WEBHOOK_URLS set) can be redelivered",
            });
        };
        // One still pending is being tried (or waits for its next try): a
        // second run beside it would send twice and race it for the row.
        // The reopening skips those too, so of two requests at once only
        // one reopens (and queues) each delivery.
        let settled: Vec<&DeliveryView> = (listed.deliveries.iter())
            .filter(|d| d.created_at == latest && d.state != DeliveryState::Pending.as_str())
            .collect();
        let ids: Vec<Uuid> = settled.iter().map(|d| d.id).collect();
        let reopened = if ids.is_empty() {
            Vec::new()
        } else {
            self.db.reopen_deliveries(&ids).await?
        };
        if reopened.is_empty() {
            return Err(ServiceError::Conflict {
                job_id: job_id.to_string(),
                state: self.job_status(caller, job_id).await?.state,
                allowed: "deliveries that are delivered, failed or gone can be sent again; \
                          its latest are still being tried (pending)",
            });
        }
        for (queued, id) in reopened.iter().enumerate() {
            if let Err(e) = self.queue.redeliver(*id).await {
                // Those not queued go back to how they were: left pending,
                // no run would send them, and a second request would be
                // told they are still being tried.
                let unqueued = (settled.iter())
                    .filter(|d| reopened[queued..].contains(&d.id))
                    .map(|d| (d.id, d.state.as_str()));
                let unqueued: Vec<(Uuid, &str)> = unqueued.collect();
                if let Err(db_error) = self.db.settle_again(&unqueued).await {
                    tracing::warn!(job_id, error = %db_error, "could not put back webhook deliveries a failed redelivery reopened");
                }
                return Err(e.into());
            }
        }
        self.deliveries(caller, job_id).await
    }
}

/// A stored target as [`origin_only`]: "(hidden)" if it does not parse.
fn stored_origin(raw: &str) -> String {
    url::Url::parse(raw).map_or_else(|_| "(hidden)".to_string(), |url| origin_only(&url))
}

impl DeliveryView {
    fn from_stored(stored: &StoredDelivery, url: String) -> Self {
        let row = &stored.row;
        Self {
            id: row.id,
            event: row.event.clone(),
            url,
            state: row.state.clone(),
            created_at: row.created_at,
            attempts: stored.attempts.iter().map(AttemptView::from_row).collect(),
        }
    }
}

impl AttemptView {
    fn from_row(row: &AttemptRow) -> Self {
        Self {
            attempt: row.attempt.max(0) as u32,
            attempted_at: row.attempted_at,
            status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
            duration_ms: row.duration_ms.max(0) as u32,
            error: row.error.clone(),
        }
    }
}
