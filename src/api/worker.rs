//! What a `worker` process serves on its PORT: liveness, readiness (with
//! the pool's size, restarts and the global rate limit) and metrics.

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, get, handler};
use ractor::ActorRef;
use serde_json::json;

use crate::actors::{SupervisorMessage, SupervisorStats};
use crate::jobs::ReceiptService;

pub fn worker_routes(
    service: ReceiptService,
    supervisor: ActorRef<SupervisorMessage>,
) -> impl Endpoint<Output = Response> + use<> {
    Route::new()
        .at("/health/live", get(live))
        .at("/health/ready", get(ready))
        .at("/metrics", get(metrics))
        .around(|endpoint, request| async move {
            let names = super::observe::RouteNames::default();
            names.remember(endpoint, request).await
        })
        .data(service)
        .data(supervisor)
        .map_to_response()
        .with(super::observe::RequestTelemetry)
}

#[handler]
fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long the readiness probe waits for the supervisor's answer.
const STATS_PATIENCE_MS: u64 = 1000;

#[handler]
async fn ready(
    service: Data<&ReceiptService>,
    supervisor: Data<&ActorRef<SupervisorMessage>>,
) -> Response {
    // A supervisor busy replacing a worker (loading its engines) is not
    // waited for: the probe answers "restarting" at once.
    let stats: Option<SupervisorStats> =
        ractor::call_t!(supervisor.0, SupervisorMessage::Stats, STATS_PATIENCE_MS).ok();
    let rate_limit = service
        .queue
        .rate_limit()
        .await
        .ok()
        .map(|r| json!({ "max": r.max, "durationMs": r.duration_ms, "waitMs": r.wait_ms }));
    let problem = match service.readiness().await {
        Err(e) => Some(e.to_string()),
        Ok(()) if stats.is_none_or(|s| s.ocr_workers == 0) => {
            Some("no OCR worker is running (they are restarting)".to_string())
        }
        Ok(()) => None,
    };
    let body = Json(json!({
        "status": problem.as_deref().unwrap_or("ok"),
        "ocrWorkers": stats.map_or(0, |s| s.ocr_workers),
        "restarts": stats.map_or(0, |s| s.restarts),
        "stalledJobs": stats.map_or(0, |s| s.stalled_jobs),
        "rateLimit": rate_limit,
    }));
    match problem {
        None => body.into_response(),
        Some(_) => body
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

#[handler]
async fn metrics(service: Data<&ReceiptService>) -> String {
    service.metrics().await
}
