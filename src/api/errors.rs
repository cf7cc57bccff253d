//! One mapping from service errors to HTTP: status, a stable `error` code
//! and a `message` that says what to do. Also the JSON answer for errors
//! raised by poem itself (bad multipart, unknown route) so that no client
//! ever sees a bare text error.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::jobs::ServiceError;

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `no_file`, `not_found`.
    pub error: String,
    /// What happened and what to do about it.
    pub message: String,
}

#[derive(ApiResponse, Debug)]
pub enum ApiError {
    /// The request is malformed: no file, an empty file.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// An API key is required (`X-Api-Key`) and was missing or wrong.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such job or receipt.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The upload is larger than MAX_UPLOAD_BYTES.
    #[oai(status = 413)]
    TooLarge(Json<ErrorBody>),
    /// The file is not an image we read.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Redis, PostgreSQL or the blob store is unreachable; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: &str, message: impl ToString) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: code.to_string(),
        message: message.to_string(),
    })
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::NoFile => Self::BadRequest(body("no_file", message)),
            ServiceError::EmptyFile => Self::BadRequest(body("empty_file", message)),
            ServiceError::TooLarge { .. } => Self::TooLarge(body("file_too_large", message)),
            ServiceError::UnsupportedType => {
                Self::UnsupportedMediaType(body("unsupported_media_type", message))
            }
            ServiceError::JobNotFound(_) | ServiceError::ReceiptNotFound(_) => {
                Self::NotFound(body("not_found", message))
            }
            ServiceError::Redis(_) => Self::Unavailable(body("redis_unavailable", message)),
            ServiceError::Database(_) => Self::Unavailable(body("database_unavailable", message)),
            ServiceError::Blobs(_) => Self::Unavailable(body("blob_store_unavailable", message)),
            ServiceError::Interrupted(_) => Self::Unavailable(body("interrupted", message)),
        }
    }
}

impl ApiError {
    pub fn unauthorized() -> Self {
        Self::Unauthorized(body(
            "unauthorized",
            "Send a valid API key in the `X-Api-Key` header (the server's API_KEYS).",
        ))
    }

    pub fn too_large(limit: usize) -> Self {
        Self::TooLarge(body(
            "file_too_large",
            format!(
                "The request is larger than the {limit}-byte limit (MAX_UPLOAD_BYTES). Send a smaller or compressed image."
            ),
        ))
    }
}

/// Turn any error poem raised before our handlers ran into our JSON shape.
/// `upload` says the request was `POST /api/upload`, where a body poem
/// cannot parse means the client sent no file the way we take it.
pub fn poem_error_to_json(error: poem::Error, upload: bool) -> Response {
    if error.is_from_response() {
        // Already one of our `ApiError` answers.
        return error.into_response();
    }
    let status = match error.status() {
        // poem-openapi's answer to a body that is not multipart/form-data.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if upload => StatusCode::BAD_REQUEST,
        other => other,
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "file_too_large",
        StatusCode::BAD_REQUEST if upload => "no_file",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    };
    let message = match status {
        StatusCode::NOT_FOUND => "No such endpoint. See /docs for the API.".to_string(),
        StatusCode::BAD_REQUEST if upload => format!(
            "{error}. Upload with `curl -F file=@receipt.jpg …/api/upload` (multipart/form-data, field `file`)."
        ),
        _ => format!("{error}. See /docs for the API."),
    };
    let mut response = poem::web::Json(ErrorBody {
        error: code.to_string(),
        message,
    })
    .into_response();
    response.set_status(status);
    response
}

/// The errors `POST /api/upload` can answer (documented per endpoint).
#[derive(ApiResponse, Debug)]
pub enum UploadError {
    /// No file field, an empty file, or a body that is not multipart/form-data.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// An API key is required (`X-Api-Key`) and was missing or wrong.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The upload is larger than MAX_UPLOAD_BYTES.
    #[oai(status = 413)]
    TooLarge(Json<ErrorBody>),
    /// The file is not a JPEG, PNG, TIFF, WebP, BMP or GIF (by its content).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Redis, PostgreSQL or the blob store is unreachable; nothing was stored.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ServiceError> for UploadError {
    fn from(e: ServiceError) -> Self {
        match ApiError::from(e) {
            // An upload never looks anything up, so never answers 404.
            ApiError::BadRequest(b) | ApiError::NotFound(b) => Self::BadRequest(b),
            ApiError::Unauthorized(b) => Self::Unauthorized(b),
            ApiError::TooLarge(b) => Self::TooLarge(b),
            ApiError::UnsupportedMediaType(b) => Self::UnsupportedMediaType(b),
            ApiError::Unavailable(b) => Self::Unavailable(b),
        }
    }
}

/// The errors of reading a job or a receipt.
#[derive(ApiResponse, Debug)]
pub enum LookupError {
    /// An API key is required (`X-Api-Key`) and was missing or wrong.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// No such job or receipt.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Redis and PostgreSQL could not answer; retry later.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ServiceError> for LookupError {
    fn from(e: ServiceError) -> Self {
        match ApiError::from(e) {
            ApiError::Unauthorized(b) => Self::Unauthorized(b),
            ApiError::NotFound(b) => Self::NotFound(b),
            // Lookups take no body: only a dependency can fail them.
            ApiError::BadRequest(b)
            | ApiError::TooLarge(b)
            | ApiError::UnsupportedMediaType(b)
            | ApiError::Unavailable(b) => Self::Unavailable(b),
        }
    }
}

/// The answer of a failed readiness probe.
#[derive(ApiResponse, Debug)]
pub enum NotReady {
    /// Redis or PostgreSQL does not answer; the message says which.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ServiceError> for NotReady {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        Self::Unavailable(body("not_ready", message))
    }
}
