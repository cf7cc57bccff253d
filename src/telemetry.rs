//! Logging and tracing: `tracing` to stderr (filtered by RUST_LOG, default
//! `info`), and OpenTelemetry traces over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`OTEL_EXPORTER_OTLP_PROTOCOL`
//! `grpc` or the default `http/protobuf`; `OTEL_SERVICE_NAME`).
//!
//! One trace per receipt: the upload request's span context travels in the
//! job (`traceContext` in the job data, W3C `traceparent`), and the worker's
//! processing span continues it, in whichever process the job lands.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes pending spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // The batch exporter blocks while flushing: keep it off the
            // async runtime's threads.
            let flushed = std::thread::spawn(move || provider.shutdown());
            let _ = flushed.join();
        }
    }
}

/// Install the global subscriber. Safe to call more than once (tests).
pub fn init() -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,ractor=warn,bullmq=warn"));
    let provider = otlp_provider();
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("receipt-ocr"))
            .boxed()
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, not for logs.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(otel_layer)
        .try_init();
    TelemetryGuard { provider }
}

fn otlp_provider() -> Option<SdkTracerProvider> {
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
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("warning: OpenTelemetry export is off: {e}");
            return None;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("receipt-ocr");
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// The current span's context as W3C trace-context headers.
pub fn current_trace_context() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
    carrier
}

/// Make `span` a child of the trace described by `carrier`.
pub fn continue_trace(span: &tracing::Span, carrier: &HashMap<String, String>) {
    let parent = TraceContextPropagator::new().extract(carrier);
    // Only fails when the span is disabled (filtered out): nothing to link then.
    let _ = span.set_parent(parent);
}
