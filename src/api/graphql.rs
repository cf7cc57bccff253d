//! GraphQL at `/graphql`: the seed's `jobStatus` query and `receipt(id)`,
//! the queue overview, the receipt listing and webhook deliveries, the
//! queue's mutations, and the live `jobStatus` subscription, resolved by
//! the same service functions as REST, as the request's [`Caller`].
//! Lookups cost 10 towards GRAPHQL_MAX_COMPLEXITY, a listing its page size
//! times its selection ([`limits`]).

mod endpoint;
mod limits;

pub use endpoint::{GraphqlEndpoint, SubscriptionEndpoint, SubscriptionSlots};

use async_graphql::{Context, Object, Schema, Subscription};
use futures::{Stream, StreamExt};

use super::errors::graphql_error;
use crate::config::GraphqlLimits;
use crate::jobs::{
    Caller, DeliveryList, JobStatusView, ListingQuery, QueueView, ReceiptPage, ReceiptService,
    ReceiptView,
};

/// The service and the request's caller, from the context.
fn service_and_caller<'a>(
    ctx: &Context<'a>,
) -> async_graphql::Result<(&'a ReceiptService, &'a Caller)> {
    Ok((ctx.data::<ReceiptService>()?, ctx.data::<Caller>()?))
}

pub type ReceiptSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The state, progress and result of an OCR job.
    #[graphql(complexity = "10 + child_complexity")]
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let (service, caller) = service_and_caller(ctx)?;
        service
            .job_status(caller, &job_id)
            .await
            .map_err(graphql_error)
    }

    /// A stored receipt by id.
    #[graphql(complexity = "10 + child_complexity")]
    async fn receipt(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<ReceiptView> {
        let (service, caller) = service_and_caller(ctx)?;
        service.receipt(caller, &id).await.map_err(graphql_error)
    }

    /// The job's webhook deliveries, each with every attempt (as
    /// `GET /api/job/{jobId}/deliveries`).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<DeliveryList> {
        let (service, caller) = service_and_caller(ctx)?;
        service
            .deliveries(caller, &job_id)
            .await
            .map_err(graphql_error)
    }

    /// Job counts per state, pause, the rate limit in force and the workers.
    #[graphql(complexity = "10 + child_complexity")]
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let service = ctx.data::<ReceiptService>()?;
        service.queue_overview().await.map_err(graphql_error)
    }

    /// Receipts newest first; pass `nextCursor` back as `cursor`. Dates and
    /// limits as in `GET /api/receipts`; a bad one is a `bad_request` error
    /// naming it.
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "10 + limit.map_or(20, |n| n.clamp(1, 100)) as usize * child_complexity"
    )]
    async fn receipts(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        from: Option<String>,
        to: Option<String>,
        purchased_from: Option<String>,
        purchased_to: Option<String>,
        q: Option<String>,
        limit: Option<i64>,
        cursor: Option<String>,
    ) -> async_graphql::Result<ReceiptPage> {
        let (service, caller) = service_and_caller(ctx)?;
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
        service
            .list_receipts(caller, &query)
            .await
            .map_err(graphql_error)
    }
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Pause the queue for every worker process; uploads still wait in it.
    /// With named API keys, only an admin key may.
    #[graphql(complexity = "10 + child_complexity")]
    async fn pause_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let (service, caller) = service_and_caller(ctx)?;
        service.pause_queue(caller).await.map_err(graphql_error)
    }

    /// Resume a paused queue (an admin key with named API keys).
    #[graphql(complexity = "10 + child_complexity")]
    async fn resume_queue(&self, ctx: &Context<'_>) -> async_graphql::Result<QueueView> {
        let (service, caller) = service_and_caller(ctx)?;
        service.resume_queue(caller).await.map_err(graphql_error)
    }

    /// Cancel a job (as `DELETE /api/job/{jobId}`).
    #[graphql(complexity = "10 + child_complexity")]
    async fn cancel_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let (service, caller) = service_and_caller(ctx)?;
        service
            .cancel_job(caller, &job_id)
            .await
            .map_err(graphql_error)
    }

    /// Send the job's latest webhook event again (as
    /// `POST /api/job/{jobId}/deliveries/redeliver`).
    async fn redeliver_webhooks(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<DeliveryList> {
        let (service, caller) = service_and_caller(ctx)?;
        service
            .redeliver(caller, &job_id)
            .await
            .map_err(graphql_error)
    }

    /// Run a failed or cancelled job again (as `POST /api/job/{jobId}/retry`).
    #[graphql(complexity = "10 + child_complexity")]
    async fn retry_job(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<JobStatusView> {
        let (service, caller) = service_and_caller(ctx)?;
        service
            .retry_job(caller, &job_id)
            .await
            .map_err(graphql_error)
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
        let (service, caller) = service_and_caller(ctx)?;
        // Held for as long as the stream lives (every WebSocket has slots).
        let slot = ctx
            .data_opt::<SubscriptionSlots>()
            .map(SubscriptionSlots::take)
            .transpose()?;
        let updates = service
            .watch_job(caller, &job_id)
            .await
            .map_err(graphql_error)?;
        Ok(updates.map(move |update| {
            let _slot = &slot;
            update.status
        }))
    }
}

pub fn schema(service: ReceiptService, limits: &GraphqlLimits) -> ReceiptSchema {
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(service)
        .extension(async_graphql::extensions::Tracing)
        .extension(limits::QueryLimits(limits.clone()));
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// A self-contained query page (no CDN), so the IDE works offline.
pub const IDE_HTML: &str = include_str!("graphql_ide.html");
