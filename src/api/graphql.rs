//! GraphQL at `/graphql`: the seed's `jobStatus` query and `receipt(id)`,
//! resolved by the same service functions as REST.

use async_graphql::{Context, EmptyMutation, Object, Schema, Subscription};
use futures::{Stream, StreamExt};

use super::errors::graphql_error;
use crate::jobs::{JobStatusView, ReceiptService, ReceiptView};

pub type ReceiptSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

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
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// The job's status each time it changes, until it is completed or failed
    /// (WebSocket at `/graphql/ws`, graphql-transport-ws or graphql-ws).
    async fn job_status(
        &self,
        ctx: &Context<'_>,
        job_id: String,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<JobStatusView>> + use<>>
    {
        let service = ctx.data::<ReceiptService>()?;
        Ok(service
            .watch_job(job_id)
            .map(|status| status.map_err(graphql_error)))
    }
}

pub fn schema(service: ReceiptService) -> ReceiptSchema {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .data(service)
        .extension(async_graphql::extensions::Tracing)
        .finish()
}

/// A self-contained query page (no CDN), so the IDE works offline.
pub const IDE_HTML: &str = include_str!("graphql_ide.html");
