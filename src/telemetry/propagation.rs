//! The W3C trace context a job carries from its producer to its consumer.
//!
//! Our producer writes it in the job data as `traceContext`
//! (`{"traceparent": "00-…"}`). BullMQ's Node producer, when given a
//! telemetry adapter, writes it in the job's options instead, as `tm`: a
//! JSON string of the same headers (`bullmq-official` can neither write
//! nor read that option, so we read the raw `opts` field). Ours wins when
//! both are there. The `traceparent` is written and read by
//! [`traceparent`](super::traceparent), not by OpenTelemetry's propagator;
//! an HTTP caller's is read the same way.

use std::str::FromStr;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::traceparent;

/// The W3C trace-context headers, as a job carries them (other keys a
/// producer may add are ignored). A struct rather than a map: one job
/// builds, writes and reads it, and a map hashes every key each time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// No header at all: a producer that does not trace.
    pub fn is_empty(&self) -> bool {
        self.traceparent.is_none() && self.tracestate.is_none()
    }
}

/// The current span's context as W3C trace-context headers.
pub fn current_trace_context() -> TraceContext {
    trace_context_of(&tracing::Span::current())
}

/// `span`'s context as W3C trace-context headers (empty when the span is
/// not traced): its `traceparent` only, as our spans have no trace state
/// (the propagator would add an empty `tracestate`).
pub fn trace_context_of(span: &tracing::Span) -> TraceContext {
    let context = span.context();
    let span = context.span();
    let span_context = span.span_context();
    TraceContext {
        traceparent: span_context
            .is_valid()
            .then(|| traceparent::write(span_context)),
        tracestate: None,
    }
}

/// Make `span` a child of the trace `headers` describe, if they name a
/// valid one.
pub fn continue_trace(span: &tracing::Span, headers: &TraceContext) {
    if let Some(parent) = valid_context(headers) {
        // Only fails when the span is disabled (filtered out): nothing to link then.
        let _ = span.set_parent(parent);
    }
}

/// The context a job's processing continues: ours from the job data, else
/// a Node producer's from BullMQ's `tm` option in `raw_opts` (the job
/// hash's `opts` field), else none. `raw_opts` is only read when ours is
/// missing, so a worker fetches it only then.
pub async fn job_parent(
    trace_context: &TraceContext,
    raw_opts: impl AsyncFnOnce() -> Option<String>,
) -> Option<Context> {
    if let Some(ours) = valid_context(trace_context) {
        return Some(ours);
    }
    let from_node = bullmq_telemetry_metadata(&raw_opts().await?)?;
    valid_context(&from_node)
}

/// The context `headers` describe, if they name a valid trace; one parse
/// serves both the check and the link. The base is an empty context, as
/// the propagator's would be: the tracing layer never makes a span's
/// context the thread's current one.
fn valid_context(headers: &TraceContext) -> Option<Context> {
    let parent = traceparent::parse(headers.traceparent.as_deref()?)?;
    let parent = match &headers.tracestate {
        Some(state) => with_trace_state(parent, state),
        None => parent,
    };
    Some(Context::new().with_remote_span_context(parent))
}

/// `parent` with the producer's `tracestate`; an unreadable one is dropped
/// (as the propagator drops it) rather than losing the link.
fn with_trace_state(parent: SpanContext, state: &str) -> SpanContext {
    let state = TraceState::from_str(state).unwrap_or_default();
    let flags = parent.trace_flags();
    SpanContext::new(parent.trace_id(), parent.span_id(), flags, true, state)
}

/// BullMQ's `tm` job option: a JSON string holding the carrier (what
/// `bullmq-otel` writes), or the carrier itself (older adapters).
pub fn bullmq_telemetry_metadata(raw_opts: &str) -> Option<TraceContext> {
    let opts: serde_json::Value = serde_json::from_str(raw_opts).ok()?;
    let metadata = opts.get("tm")?;
    let carrier = match metadata {
        serde_json::Value::String(text) => serde_json::from_str(text).ok()?,
        other => other.clone(),
    };
    serde_json::from_value(carrier).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn carrier(traceparent: &str) -> TraceContext {
        TraceContext {
            traceparent: Some(traceparent.to_string()),
            tracestate: None,
        }
    }

    #[test]
    fn bullmq_metadata_is_read_as_a_json_string_or_an_object() {
        let as_string = format!(r#"{{"attempts":3,"tm":"{{\"traceparent\":\"{PARENT}\"}}"}}"#);
        assert_eq!(bullmq_telemetry_metadata(&as_string), Some(carrier(PARENT)));
        let as_object = format!(r#"{{"tm":{{"traceparent":"{PARENT}"}}}}"#);
        assert_eq!(bullmq_telemetry_metadata(&as_object), Some(carrier(PARENT)));
        assert_eq!(bullmq_telemetry_metadata(r#"{"attempts":3}"#), None);
        assert_eq!(bullmq_telemetry_metadata("not json"), None);
    }

    /// The trace id of `parent`, to compare what `job_parent` found.
    fn trace_id(parent: Option<Context>) -> Option<String> {
        parent.map(|c| c.span().span_context().trace_id().to_string())
    }

    #[tokio::test]
    async fn our_context_wins_over_a_node_producers_and_garbage_is_ignored() {
        let node = format!(r#"{{"tm":"{{\"traceparent\":\"{PARENT}\"}}"}}"#);
        let ours = carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        let node_opts = async || Some(node.clone());
        let ours_found = job_parent(&ours, node_opts).await;
        assert_eq!(
            trace_id(ours_found).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        let node_found = job_parent(&TraceContext::default(), node_opts).await;
        assert_eq!(
            trace_id(node_found).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert!(
            job_parent(&carrier("garbage"), async || None)
                .await
                .is_none()
        );
        let bad_node = r#"{"tm":"{\"traceparent\":\"00-zz\"}"}"#;
        let bad_opts = async || Some(bad_node.to_string());
        assert!(
            job_parent(&TraceContext::default(), bad_opts)
                .await
                .is_none()
        );
    }
}
