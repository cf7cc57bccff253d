//! One mapping from service errors to HTTP and GraphQL: each error gets a
//! typed [`ErrorCode`], which fixes its status and its stable `error`
//! string, and a `message` that says what to do. Also the JSON answer for
//! errors raised by poem itself (bad multipart, unknown route) so that no
//! client ever sees a bare text error.

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

/// Every error a client can see, with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NoFile,
    EmptyFile,
    InvalidField,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    ImageRemoved,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    FileTooLarge,
    ImageTooLarge,
    UriTooLong,
    HeadersTooLarge,
    UnsupportedMediaType,
    TooManyPages,
    TooManyFiles,
    EncryptedPdf,
    UnreadablePdf,
    CorruptImage,
    ConverterUnavailable,
    ServerBusy,
    RedisUnavailable,
    DatabaseUnavailable,
    BlobStoreUnavailable,
    Interrupted,
    NotReady,
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoFile => "no_file",
            Self::EmptyFile => "empty_file",
            Self::InvalidField => "invalid_field",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::ImageRemoved => "image_removed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "request_timeout",
            Self::Conflict => "conflict",
            Self::FileTooLarge => "file_too_large",
            Self::ImageTooLarge => "image_too_large",
            Self::UriTooLong => "uri_too_long",
            Self::HeadersTooLarge => "request_header_fields_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyPages => "too_many_pages",
            Self::TooManyFiles => "too_many_files",
            Self::EncryptedPdf => "encrypted_pdf",
            Self::UnreadablePdf => "unreadable_pdf",
            Self::CorruptImage => "corrupt_image",
            Self::ConverterUnavailable => "converter_unavailable",
            Self::ServerBusy => "server_busy",
            Self::RedisUnavailable => "redis_unavailable",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::BlobStoreUnavailable => "blob_store_unavailable",
            Self::Interrupted => "interrupted",
            Self::NotReady => "not_ready",
            Self::InternalError => "internal_error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::NoFile | Self::EmptyFile | Self::InvalidField | Self::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::ImageRemoved => StatusCode::GONE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Conflict => StatusCode::CONFLICT,
            Self::FileTooLarge | Self::ImageTooLarge | Self::TooManyPages | Self::TooManyFiles => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::EncryptedPdf | Self::UnreadablePdf | Self::CorruptImage => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ServerBusy
            | Self::RedisUnavailable
            | Self::DatabaseUnavailable
            | Self::BlobStoreUnavailable
            | Self::ConverterUnavailable
            | Self::Interrupted
            | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code of a service error: the one place that decides it.
    pub fn of(error: &ServiceError) -> Self {
        match error {
            ServiceError::NoFile => Self::NoFile,
            ServiceError::EmptyFile => Self::EmptyFile,
            ServiceError::InvalidField(_) => Self::InvalidField,
            ServiceError::TooLarge { .. } => Self::FileTooLarge,
            ServiceError::BadParameter { .. } => Self::BadRequest,
            ServiceError::UnsupportedType => Self::UnsupportedMediaType,
            ServiceError::Document(error) => Self::of_document(error),
            ServiceError::TooManyFiles { .. } => Self::TooManyFiles,
            ServiceError::JobNotFound(_)
            | ServiceError::ReceiptNotFound(_)
            | ServiceError::ImageMissing(_) => Self::NotFound,
            ServiceError::ImageRemoved(..) => Self::ImageRemoved,
            ServiceError::Conflict { .. } => Self::Conflict,
            ServiceError::Forbidden(_) => Self::Forbidden,
            ServiceError::Redis(_) => Self::RedisUnavailable,
            // Data we wrote but cannot read back is our fault, not an outage.
            ServiceError::Database(_) if !error.is_outage() => Self::InternalError,
            ServiceError::Database(_) => Self::DatabaseUnavailable,
            ServiceError::Blobs(_) => Self::BlobStoreUnavailable,
            ServiceError::Interrupted(_) => Self::Interrupted,
            ServiceError::Busy(_) => Self::ServerBusy,
        }
    }

    /// A PDF or photo refused at upload.
    fn of_document(error: &crate::inputs::InputError) -> Self {
        use crate::inputs::InputError;
        use crate::inputs::tool::ToolError;
        use crate::ocr::preprocess::PreprocessError;
        match error {
            InputError::Unsupported => Self::UnsupportedMediaType,
            InputError::Image(PreprocessError::TooManyPixels { .. })
            | InputError::PageTooLarge { .. } => Self::ImageTooLarge,
            InputError::Image(_) | InputError::Incomplete(_) => Self::CorruptImage,
            InputError::TooManyPages { .. } | InputError::TooManyImages { .. } => {
                Self::TooManyPages
            }
            InputError::EncryptedPdf => Self::EncryptedPdf,
            InputError::UnreadablePdf(_) | InputError::UnreadableHeif(_) => Self::UnreadablePdf,
            // Missing, or no room to work in: ours to fix, asking again may
            // work (a read is abandoned in a worker only, never at upload).
            InputError::Tool(ToolError::Missing { .. })
            | InputError::TempFile(_)
            | InputError::Abandoned => Self::ConverterUnavailable,
            // It ran and hung or flooded on this file: it will again (a
            // worker fails such a job for good too).
            InputError::Tool(_) => Self::UnreadablePdf,
        }
    }

    /// The whole HTTP answer for this code.
    pub fn response(self, message: impl ToString) -> Response {
        let mut response = poem::web::Json(self.body(message).0).into_response();
        response.set_status(self.status());
        response
    }

    pub fn body(self, message: impl ToString) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: self.as_str().to_string(),
            message: message.to_string(),
        })
    }
}

