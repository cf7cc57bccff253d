//! The spans we make, named and attributed as OpenTelemetry's semantic
//! conventions say: the HTTP request (SERVER), the enqueue (PRODUCER), the
//! processing of one attempt (CONSUMER) and the stages of reading a
//! receipt, each stage also timed into
//! `receipt_ocr_stage_duration_seconds`.

use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Status, TraceContextExt};
use tracing::{Instrument, Span, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics::metrics;

/// BullMQ, as `messaging.system` (not one of the registered values, which
/// is what the conventions ask for a system they do not list).
const MESSAGING_SYSTEM: &str = "bullmq";

/// The SERVER span of one HTTP request, before routing: name and route
/// are set by [`http_response`] once the route is known.
pub fn http_request(method: &str, path: &str) -> Span {
    info_span!(
        "HTTP request",
        otel.name = %method,
        otel.kind = "server",
        http.request.method = %method,
        url.path = %path,
        url.scheme = "http",
    )
}

/// Name the request's span `{method} {route}` and record its outcome; a
/// 5xx answer marks it an error and records the exception.
pub fn http_response(span: &Span, method: &str, route: Option<&str>, status: u16) {
    if let Some(route) = route {
        span.set_attribute("http.route", route.to_string());
        span.context()
            .span()
            .update_name(format!("{method} {route}"));
    }
    span.set_attribute("http.response.status_code", i64::from(status));
}

/// Mark `span` failed: status error, `error.type`, and an `exception`
/// event with the type and message, as the conventions record errors.
pub fn record_error(span: &Span, error_type: &str, message: &str) {
    span.set_status(Status::error(message.to_string()));
    span.set_attribute("error.type", error_type.to_string());
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", error_type.to_string()),
            KeyValue::new("exception.message", message.to_string()),
        ],
    );
}

/// The span names of one queue, built once (`send {queue}`, `process
/// {queue}`) rather than formatted for every job.
#[derive(Debug, Clone)]
pub struct QueueSpanNames {
    queue: String,
    send: String,
    process: String,
}

impl QueueSpanNames {
    pub fn new(queue: &str) -> Self {
        Self {
            queue: queue.to_string(),
            send: format!("send {queue}"),
            process: format!("process {queue}"),
        }
    }

    /// The queue's name (`messaging.destination.name`).
    pub fn queue(&self) -> &str {
        &self.queue
    }
}

// The attributes below are given as `&str`, not with `%`: a string is
// copied into the span as it is, where `%` runs the formatting machinery
// for every job.

/// The PRODUCER span of adding job `job_id` to the queue.
pub fn enqueue(names: &QueueSpanNames, job_id: &str) -> Span {
    info_span!(
        "send",
        otel.name = names.send.as_str(),
        otel.kind = "producer",
        messaging.system = MESSAGING_SYSTEM,
        messaging.operation.type = "send",
        messaging.operation.name = "add",
        messaging.destination.name = names.queue.as_str(),
        messaging.message.id = job_id,
    )
}

/// The CONSUMER span of one attempt (1 for the first) at job `job_id`,
/// which reads receipt `receipt_id`.
pub fn process(
    names: &QueueSpanNames,
    job_id: &str,
    attempt: u32,
    worker: &str,
    receipt_id: uuid::Uuid,
) -> Span {
    let mut receipt_id_text = uuid::Uuid::encode_buffer();
    let receipt_id = receipt_id.hyphenated().encode_lower(&mut receipt_id_text);
    info_span!(
        "process",
        otel.name = names.process.as_str(),
        otel.kind = "consumer",
        messaging.system = MESSAGING_SYSTEM,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = names.queue.as_str(),
        messaging.message.id = job_id,
        messaging.bullmq.attempt = i64::from(attempt),
        messaging.consumer.group.name = worker,
        receipt_id = &*receipt_id,
    )
}

/// A stage of one job, as named in spans and in the `stage` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStage {
    /// Fetch the image from the blob store and mark the receipt processing.
    Download,
    /// Decode the image and prepare it for an engine.
    Preprocess,
    /// An engine reads the text (once per pass).
    Recognise,
    /// Text to receipt fields (once per reading).
    Parse,
    /// Write the result to PostgreSQL.
    Save,
}

impl JobStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::Preprocess => "preprocess",
            Self::Recognise => "recognise",
            Self::Parse => "parse",
            Self::Save => "save",
        }
    }

    fn span(self) -> Span {
        // One literal per stage: a span's name is static metadata.
        match self {
            Self::Download => info_span!("download"),
            Self::Preprocess => info_span!("preprocess"),
            Self::Recognise => info_span!("recognise"),
            Self::Parse => info_span!("parse"),
            Self::Save => info_span!("save"),
        }
    }

    fn observe(self, started: Instant) {
        metrics()
            .stage_duration
            .with_label_values(&[self.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A synchronous stage under way on this thread: its span is entered until
/// the guard drops, when its duration is recorded.
pub struct StageGuard {
    stage: JobStage,
    started: Instant,
    _span: tracing::span::EnteredSpan,
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        self.stage.observe(self.started);
    }
}

/// Enter `stage` on this (blocking) thread until the guard drops.
pub fn enter_stage(stage: JobStage) -> StageGuard {
    StageGuard {
        stage,
        started: Instant::now(),
        _span: stage.span().entered(),
    }
}

/// Run `work` as `stage`: in its span, its duration recorded.
pub async fn in_stage<F: Future>(stage: JobStage, work: F) -> F::Output {
    let started = Instant::now();
    let output = work.instrument(stage.span()).await;
    stage.observe(started);
    output
}
