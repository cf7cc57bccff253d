//! The HTTP surface: REST with Swagger UI, GraphQL, and the middleware
//! every request passes (body size limit, API keys, JSON errors, traces
//! and metrics).

pub mod batch;
pub mod control;
pub mod errors;
pub mod graphql;
pub mod live;
pub mod observe;
pub mod rest;
pub mod webhooks;
pub mod worker;

pub use worker::worker_routes;

use std::sync::Arc;

use async_graphql_poem::GraphQL;
use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get};
use poem_openapi::OpenApiService;

use crate::config::ApiKeys;
use crate::config::HttpSettings;
use crate::jobs::ReceiptService;
use errors::poem_error_to_json;

/// Multipart framing around the file: boundaries, headers, small fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// All routes of the API process.
pub fn routes(
    service: ReceiptService,
    settings: &HttpSettings,
) -> impl Endpoint<Output = Response> + use<> {
    let api = OpenApiService::new(
        (
            rest::ReceiptApi {
                service: service.clone(),
            },
            control::ControlApi {
                service: service.clone(),
            },
            webhooks::WebhookApi {
                service: service.clone(),
            },
            live::LiveApi {
                service: service.clone(),
            },
        ),
        "receipt-ocr",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Upload receipt images; they are read by Tesseract in the background. \
         Errors are JSON `{error, message}`. When API_KEYS is set, /api and /graphql \
         need the `X-Api-Key` header (the GraphQL WebSocket also takes it as `apiKey` in \
         its `connection_init` payload).",
    );
    let route_names = observe::RouteNames::from_openapi(&api.spec());
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    let schema = graphql::schema(service);
    let guard = Arc::new(RequestGuard {
        body_limit: settings.max_upload_bytes + MULTIPART_OVERHEAD,
        upload_limit: settings.max_upload_bytes,
        api_keys: settings.api_keys.clone(),
    });
    Route::new()
        .at(
            "/graphql",
            get(make_sync(|_| Html(graphql::IDE_HTML))).post(GraphQL::new(schema.clone())),
        )
        .at(
            "/graphql/ws",
            get(live::graphql_ws)
                .data(schema)
                .data(live::WebSocketKeys {
                    keys: settings.api_keys.clone(),
                }),
        )
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .nest("/", api)
        .around(move |endpoint, request| {
            let route_names = route_names.clone();
            async move { route_names.remember(endpoint, request).await }
        })
        .around(move |endpoint, request| {
            let guard = guard.clone();
            async move { guard.check(endpoint, request).await }
        })
        .catch_all_error(|error| async move { poem_error_to_json(error, false) })
        .with(observe::RequestTelemetry)
}

/// Checks made before any handler runs.
struct RequestGuard {
    body_limit: usize,
    upload_limit: usize,
    api_keys: ApiKeys,
}

impl RequestGuard {
    async fn check<E: Endpoint>(
        &self,
        endpoint: Arc<E>,
        mut request: Request,
    ) -> poem::Result<Response> {
        if self.needs_key(&request) && !self.has_valid_key(&request) {
            return Ok(errors::unauthorized());
        }
        // Read the body here with a hard cap, so an oversized upload is
        // refused with our 413 before anything is buffered past the limit.
        let declared = request
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if declared > self.body_limit {
            return Ok(errors::too_large(self.upload_limit));
        }
        match request.take_body().into_bytes_limit(self.body_limit).await {
            Ok(bytes) => request.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => {
                return Ok(errors::too_large(self.upload_limit));
            }
            Err(e) => return Err(e.into()),
        }
        let upload = request.uri().path() == "/api/upload";
        match endpoint.call(request).await {
            Ok(response) => Ok(response.into_response()),
            Err(error) => Ok(poem_error_to_json(error, upload)),
        }
    }

    fn needs_key(&self, request: &Request) -> bool {
        let path = request.uri().path();
        // GET /graphql is only the query page; queries are POSTs or run
        // over the WebSocket. A browser cannot set headers on a WebSocket,
        // so its upgrade may come without a key (the socket then wants one
        // in `connection_init`); a key sent on the upgrade must be valid.
        let graphql = path == "/graphql" && request.method() == "POST"
            || path == "/graphql/ws" && request.header("x-api-key").is_some();
        !self.api_keys.is_open() && (path.starts_with("/api/") || graphql)
    }

    fn has_valid_key(&self, request: &Request) -> bool {
        request
            .header("x-api-key")
            .is_some_and(|key| self.api_keys.accepts(key))
    }
}