/// A service error as a client sees it: its code and message.
pub fn describe(error: &ServiceError) -> (ErrorCode, String) {
    if ErrorCode::of(error) == ErrorCode::InternalError {
        tracing::error!(%error, "internal error");
    }
    (ErrorCode::of(error), error.to_string())
}

/// An endpoint's error responses, each variant one status (documented per
/// endpoint in the OpenAPI document), built from the one mapping above.
macro_rules! endpoint_errors {
    ($(#[$meta:meta])* $name:ident { $($(#[doc = $doc:literal])* $status:literal => $variant:ident,)* }) => {
        $(#[$meta])*
        #[derive(ApiResponse, Debug)]
        pub enum $name {
            $($(#[doc = $doc])* #[oai(status = $status)] $variant(Json<ErrorBody>),)*
            /// Something failed on our side; the message says what.
            #[oai(status = 500)]
            Internal(Json<ErrorBody>),
        }

        impl From<ServiceError> for $name {
            fn from(error: ServiceError) -> Self {
                let (code, message) = describe(&error);
                let body = code.body(message);
                match code.status().as_u16() {
                    $($status => Self::$variant(body),)*
                    _ => Self::Internal(body),
                }
            }
        }
    };
}

endpoint_errors!(
    /// The errors `POST /api/upload` can answer.
    UploadError {
        /// No file field, an empty file, a body that is not multipart/form-data,
        /// or a bad or unknown field (`invalid_field`, the message names it),
        /// such as a `callbackUrl` that is not an http(s) URL of a public host.
        400 => BadRequest,
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// The upload is larger than MAX_UPLOAD_BYTES, its image (or a PDF
        /// page at 300 dpi) larger than MAX_IMAGE_PIXELS (`image_too_large`),
        /// a PDF longer than MAX_PDF_PAGES (`too_many_pages`), or more
        /// `file` fields than MAX_BATCH_FILES (`too_many_files`).
        413 => TooLarge,
        /// The file is not a JPEG, PNG, TIFF, WebP, BMP, GIF, PDF, HEIC or
        /// AVIF (by its content).
        415 => UnsupportedMediaType,
        /// A password-protected (`encrypted_pdf`) or unreadable
        /// (`unreadable_pdf`) PDF, or an image whose header cannot be read
        /// or a JPEG cut short (`corrupt_image`).
        422 => Unprocessable,
        /// Redis, PostgreSQL or the blob store is unreachable, or the server
        /// is taking in as many bytes as it may (`server_busy`, with
        /// `Retry-After`) or checking as many PDFs as it may
        /// (`server_busy`); nothing was stored.
        503 => Unavailable,
    }
);

endpoint_errors!(
    /// The errors of cancelling or retrying a job.
    JobControlError {
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// No such job.
        404 => NotFound,
        /// The job's state does not allow it; the message says the state.
        409 => Conflict,
        /// Redis or PostgreSQL could not answer; retry later.
        503 => Unavailable,
    }
);

endpoint_errors!(
    /// The errors of reading a job or a receipt.
    LookupError {
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// No such job or receipt.
        404 => NotFound,
        /// Redis and PostgreSQL could not answer; retry later.
        503 => Unavailable,
    }
);

endpoint_errors!(
    /// The errors of reading a receipt's uploaded file.
    ImageError {
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// No such receipt, or its file is missing from the blob store.
        404 => NotFound,
        /// The file was removed after IMAGE_KEEP_DAYS (`image_removed`); the
        /// receipt's fields stay.
        410 => Gone,
        /// PostgreSQL or the blob store could not answer; retry later.
        503 => Unavailable,
    }
);

endpoint_errors!(
    /// The errors of listing receipts.
    ListingError {
        /// A parameter is invalid; `message` names it.
        400 => BadRequest,
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// PostgreSQL could not answer; retry later.
        503 => Unavailable,
    }
);

endpoint_errors!(
    /// The errors of reading or steering the queue.
    QueueControlError {
        /// An API key is required (`X-Api-Key`) and was missing or wrong.
        401 => Unauthorized,
        /// Pausing or resuming needs an admin key once API keys are named.
        403 => Forbidden,
        /// Redis could not answer; nothing changed.
        503 => Unavailable,
    }
);

/// The answer of a failed readiness probe.
#[derive(ApiResponse, Debug)]
pub enum NotReady {
    /// Redis or PostgreSQL does not answer; the message says which.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ServiceError> for NotReady {
    fn from(e: ServiceError) -> Self {
        Self::Unavailable(ErrorCode::NotReady.body(e))
    }
}

/// 401 for a missing or wrong API key.
pub fn unauthorized() -> Response {
    let body = ErrorCode::Unauthorized
        .body("Send a valid API key in the `X-Api-Key` header (the server's API_KEYS).");
    UploadError::Unauthorized(body).into_response()
}

/// 413 for a request body over the limit, before it is read.
pub fn too_large(limit: usize) -> Response {
    let body = ErrorCode::FileTooLarge.body(format!(
        "The request is larger than the {limit}-byte limit (MAX_UPLOAD_BYTES). Send a smaller or compressed image."
    ));
    UploadError::TooLarge(body).into_response()
}

/// A GraphQL error carrying the same `code` REST would put in `error`. A
/// client's mistake (a 4xx in REST, but for keys) is also classified as
/// `BAD_USER_INPUT`, the label GraphQL tools read to tell it from a
/// resolver that failed.
pub fn graphql_error(error: ServiceError) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    let (code, message) = describe(&error);
    let clients_mistake = code.status().is_client_error()
        && !matches!(code, ErrorCode::Unauthorized | ErrorCode::Forbidden);
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code.as_str());
        if clients_mistake {
            ext.set("classification", "BAD_USER_INPUT");
        }
    })
}

