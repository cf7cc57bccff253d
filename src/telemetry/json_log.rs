//! Log lines as JSON objects, one per line, for log collectors:
//! `timestamp`, `level`, `target`, `message`, the event's own fields, and,
//! inside a span, the span's name with its `trace_id` and `span_id`, so a
//! line can be found from its trace and a trace from its line.
//!
//! The ids are looked up from the registry rather than from the log
//! layer's view: with `RUST_LOG=warn` the log layer sees no `info` span,
//! yet a warning inside a request belongs to that request's trace.

use std::fmt;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON-lines event format.
pub struct JsonLines;

/// Span fields as [`JsonLines`] writes them: not at all (a line names its
/// span and ids, not the span's fields). The fmt layer formats every
/// span's fields into text when the span is made and again on each
/// `record`, for event formats that print them; with its default field
/// format that cost about 30k instructions a job in `bench queue` (at the
/// default `RUST_LOG`), all of it thrown away.
pub struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _: Writer<'writer>, _: R) -> fmt::Result {
        Ok(())
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), metadata.level().as_str().into());
        line.insert("target".into(), metadata.target().into());
        event.record(&mut FieldsVisitor(&mut line));
        if let Some(span) = enclosing_span(event) {
            line.insert("span".into(), span.name.into());
            if let Some(context) = span.context {
                let trace_id = context.trace_id().to_string();
                line.insert("trace_id".into(), trace_id.into());
                line.insert("span_id".into(), context.span_id().to_string().into());
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// The span an event happened in, and the nearest traced one's context.
struct EnclosingSpan {
    name: &'static str,
    context: Option<SpanContext>,
}

fn enclosing_span(event: &Event<'_>) -> Option<EnclosingSpan> {
    // OpenTelemetry's own diagnostics may be emitted while it holds a
    // span's data: looking that span up again would deadlock.
    if event.metadata().target().starts_with("opentelemetry") {
        return None;
    }
    tracing::dispatcher::get_default(|dispatch| {
        let id = match event.parent() {
            Some(parent) => parent.clone(),
            None => dispatch.current_span().id()?.clone(),
        };
        let registry = dispatch.downcast_ref::<Registry>()?;
        let leaf = registry.span(&id)?;
        let context = leaf.scope().find_map(|span| {
            let context = tracing_opentelemetry::get_otel_context(&span.id(), dispatch)?;
            let span_context = context.span().span_context().clone();
            span_context.is_valid().then_some(span_context)
        });
        Some(EnclosingSpan {
            name: leaf.name(),
            context,
        })
    })
}

/// Copies an event's fields into the line, `message` included.
struct FieldsVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for FieldsVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
