//! Logs, traces and metrics.
//!
//! - Logs go to stderr, filtered by `RUST_LOG` (default `info`): JSON lines
//!   carrying `trace_id`/`span_id` ([`json_log`]) when `LOG_FORMAT=json` or
//!   stderr is not a terminal, plain text otherwise.
//! - Spans go to OpenTelemetry, filtered by `OTEL_TRACES_FILTER` (default
//!   `receipt_ocr=info`) and never by `RUST_LOG`, so `RUST_LOG=warn` still
//!   traces every request and job; they are exported over OTLP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`OTEL_EXPORTER_OTLP_PROTOCOL`
//!   `grpc` or the default `http/protobuf`; `OTEL_SERVICE_NAME`; the
//!   batch exporter's standard `OTEL_BSP_*` settings).
//! - [`spans`]: the HTTP, messaging and stage spans with OpenTelemetry's
//!   semantic conventions; [`propagation`]: the W3C context carried in the
//!   job (ours in `traceContext`, a Node producer's in BullMQ's `tm`).
//! - [`metrics`]: this process's Prometheus metrics.

mod json_log;
pub mod metrics;
pub mod propagation;
pub mod spans;
mod traceparent;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::ParseError;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use propagation::{continue_trace, current_trace_context};

/// What is traced unless `OTEL_TRACES_FILTER` says otherwise: our own spans
/// (HTTP requests, enqueue, processing and its stages), not those of the
/// libraries beneath (BullMQ's per-command spans, GraphQL's per-field ones).
pub const DEFAULT_TRACES_FILTER: &str = "receipt_ocr=info";

/// What is logged unless `RUST_LOG` says otherwise.
const DEFAULT_LOG_FILTER: &str = "info,ractor=warn,bullmq=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("LOG_FORMAT must be `json` or `text`, not `{0}`")]
    LogFormat(String),
    #[error(
        "{variable} `{value}` is not a filter ({source}); write it as in RUST_LOG, e.g. `receipt_ocr=info`"
    )]
    Filter {
        variable: &'static str,
        value: String,
        #[source]
        source: ParseError,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with the trace and span ids.
    Json,
    /// Human-readable lines, coloured only on a terminal.
    Text,
}

impl LogFormat {
    /// `LOG_FORMAT`, or JSON unless stderr is a terminal.
    fn from_env() -> Result<Self, TelemetryError> {
        match std::env::var("LOG_FORMAT").ok().as_deref() {
            Some("json") => Ok(Self::Json),
            Some("text") => Ok(Self::Text),
            None | Some("") if stderr_is_terminal() => Ok(Self::Text),
            None | Some("") => Ok(Self::Json),
            Some(other) => Err(TelemetryError::LogFormat(other.to_string())),
        }
    }
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// How long pending spans may take to leave at exit.
const SPAN_FLUSH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Flushes pending spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // The batch exporter blocks while flushing: keep it off the
            // async runtime's threads, and short (an unreachable collector
            // must not hold a stopping process past its grace).
            let flush = move || provider.shutdown_with_timeout(SPAN_FLUSH_PATIENCE);
            let flushed = std::thread::spawn(flush);
            let _ = flushed.join();
        }
    }
}

/// Install the global subscriber: logs per `RUST_LOG`/`LOG_FORMAT`, spans
/// per `OTEL_TRACES_FILTER`. A second call keeps the first subscriber.
pub fn init() -> Result<TelemetryGuard, TelemetryError> {
    let format = LogFormat::from_env()?;
    let log_filter = filter_from_env("RUST_LOG", DEFAULT_LOG_FILTER)?;
    let traces_filter = filter_from_env("OTEL_TRACES_FILTER", DEFAULT_TRACES_FILTER)?;
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .fmt_fields(json_log::NoSpanFields)
            .event_format(json_log::JsonLines)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, not for logs.
            .with_ansi(stderr_is_terminal())
            .boxed(),
    };
    // Spans are always made, exported or not, so that log lines carry
    // trace ids and jobs carry the context to whichever process exports.
    let provider = tracer_provider();
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("receipt-ocr"))
        .with_threads(false)
        .with_tracked_inactivity(false)
        // Entering a span would otherwise make its OpenTelemetry context
        // the thread's current one, and leaving it restore the previous:
        // on every poll of every instrumented future (each job's, many
        // times a job). Nothing here reads OpenTelemetry's current context:
        // a new span's parent is found from tracing's current span, a
        // job's from its carrier (`set_parent`), and log lines read the
        // span's own context.
        .with_context_activation(false)
        .with_filter(traces_filter);
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(log_filter))
        .with(traces)
        .try_init();
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// An error and what caused it, as logs and messages tell it ("error
/// performing TLS handshake: invalid peer certificate: UnknownIssuer"):
/// many errors (reqwest's, tokio-postgres's) say only the first.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The filter in `variable`, or `default` when it is unset or empty.
fn filter_from_env(variable: &'static str, default: &str) -> Result<EnvFilter, TelemetryError> {
    let value = std::env::var(variable)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string());
    EnvFilter::builder()
        .parse(&value)
        .map_err(|source| TelemetryError::Filter {
            variable,
            value,
            source,
        })
}

fn tracer_provider() -> SdkTracerProvider {
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("receipt-ocr");
    }
    let builder = SdkTracerProvider::builder().with_resource(resource.build());
    match otlp_exporter() {
        Some(exporter) => builder.with_batch_exporter(exporter).build(),
        None => builder.build(),
    }
}

fn otlp_exporter() -> Option<opentelemetry_otlp::SpanExporter> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())?;
    let grpc = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").is_ok_and(|p| p == "grpc");
    let exporter = if grpc {
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(opentelemetry_otlp::Protocol::Grpc)
            .build()
    } else {
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
    };
    exporter
        .inspect_err(|e| eprintln!("warning: OpenTelemetry export is off: {e}"))
        .ok()
}
