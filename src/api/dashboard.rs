//! The built-in dashboard at `/` (and `/dashboard`): one page of plain
//! HTML, CSS and JavaScript embedded in the binary. It talks only to this
//! server's REST API, so it works offline and behind the same API keys;
//! the Content-Security-Policy keeps every request on this origin.

use std::sync::Arc;

use poem::endpoint::make_sync;
use poem::error::MethodNotAllowedError;
use poem::http::{Method, header};
use poem::{Endpoint, IntoResponse, PathPattern, Request, Response, Route};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/app.css");

/// Only this origin: scripts, styles, fetches; images also from the
/// object URLs the page makes of uploads it fetched itself.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The paths served here, for the 405 answers of other methods.
pub const PATHS: [&str; 4] = ["/", "/dashboard", "/dashboard/app.js", "/dashboard/app.css"];

/// Adds the dashboard's own paths (all but `/`) to the process's routes.
pub fn add_to(routes: Route) -> Route {
    routes
        .at(PATHS[1], asset(PAGE, "text/html; charset=utf-8"))
        .at(PATHS[2], asset(SCRIPT, "text/javascript; charset=utf-8"))
        .at(PATHS[3], asset(STYLE, "text/css; charset=utf-8"))
}

/// `/` is the dashboard too. The REST API is nested at `/`, which takes
/// that path in poem's router, so the page is answered before the routes,
/// and names its route as the router would (for metrics and spans).
pub async fn front_page<E: Endpoint>(routes: Arc<E>, request: Request) -> poem::Result<Response> {
    if request.uri().path() != PATHS[0] {
        return routes.call(request).await.map(IntoResponse::into_response);
    }
    let root = || PathPattern(Arc::from("/"));
    match *request.method() {
        Method::GET | Method::HEAD => {
            let mut page = asset(PAGE, "text/html; charset=utf-8")
                .call(request)
                .await?;
            page.set_data(root());
            Ok(page)
        }
        _ => {
            let mut refused = poem::Error::from(MethodNotAllowedError);
            refused.set_data(root());
            Err(refused)
        }
    }
}

fn asset(body: &'static str, content_type: &'static str) -> impl Endpoint<Output = Response> {
    make_sync(move |_| {
        body.with_content_type(content_type)
            .with_header(header::CONTENT_SECURITY_POLICY, POLICY)
            .with_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .with_header(header::REFERRER_POLICY, "no-referrer")
            .with_header(header::CACHE_CONTROL, "no-cache")
            .into_response()
    })
}
