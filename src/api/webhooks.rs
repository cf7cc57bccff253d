//! The REST endpoints of a job's webhook deliveries: every attempt, and
//! sending again. Thin calls into [`crate::jobs::ReceiptService`].

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{OpenApi, Tags};

use super::errors::{JobControlError, LookupError};
use poem::web::Data;

use crate::jobs::{Caller, DeliveryList, ReceiptService};

#[derive(Tags)]
enum Tag {
    /// Webhooks sent when a job completes, fails or is cancelled.
    Webhooks,
}

pub struct WebhookApi {
    pub service: ReceiptService,
}

#[OpenApi]
impl WebhookApi {
    /// The job's webhook deliveries (one per final event and target), each
    /// with every attempt: when, the target's status code, how long it took
    /// and what went wrong. Empty when the job has none.
    #[oai(
        path = "/api/job/:job_id/deliveries",
        method = "get",
        tag = "Tag::Webhooks"
    )]
    async fn deliveries(
        &self,
        caller: Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<Json<DeliveryList>, LookupError> {
        Ok(Json(self.service.deliveries(&caller, &job_id).await?))
    }

    /// Send the job's latest event again to each of its targets, with fresh
    /// attempts and the same `webhook-id`. A job without deliveries answers
    /// 409.
    #[oai(
        path = "/api/job/:job_id/deliveries/redeliver",
        method = "post",
        tag = "Tag::Webhooks"
    )]
    async fn redeliver(
        &self,
        caller: Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<Json<DeliveryList>, JobControlError> {
        Ok(Json(self.service.redeliver(&caller, &job_id).await?))
    }
}
