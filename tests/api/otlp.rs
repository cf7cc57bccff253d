//! An OTLP/HTTP receiver for tests: the `/v1/traces` endpoint a collector
//! serves, decoding each `ExportTraceServiceRequest` the processes send
//! and keeping every span with the `service.name` that sent it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, handler, post};
use prost::Message;

use crate::helpers::wait_for;

/// A span as exported, with the service that exported it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn name(&self) -> &str {
        &self.span.name
    }

    pub fn trace_id(&self) -> String {
        hex::encode(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex::encode(&self.span.span_id)
    }

    /// Empty for a root span.
    pub fn parent_id(&self) -> String {
        hex::encode(&self.span.parent_span_id)
    }

    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    pub fn is_error(&self) -> bool {
        self.span
            .status
            .as_ref()
            .is_some_and(|s| s.code == StatusCode::Error as i32)
    }

    pub fn str_attr(&self, key: &str) -> Option<String> {
        match value_of(&self.span.attributes, key)? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match value_of(&self.span.attributes, key)? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        }
    }

    pub fn event(&self, name: &str) -> Option<&Event> {
        self.span.events.iter().find(|e| e.name == name)
    }

    pub fn nanos(&self) -> u64 {
        self.span.end_time_unix_nano - self.span.start_time_unix_nano
    }
}

/// A string attribute of an event.
pub fn event_attr(event: &Event, key: &str) -> Option<String> {
    match value_of(&event.attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn value_of<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

/// The receiver, listening on a random port until the test ends.
pub struct SpanSink {
    pub endpoint: String,
    spans: Received,
}

impl SpanSink {
    pub async fn start() -> SpanSink {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the OTLP receiver");
        let port = acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address")
            .port();
        let spans = Received::default();
        let app = Route::new()
            .at("/v1/traces", post(receive))
            .data(spans.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        SpanSink {
            endpoint: format!("http://127.0.0.1:{port}"),
            spans,
        }
    }

    /// What a process needs to export here as `service`, promptly.
    pub fn env(&self, service: &str) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.clone()),
            ("OTEL_SERVICE_NAME", service.to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
        ]
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// Poll the spans received until `check` finds what it wants.
    pub async fn wait_for<T>(&self, mut check: impl FnMut(&[ReceivedSpan]) -> Option<T>) -> T {
        wait_for(|| {
            let found = check(&self.spans());
            async move { found }
        })
        .await
    }
}

#[handler]
async fn receive(body: Bytes, spans: Data<&Received>) -> Response {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut received = spans.0.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| value_of(&r.attributes, "service.name"))
            .map(|v| match v {
                Value::StringValue(s) => s.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: everything accepted.
    Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

/// Pairs for `Process::start_with`.
pub fn as_env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
