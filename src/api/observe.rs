//! What every HTTP request leaves behind: its duration in
//! `http_server_request_duration_seconds` (by method, route and status),
//! and, unless it is a probe, a SERVER span named `{method} {route}` with
//! OpenTelemetry's HTTP attributes, continuing the caller's `traceparent`
//! when it sent one. A 5xx answer marks the span an error, records the
//! exception and logs a warning inside the span.
//!
//! The route is the pattern the router matched, which it attaches to its
//! response; [`RouteNames`] sits right around the router, hands it out
//! through a [`RouteSlot`], and writes poem-openapi's internal patterns
//! (`/api/job/:param0`) as the OpenAPI document does (`/api/job/{job_id}`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::PathPattern;
use poem::http::HeaderMap;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

use super::errors::ErrorBody;
use crate::telemetry::metrics::metrics;
use crate::telemetry::propagation::{self, TraceContext};
use crate::telemetry::spans;

/// Probes and documentation pages: timed, never traced (a trace per
/// health check would bury the traces of receipts).
fn is_probe(path: &str) -> bool {
    path.starts_with("/health/")
        || path == "/metrics"
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/")
}

/// Where the router's matched pattern is left for [`RequestTelemetry`].
#[derive(Clone, Default)]
pub struct RouteSlot(Arc<Mutex<Option<String>>>);

impl RouteSlot {
    fn set(&self, route: String) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(route);
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Routes as the OpenAPI document names them, by the router's pattern.
#[derive(Clone, Default)]
pub struct RouteNames(Arc<HashMap<String, String>>);

impl RouteNames {
    /// From the paths of an OpenAPI document (`OpenApiService::spec`).
    pub fn from_openapi(spec: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let names = spec["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.keys())
            .map(|template| (router_pattern(template), template.clone()))
            .collect();
        Self(Arc::new(names))
    }

    /// Put around the router: copies the pattern it matched, named, into
    /// the request's [`RouteSlot`].
    pub async fn remember<E: Endpoint>(
        &self,
        endpoint: Arc<E>,
        request: Request,
    ) -> Result<Response> {
        let slot = request.data::<RouteSlot>().cloned();
        let result = endpoint
            .call(request)
            .await
            .map(IntoResponse::into_response);
        let pattern = match &result {
            Ok(response) => response.data::<PathPattern>(),
            Err(error) => error.data::<PathPattern>(),
        };
        if let (Some(slot), Some(PathPattern(pattern))) = (slot, pattern) {
            let named = self.0.get(pattern.as_ref()).map(String::as_str);
            slot.set(named.unwrap_or(pattern).to_string());
        }
        result
    }
}

/// The pattern poem-openapi gives the router for an OpenAPI path: each
/// `{name}` becomes `:param0`, `:param1`, … in order.
fn router_pattern(template: &str) -> String {
    let mut count = 0;
    let segments = template.split('/').map(|segment| {
        if segment.starts_with('{') && segment.ends_with('}') {
            count += 1;
            format!(":param{}", count - 1)
        } else {
            segment.to_string()
        }
    });
    segments.collect::<Vec<_>>().join("/")
}

/// The outermost middleware of both HTTP surfaces.
pub struct RequestTelemetry;

impl<E: Endpoint> Middleware<E> for RequestTelemetry {
    type Output = RequestTelemetryEndpoint<E>;

    fn transform(&self, endpoint: E) -> Self::Output {
        RequestTelemetryEndpoint(endpoint)
    }
}

pub struct RequestTelemetryEndpoint<E>(E);

impl<E: Endpoint> Endpoint for RequestTelemetryEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut request: Request) -> Result<Response> {
        let started = Instant::now();
        let method = method_label(request.method());
        let path = request.uri().path().to_string();
        let slot = RouteSlot::default();
        request.set_data(slot.clone());
        let span = (!is_probe(&path)).then(|| server_span(&request, method, &path));
        let call = self.0.call(request);
        let result = match &span {
            Some(span) => call.instrument(span.clone()).await,
            None => call.await,
        };
        let mut response = match result {
            Ok(response) => response.into_response(),
            Err(error) => error.into_response(),
        };
        let route = slot.get();
        let status = response.status().as_u16();
        metrics()
            .http_duration
            .with_label_values(&[method, route.as_deref().unwrap_or(""), &status.to_string()])
            .observe(started.elapsed().as_secs_f64());
        if let Some(span) = span {
            spans::http_response(&span, method, route.as_deref(), status);
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            span.in_scope(|| tracing::info!(status, elapsed_ms, "answered"));
            if status >= 500 {
                response = record_server_error(&span, response).await;
            }
        }
        Ok(response)
    }
}

fn server_span(request: &Request, method: &str, path: &str) -> tracing::Span {
    let span = spans::http_request(method, path);
    let headers = trace_headers(request.headers());
    if !headers.is_empty() {
        propagation::continue_trace(&span, &headers);
    }
    span
}

/// The W3C trace-context headers a caller sent.
fn trace_headers(headers: &HeaderMap) -> TraceContext {
    let header = |name| Some(headers.get(name)?.to_str().ok()?.to_string());
    TraceContext {
        traceparent: header("traceparent"),
        tracestate: header("tracestate"),
    }
}

/// Mark the span failed with our error body's code and message (every
/// error we answer is `{error, message}`), and log it inside the span.
async fn record_server_error(span: &tracing::Span, mut response: Response) -> Response {
    let status = response.status();
    let body = response.take_body().into_bytes().await.unwrap_or_default();
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => (error.error, error.message),
        Err(_) => (status.as_u16().to_string(), status.to_string()),
    };
    spans::record_error(span, &code, &message);
    span.in_scope(|| tracing::warn!(status = status.as_u16(), error.type = %code, "{message}"));
    response.set_body(body);
    response
}

/// The method as telemetry names it: one HTTP defines, else `_OTHER`
/// (OpenTelemetry's convention), so made-up methods add no series.
fn method_label(method: &poem::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("_OTHER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_paths_name_the_routers_patterns() {
        let spec = r#"{"paths":{"/api/job/{job_id}/retry":{},"/api/upload":{},"/a/{x}/b/{y}":{}}}"#;
        let names = RouteNames::from_openapi(spec);
        assert_eq!(names.0["/api/job/:param0/retry"], "/api/job/{job_id}/retry");
        assert_eq!(names.0["/api/upload"], "/api/upload");
        assert_eq!(names.0["/a/:param0/b/:param1"], "/a/{x}/b/{y}");
    }
}
