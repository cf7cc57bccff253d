//! A failed attempt at a receipt job, in the terms the queue acts on.

use std::error::Error as StdError;

/// The `failedReason` of a job a client cancelled while it ran.
pub const CANCELLED_REASON: &str = "cancelled by a client";

type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of thing went wrong, for metrics and traces (`reason` and
/// `error.type`): a small fixed set, unlike the reasons themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The image cannot be read (corrupt, truncated, too large).
    BadImage,
    /// The image is not in the blob store.
    ImageMissing,
    /// A read took longer than JOB_TIMEOUT_MS.
    Timeout,
    /// The OCR worker crashed, or the pool was not running.
    WorkerCrash,
    /// An OCR engine failed while reading.
    OcrEngine,
    /// PostgreSQL failed.
    Database,
    /// The blob store failed.
    BlobStore,
    /// A client cancelled the job.
    Cancelled,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadImage => "bad_image",
            Self::ImageMissing => "image_missing",
            Self::Timeout => "timeout",
            Self::WorkerCrash => "worker_crash",
            Self::OcrEngine => "ocr_engine",
            Self::Database => "database",
            Self::BlobStore => "blob_store",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why an attempt failed, and so what the queue should do next.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input can never be read: fail the job now, no retries.
    #[error("{reason}")]
    Permanent {
        class: FailureClass,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
    /// Something outside the input failed (database, blob store, a crashed
    /// worker): retry with backoff while attempts remain.
    #[error("{reason}")]
    Retry {
        class: FailureClass,
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl JobError {
    pub fn permanent(class: FailureClass, reason: impl Into<String>) -> Self {
        Self::Permanent {
            class,
            reason: reason.into(),
            cause: None,
        }
    }

    pub fn retry(class: FailureClass, reason: impl Into<String>) -> Self {
        Self::Retry {
            class,
            reason: reason.into(),
            cause: None,
        }
    }

    /// A permanent failure whose message is `cause`'s, keeping it as source.
    pub fn permanent_from(
        class: FailureClass,
        cause: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Permanent {
            class,
            reason: cause.to_string(),
            cause: Some(Box::new(cause)),
        }
    }

    /// A retryable failure whose message is `cause`'s, keeping it as source.
    pub fn retry_from(class: FailureClass, cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::Retry {
            class,
            reason: cause.to_string(),
            cause: Some(Box::new(cause)),
        }
    }

    /// The failure of a job a client cancelled: final, nothing to record.
    pub fn cancelled() -> Self {
        Self::permanent(FailureClass::Cancelled, CANCELLED_REASON)
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }

    pub fn class(&self) -> FailureClass {
        match self {
            Self::Permanent { class, .. } | Self::Retry { class, .. } => *class,
        }
    }

    /// The reason shown to clients as `failedReason`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Permanent { reason, .. } | Self::Retry { reason, .. } => reason,
        }
    }
}
