//! The W3C trace context a job carries from its producer to its consumer.
//!
//! Our producer writes it in the job data as `traceContext`
//! (`{"traceparent": "00-…"}`). BullMQ's Node producer, when given a
//! telemetry adapter, writes it in the job's options instead, as `tm`: a
//! JSON string of the same carrier (`bullmq-official` can neither write
//! nor read that option, so we read the raw `opts` field). Ours wins when
//! both are there.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// W3C trace-context headers, as carried in a job.
pub type Carrier = HashMap<String, String>;

/// The current span's context as W3C trace-context headers.
pub fn current_trace_context() -> Carrier {
    trace_context_of(&tracing::Span::current())
}

/// `span`'s context as W3C trace-context headers (empty when the span is
/// not traced).
pub fn trace_context_of(span: &tracing::Span) -> Carrier {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier
}

/// Make `span` a child of the trace described by `carrier`.
pub fn continue_trace(span: &tracing::Span, carrier: &Carrier) {
    let parent = TraceContextPropagator::new().extract(carrier);
    // Only fails when the span is disabled (filtered out): nothing to link then.
    let _ = span.set_parent(parent);
}

/// The context a job's processing continues: ours from the job data, else
/// a Node producer's from BullMQ's `tm` option in `raw_opts` (the job
/// hash's `opts` field), else none.
pub fn job_parent(trace_context: &Carrier, raw_opts: Option<&str>) -> Option<Carrier> {
    if is_valid(trace_context) {
        return Some(trace_context.clone());
    }
    let from_node = raw_opts.and_then(bullmq_telemetry_metadata)?;
    is_valid(&from_node).then_some(from_node)
}

fn is_valid(carrier: &Carrier) -> bool {
    let context: Context = TraceContextPropagator::new().extract(carrier);
    context.span().span_context().is_valid()
}

/// BullMQ's `tm` job option: a JSON string holding the carrier (what
/// `bullmq-otel` writes), or the carrier itself (older adapters).
pub fn bullmq_telemetry_metadata(raw_opts: &str) -> Option<Carrier> {
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

    fn carrier(traceparent: &str) -> Carrier {
        HashMap::from([("traceparent".to_string(), traceparent.to_string())])
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

    #[test]
    fn our_context_wins_over_a_node_producers_and_garbage_is_ignored() {
        let node = format!(r#"{{"tm":"{{\"traceparent\":\"{PARENT}\"}}"}}"#);
        let ours = carrier("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert_eq!(job_parent(&ours, Some(&node)), Some(ours.clone()));
        assert_eq!(
            job_parent(&Carrier::new(), Some(&node)),
            Some(carrier(PARENT))
        );
        assert_eq!(job_parent(&carrier("garbage"), None), None);
        let bad_node = r#"{"tm":"{\"traceparent\":\"00-zz\"}"}"#;
        assert_eq!(job_parent(&Carrier::new(), Some(bad_node)), None);
    }
}
