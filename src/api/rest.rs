//! The REST API (poem-openapi): upload, job status, receipts and health.
//! Every handler is a thin call into [`crate::jobs::ReceiptService`].

use bytes::Bytes;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::types::Binary;
use poem_openapi::{Multipart, Object, OpenApi, Tags};

use super::errors::{JobControlError, LookupError, NotReady, UploadError};
use crate::job::ScheduleRequest;
use crate::jobs::{Caller, JobStatusView, ReceiptService, ReceiptView, UploadAccepted};

#[derive(Tags)]
enum Tag {
    /// Upload receipts and follow their OCR jobs.
    Receipts,
    /// Liveness and readiness probes.
    Health,
}

/// The upload form: one receipt image in field `file`, and optionally when
/// and in which order to read it. Any other field is refused.
#[derive(Multipart, Debug)]
#[oai(deny_unknown_fields)]
pub struct UploadForm {
    /// JPEG, PNG, TIFF, WebP, BMP or GIF; at most MAX_UPLOAD_BYTES.
    /// Missing or empty: 400 (`no_file`, `empty_file`).
    file: Binary<Bytes>,
    /// 1 (highest) to 2097152. Uploads without one are read first, in
    /// upload order (BullMQ's rule); prioritized ones after them, by priority.
    priority: Option<String>,
    /// Milliseconds to wait before the job may start (not with `processAt`).
    delay: Option<String>,
    /// When the job may start: an RFC 3339 time with offset, not in the past.
    #[oai(rename = "processAt")]
    process_at: Option<String>,
}

#[derive(Object, Debug)]
pub struct HealthStatus {
    /// `ok`, or what is failing.
    status: String,
}

pub struct ReceiptApi {
    pub service: ReceiptService,
}

#[OpenApi]
impl ReceiptApi {
    /// Upload a receipt image. Answers at once with the job id; OCR runs in
    /// the background. Poll `GET /api/job/{jobId}` for the result.
    #[oai(path = "/api/upload", method = "post", tag = "Tag::Receipts")]
    async fn upload(
        &self,
        caller: Data<&Caller>,
        form: UploadForm,
    ) -> Result<Json<UploadAccepted>, UploadError> {
        let schedule = ScheduleRequest {
            priority: form.priority,
            delay: form.delay,
            process_at: form.process_at,
        };
        let file = Some(form.file.0);
        Ok(Json(
            self.service
                .enqueue_receipt(&caller, file, &schedule)
                .await?,
        ))
    }

    /// The state, progress and (once completed) result of an OCR job.
    #[oai(path = "/api/job/:job_id", method = "get", tag = "Tag::Receipts")]
    async fn job(
        &self,
        caller: Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<Json<JobStatusView>, LookupError> {
        Ok(Json(self.service.job_status(&caller, &job_id).await?))
    }

    /// Cancel a job. A waiting, prioritized or delayed job leaves the queue
    /// at once; an active one is stopped at its worker's next check, in
    /// whichever process holds it. The receipt ends `cancelled` (its image
    /// is kept). Cancelling again answers the same; a finished job is a 409.
    #[oai(path = "/api/job/:job_id", method = "delete", tag = "Tag::Receipts")]
    async fn cancel(
        &self,
        caller: Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<Json<JobStatusView>, JobControlError> {
        Ok(Json(self.service.cancel_job(&caller, &job_id).await?))
    }

    /// Run a failed or cancelled job again with fresh attempts; its receipt
    /// goes back to `queued`. Other states answer 409.
    #[oai(
        path = "/api/job/:job_id/retry",
        method = "post",
        tag = "Tag::Receipts"
    )]
    async fn retry(
        &self,
        caller: Data<&Caller>,
        job_id: Path<String>,
    ) -> Result<Json<JobStatusView>, JobControlError> {
        Ok(Json(self.service.retry_job(&caller, &job_id).await?))
    }

    /// A stored receipt with its items, by receipt id.
    #[oai(path = "/api/receipt/:id", method = "get", tag = "Tag::Receipts")]
    async fn receipt(
        &self,
        caller: Data<&Caller>,
        id: Path<String>,
    ) -> Result<Json<ReceiptView>, LookupError> {
        Ok(Json(self.service.receipt(&caller, &id).await?))
    }

    /// Queue metrics in Prometheus's text format: `bullmq_job_count` per
    /// state, `bullmq_job_completed_total`, `bullmq_job_failed_total`.
    #[oai(path = "/metrics", method = "get", tag = "Tag::Health")]
    async fn metrics(&self) -> Result<PlainText<String>, NotReady> {
        Ok(PlainText(self.service.metrics().await?))
    }

    /// Liveness: the process answers HTTP.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Health")]
    async fn live(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".to_string(),
        })
    }

    /// Readiness: Redis and PostgreSQL both answer (503 otherwise).
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Health")]
    async fn ready(&self) -> Result<Json<HealthStatus>, NotReady> {
        self.service.readiness().await?;
        Ok(Json(HealthStatus {
            status: "ok".to_string(),
        }))
    }
}
