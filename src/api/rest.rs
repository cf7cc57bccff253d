//! The REST API (poem-openapi): upload, job status, receipts and health.
//! Every handler is a thin call into [`crate::jobs::ReceiptService`].

use bytes::Bytes;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::types::Binary;
use poem_openapi::{Multipart, Object, OpenApi, Tags};

use super::batch::{BatchUploaded, UploadAnswer};
use super::errors::{ImageError, JobControlError, LookupError, NotReady, UploadError};
use super::image::ImageAnswer;
use crate::job::ScheduleRequest;
use crate::jobs::{Caller, JobStatusView, ReceiptService, ReceiptView};

#[derive(Tags)]
enum Tag {
    /// Upload receipts and follow their OCR jobs.
    Receipts,
    /// Liveness and readiness probes.
    Health,
}

/// The upload form: one receipt in field `file` (or several `file` fields,
/// each its own job), and optionally when and in which order to read them.
/// Any other field is refused.
#[derive(Multipart, Debug)]
#[oai(deny_unknown_fields)]
pub struct UploadForm {
    /// JPEG, PNG, TIFF, WebP, BMP, GIF, PDF, HEIC or AVIF; at most
    /// MAX_UPLOAD_BYTES. Repeat the field (up to MAX_BATCH_FILES) to upload
    /// several receipts at once.
    file: Vec<Binary<Bytes>>,
    /// 1 (highest) to 2097152. Uploads without one are read first, in
    /// upload order (BullMQ's rule); prioritized ones after them, by priority.
    priority: Option<String>,
    /// Milliseconds to wait before the job may start (not with `processAt`).
    delay: Option<String>,
    /// When the job may start: an RFC 3339 time with offset, not in the past.
    #[oai(rename = "processAt")]
    process_at: Option<String>,
    /// An http(s) URL told when the job completes, fails or is cancelled
    /// (a signed POST, retried; see the Webhooks endpoints). Its host must
    /// resolve to public addresses unless WEBHOOK_ALLOW_PRIVATE.
    #[oai(rename = "callbackUrl")]
    callback_url: Option<String>,
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
    /// Upload a receipt image, PDF or HEIC/AVIF photo. Answers at once with
    /// the job id; OCR runs in the background. Poll `GET /api/job/{jobId}`
    /// for the result. With several `file` fields, each file is its own job
    /// and the answer (200) lists each file's job or error.
    #[oai(path = "/api/upload", method = "post", tag = "Tag::Receipts")]
    async fn upload(
        &self,
        caller: Data<&Caller>,
        form: UploadForm,
    ) -> Result<Json<UploadAnswer>, UploadError> {
        let schedule = ScheduleRequest {
            priority: form.priority,
            delay: form.delay,
            process_at: form.process_at,
        };
        let mut files: Vec<Bytes> = form.file.into_iter().map(|binary| binary.0).collect();
        let callback = form.callback_url.as_deref();
        if files.len() > 1 {
            let outcomes = self
                .service
                .enqueue_batch(&caller, files, &schedule, callback)
                .await?;
            return Ok(Json(UploadAnswer::Batch(BatchUploaded::new(outcomes))));
        }
        let accepted = self
            .service
            .enqueue_receipt(&caller, files.pop(), &schedule, callback)
            .await?;
        Ok(Json(UploadAnswer::One(Box::new(accepted))))
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

    /// The file uploaded for a receipt, exactly as sent and with its media
    /// type (a PDF or HEIC stays one), for showing beside what was read.
    #[oai(path = "/api/receipt/:id/image", method = "get", tag = "Tag::Receipts")]
    async fn receipt_image(
        &self,
        caller: Data<&Caller>,
        id: Path<String>,
    ) -> Result<ImageAnswer, ImageError> {
        Ok(ImageAnswer::new(
            self.service.receipt_image(&caller, &id).await?,
        ))
    }

    /// This process's metrics in Prometheus's text format (request,
    /// stage, job and queue-wait durations, upload sizes, job outcomes,
    /// OCR workers, memory and CPU), plus the queue-wide `bullmq_*` series
    /// from one process of the deployment at a time.
    #[oai(path = "/metrics", method = "get", tag = "Tag::Health")]
    async fn metrics(&self) -> PlainText<String> {
        PlainText(self.service.metrics().await)
    }

    /// Liveness: the process answers HTTP.
    #[oai(path = "/health/live", method = "get", tag = "Tag::Health")]
    async fn live(&self) -> Json<HealthStatus> {
        Json(HealthStatus {
            status: "ok".to_string(),
        })
    }

    /// Readiness: Redis and PostgreSQL answer and the blob store takes a
    /// write (503 otherwise, naming what failed).
    #[oai(path = "/health/ready", method = "get", tag = "Tag::Health")]
    async fn ready(&self) -> Result<Json<HealthStatus>, NotReady> {
        self.service.readiness().await?;
        Ok(Json(HealthStatus {
            status: "ok".to_string(),
        }))
    }
}