/// Turn any error poem raised before our handlers ran into our JSON shape.
/// `upload` says the request was `POST /api/upload`, where a body poem
/// cannot parse means the client sent no file the way we take it.
pub fn poem_error_to_json(error: poem::Error, upload: bool) -> Response {
    if error.is_from_response() {
        // Already one of our answers.
        return error.into_response();
    }
    let status = match error.status() {
        // poem-openapi's answer to a body that is not multipart/form-data.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if upload => StatusCode::BAD_REQUEST,
        other => other,
    };
    if let Some(parse) = error.downcast_ref::<poem_openapi::error::ParseMultipartError>()
        && let Some(message) = bad_upload_field(&parse.reason)
    {
        return ErrorCode::InvalidField.response(message);
    }
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::FileTooLarge,
        StatusCode::BAD_REQUEST if upload => ErrorCode::NoFile,
        s if s.is_server_error() => ErrorCode::InternalError,
        _ => ErrorCode::BadRequest,
    };
    let message = match code {
        ErrorCode::NotFound => "No such endpoint. See /docs for the API.".to_string(),
        ErrorCode::NoFile => format!(
            "{error}. Upload with `curl -F file=@receipt.jpg …/api/upload` (multipart/form-data, field `file`)."
        ),
        _ => format!("{error}. See /docs for the API."),
    };
    let mut response = poem::web::Json(ErrorBody {
        error: code.as_str().to_string(),
        message,
    })
    .into_response();
    response.set_status(status);
    response
}

