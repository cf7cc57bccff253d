//! GraphQL at `/graphql`: the seed's `jobStatus` query and `receipt(id)`,
//! the queue overview, the receipt listing and webhook deliveries, the
//! queue's mutations, and the live `jobStatus` subscription, resolved by
//! the same service functions as REST.

use async_graphql::{Context, Object, Schema, Subscription};
use futures::{Stream, StreamExt};

use super::errors::graphql_error;
use crate::jobs::{
    DeliveryList, JobStatusView, ListingQuery, QueueView, ReceiptPage, ReceiptService, ReceiptView,
};

pub type ReceiptSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The state, progress and result of an OCR job.
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let service = ctx.data::<ReceiptService>()?;
        service.job_status(&job_id).await.map_err(graphql_error)
    }

    /// A stored receipt by id.
    async fn receipt(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<ReceiptView> {
        let service = ctx.data::<ReceiptService>()?;
        service.receipt(&id).await.map_err(graphql_error)
    }

    /// The job's webhook deliveries, each with every attempt (as
    /// `GET /api/job/{jobId}/deliveries`).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<DeliveryList> {
        let service = ctx.data::<ReceiptService>()?;
        service.deliveries(&job_id).await.map_err(graphql_error)
    }

    /// Job counts per state, pause, the rate limit in force and the workers.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let service = ctx.data::<ReceiptService>()?;
        service.queue_overview().await.map_err(graphql_error)
    }

    /// Receipts newest first; pass `nextCursor` back as `cursor`. Dates and
    /// limits as in `GET /api/receipts`; a bad one is a `bad_request` error
    /// naming it.
    #[allow(clippy::too_many_arguments)]
    async fn receipts(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        from: Option<String>,
        to: Option<String>,
        purchased_from: Option<String>,
        purchased_to: Option<String>,
        q: Option<String>,
        limit: Option<i32>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ReceiptPage> {
        let service = ctx.data::<ReceiptService>()?;
        let query = ListingQuery {
            status,
            from,
            to,
            purchased_from,
            purchased_to,
            q,
            limit: limit.map(|n| n.to_string()),
            cursor,
        };
        service.list_receipts(&query).await.map_err(graphql_error)
    }
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Pause the queue for every worker process; uploads still wait in it.
    async fn pause_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let service = ctx.data::<ReceiptService>()?;
        service.pause_queue().await.map_err(graphql_error)
    }

    /// Resume a paused queue.
    async fn resume_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let service = ctx.data::<ReceiptService>()?;
        service.resume_queue().await.map_err(graphql_error)
    }

    /// Cancel a job (as `DELETE /api/job/{jobId}`).
    async fn cancel_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let service = ctx.data::<ReceiptService>()?;
        service.cancel_job(&job_id).await.map_err(graphql_error)
    }

    /// Send the job's latest webhook event again (as
    /// `POST /api/job/{jobId}/deliveries/redeliver`).
    async fn redeliver_webhooks(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<DeliveryList> {
        let service = ctx.data::<ReceiptService>()?;
        service.redeliver(&job_id).await.map_err(graphql_error)
    }

    /// Run a failed or cancelled job again (as `POST /api/job/{jobId}/retry`).
    async fn retry_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let service = ctx.data::<ReceiptService>()?;
        service.retry_job(&job_id).await.map_err(graphql_error)
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// The job's status now, then each change as it happens (every progress
    /// step and state, from the queue's events), until it is completed,
    /// failed or cancelled (WebSocket at `/graphql/ws`, graphql-transport-ws
    /// or graphql-ws; with API keys on, `apiKey` in `connection_init`).
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<impl Stream<Item = JobStatusView> + use<>> {
        let service = ctx.data::<ReceiptService>()?;
        let updates = service.watch_job(&job_id).await.map_err(graphql_error)?;
        Ok(updates.map(|update| update.status))
    }
}

pub fn schema(service: ReceiptService) -> ReceiptSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(service)
        .extension(async_graphql::extensions::Tracing)
        .finish()
}

/// A self-contained query page (no CDN), so the IDE works offline.
pub const IDE_HTML: &str = include_str!("graphql_ide.html");
