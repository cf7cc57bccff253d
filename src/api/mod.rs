//! The HTTP surface: REST with Swagger UI, GraphQL, and the guard every
//! request passes (API keys, body size, bytes in flight, JSON errors),
//! traces and metrics.

pub mod batch;
pub mod control;
mod dashboard;
pub mod errors;
pub mod graphql;
mod guard;
mod image;
pub mod live;
mod methods;
pub mod observe;
pub mod rest;
mod spec;
pub mod webhooks;
pub mod worker;

pub use worker::worker_routes;

use std::sync::Arc;

use poem::endpoint::make_sync;
use poem::web::Html;
use poem::{Endpoint, EndpointExt, Response, Route, get};
use poem_openapi::OpenApiService;

use crate::config::HttpSettings;
use crate::jobs::ReceiptService;
use errors::poem_error_to_json;

/// Routes served outside the OpenAPI document, with their methods.
const OTHER_ROUTES: [(&str, &str); 8] = [
    ("/graphql", "GET, HEAD, POST"),
    ("/graphql/ws", "GET, HEAD"),
    ("/docs", "GET, HEAD"),
    ("/openapi.json", "GET, HEAD"),
    (dashboard::PATHS[0], "GET, HEAD"),
    (dashboard::PATHS[1], "GET, HEAD"),
    (dashboard::PATHS[2], "GET, HEAD"),
    (dashboard::PATHS[3], "GET, HEAD"),
];

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
    let document = spec::Document::new(&api, &settings.api_keys);
    let allowed = methods::AllowedMethods::new(document.json(), &OTHER_ROUTES);
    let schema = graphql::schema(service, &settings.graphql);
    let guard = Arc::new(guard::RequestGuard::new(settings, allowed));
    let ide = get(make_sync(|_| Html(graphql::IDE_HTML)));
    let query = graphql::GraphqlEndpoint {
        schema: schema.clone(),
        max_batch: settings.graphql.max_batch,
    };
    let subscriptions = graphql::SubscriptionEndpoint {
        schema,
        keys: settings.api_keys.clone(),
        max_subscriptions: settings.graphql.max_subscriptions,
    };
    dashboard::add_to(Route::new())
        .at("/graphql", ide.post(query))
        .at("/graphql/ws", get(subscriptions))
        .nest("/docs", document.swagger_ui())
        .at("/openapi.json", document.endpoint())
        .nest("/", api)
        .around(dashboard::front_page)
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