/// What to say of a multipart field of the upload poem-openapi could not
/// take, other than `file` (a missing or unreadable file is `no_file`): one
/// we do not take (deny_unknown_fields), or a text field sent twice or not
/// as UTF-8 text.
fn bad_upload_field(reason: &str) -> Option<String> {
    if reason.starts_with("unknown field") {
        return Some(format!(
            "{reason}: the upload takes `file`, `priority`, `delay`, `processAt` and `callbackUrl` only."
        ));
    }
    let field = reason.strip_prefix("failed to parse field `")?;
    let (field, _) = field.split_once('`')?;
    (field != "file").then(|| {
        format!("{reason}: send `{field}` at most once, as UTF-8 text (not as a file part).")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::InputError;
    use crate::inputs::tool::ToolError;

    #[test]
    fn a_clients_mistake_is_never_a_503() {
        for error in [
            ServiceError::NoFile,
            ServiceError::EmptyFile,
            ServiceError::TooLarge { size: 2, limit: 1 },
            ServiceError::UnsupportedType,
            ServiceError::JobNotFound("x".into()),
            ServiceError::ReceiptNotFound("x".into()),
            ServiceError::BadParameter {
                parameter: "limit",
                message: "x".into(),
            },
        ] {
            let status = ErrorCode::of(&error).status();
            assert!(status.is_client_error(), "{error}: {status}");
            let lookup = LookupError::from(error);
            assert!(!matches!(lookup, LookupError::Unavailable(_)), "{lookup:?}");
        }
    }

    #[tokio::test]
    async fn an_upload_whose_task_stopped_is_a_503_interrupted_saying_to_send_it_again() {
        let stopped = tokio::spawn(std::future::pending::<()>());
        stopped.abort();
        let error = ServiceError::Interrupted(stopped.await.unwrap_err());
        assert_eq!(ErrorCode::of(&error), ErrorCode::Interrupted);
        assert_eq!(
            ErrorCode::Interrupted.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(error.to_string().contains("send it again"), "{error}");
    }

    #[test]
    fn a_lookup_of_an_unknown_job_is_a_404_with_its_code() {
        match LookupError::from(ServiceError::JobNotFound("ocr-1".into())) {
            LookupError::NotFound(body) => assert_eq!(body.0.error, "not_found"),
            other => panic!("expected 404, got {other:?}"),
        }
    }

    fn code(error: InputError) -> ErrorCode {
        ErrorCode::of(&ServiceError::Document(error))
    }

    #[test]
    fn a_converter_that_hangs_or_floods_on_a_file_blames_the_file() {
        let timed_out = ToolError::TimedOut {
            program: "pdfinfo".into(),
            timeout: std::time::Duration::from_secs(60),
        };
        let flooded = ToolError::TooMuchOutput {
            program: "pdfinfo".into(),
            limit: 1 << 20,
        };
        assert_eq!(code(InputError::Tool(timed_out)), ErrorCode::UnreadablePdf);
        assert_eq!(code(InputError::Tool(flooded)), ErrorCode::UnreadablePdf);
        assert_eq!(
            ErrorCode::UnreadablePdf.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );

        let missing = ToolError::Missing {
            program: "pdfinfo".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            code(InputError::Tool(missing)),
            ErrorCode::ConverterUnavailable
        );
        let no_room = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(
            code(InputError::TempFile(no_room)),
            ErrorCode::ConverterUnavailable
        );
    }
}
