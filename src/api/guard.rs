//! Checks every API request passes before any handler runs: who is calling
//! (API keys, compared in constant time), the body's size, its share of
//! the bytes the process takes in at once, how long it may take to arrive,
//! and the JSON shape (with `Allow` on a 405) of errors poem raises itself.

use std::sync::Arc;
use std::time::Duration;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tokio::sync::Semaphore;

use super::errors::{self, ErrorCode, poem_error_to_json};
use super::methods::AllowedMethods;
use crate::config::{ApiKeys, HttpSettings};
use crate::jobs::Caller;

/// Multipart framing around the file: boundaries, headers, small fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// What a busy server asks clients to wait before retrying (s).
const RETRY_AFTER_SECONDS: u64 = 2;

pub struct RequestGuard {
    body_limit: usize,
    upload_limit: usize,
    body_timeout: Duration,
    api_keys: ApiKeys,
    /// One permit per request-body byte the process may hold at once.
    bytes_in_flight: Arc<Semaphore>,
    bytes_in_flight_limit: usize,
    allowed: AllowedMethods,
}

impl RequestGuard {
    pub fn new(settings: &HttpSettings, allowed: AllowedMethods) -> Self {
        let limit = settings.limits.max_body_bytes_in_flight;
        Self {
            body_limit: settings.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD),
            upload_limit: settings.max_upload_bytes,
            body_timeout: settings.limits.body_timeout,
            api_keys: settings.api_keys.clone(),
            bytes_in_flight: Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))),
            bytes_in_flight_limit: limit,
            allowed,
        }
    }

    pub async fn check<E: Endpoint>(
        &self,
        endpoint: Arc<E>,
        mut request: Request,
    ) -> poem::Result<Response> {
        match self.caller(&request) {
            Identity::Caller(caller) => {
                request.extensions_mut().insert(caller);
            }
            Identity::NotNeeded => {}
            Identity::Refused => return Ok(errors::unauthorized()),
        }
        let declared = request
            .header(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|length| length > self.body_limit) {
            return Ok(errors::too_large(self.upload_limit));
        }
        // A body of unknown length may grow to the limit: reserve that.
        // (Chunked in HTTP/1.1; in HTTP/2 any body without a declared
        // length. One known to be empty, as a GET's, reserves nothing.)
        let body = request.take_body();
        let reserve = declared.unwrap_or(if body.is_empty() { 0 } else { self.body_limit });
        let Some(_reservation) = self.reserve(reserve) else {
            return Ok(self.busy());
        };
        // Read the body here with a hard cap and a deadline, so an
        // oversized or dribbled upload is refused before it holds anything
        // past the limit or for longer than the timeout.
        let body = body.into_bytes_limit(self.body_limit);
        match tokio::time::timeout(self.body_timeout, body).await {
            Ok(Ok(bytes)) => {
                if let Some(body_read) = request.extensions().get::<crate::server::BodyRead>() {
                    body_read.mark();
                }
                request.set_body(bytes);
            }
            Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => {
                return Ok(errors::too_large(self.upload_limit));
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Ok(self.too_slow()),
        }
        let path = request.uri().path().to_string();
        let upload = path == "/api/upload";
        match endpoint.call(request).await {
            Ok(response) => Ok(response.into_response()),
            Err(error) if error.status() == StatusCode::METHOD_NOT_ALLOWED => {
                let mut response = poem_error_to_json(error, upload);
                if let Some(allow) = self.allowed.for_path(&path)
                    && let Ok(value) = HeaderValue::from_str(allow)
                {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                Ok(response)
            }
            Err(error) => Ok(poem_error_to_json(error, upload)),
        }
    }

    /// Who is calling.
    fn caller(&self, request: &Request) -> Identity {
        if self.api_keys.is_open() {
            return Identity::Caller(Caller::open());
        }
        let key = request
            .header("x-api-key")
            .and_then(|key| self.api_keys.identify(key));
        match key {
            Some(key) => Identity::Caller(Caller::with_key(key, &self.api_keys)),
            None if needs_key(request) => Identity::Refused,
            None => Identity::NotNeeded,
        }
    }

    fn reserve(&self, bytes: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // At most the whole budget (a request larger than that is refused
        // by the body limit first); an empty body reserves nothing.
        let bytes = u32::try_from(bytes.min(self.bytes_in_flight_limit)).unwrap_or(u32::MAX);
        self.bytes_in_flight.try_acquire_many(bytes).ok()
    }

    fn busy(&self) -> Response {
        let mut response = ErrorCode::ServerBusy.response(format!(
            "The server is already taking in {} bytes of requests (MAX_UPLOAD_BYTES_IN_FLIGHT). Retry after {RETRY_AFTER_SECONDS} s.",
            self.bytes_in_flight_limit
        ));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        response
    }

    fn too_slow(&self) -> Response {
        let mut response = ErrorCode::RequestTimeout.response(format!(
            "The request body did not arrive within {} ms (HTTP_BODY_TIMEOUT_MS). Send it again on a faster connection.",
            self.body_timeout.as_millis()
        ));
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

enum Identity {
    Caller(Caller),
    /// Health, metrics, docs and the query page: open, they serve no receipt.
    NotNeeded,
    /// A key is needed and none valid was sent.
    Refused,
}

/// `/api/*` and `POST /graphql` need a key when keys are on; GET /graphql
/// is only the query page. A browser cannot set headers on a WebSocket, so
/// the `/graphql/ws` upgrade may come without a key (the socket then wants
/// one in `connection_init`); a key sent on the upgrade must be valid.
fn needs_key(request: &Request) -> bool {
    let path = request.uri().path();
    let graphql = path == "/graphql" && request.method() == "POST"
        || path == "/graphql/ws" && request.header("x-api-key").is_some();
    path.starts_with("/api/") || graphql
}
