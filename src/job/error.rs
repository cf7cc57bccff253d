//! A failed attempt at a receipt job, in the terms the queue acts on.

use std::error::Error as StdError;

/// The `failedReason` of a job a client cancelled while it ran.
pub const CANCELLED_REASON: &str = "cancelled by a client";

type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// Why an attempt failed, and so what the queue should do next.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The input can never be read: fail the job now, no retries.
    #[error("{reason}")]
    Permanent {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
    /// Something outside the input failed (database, blob store, a crashed
    /// worker): retry with backoff while attempts remain.
    #[error("{reason}")]
    Retry {
        reason: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl JobError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
            cause: None,
        }
    }

    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            reason: reason.into(),
            cause: None,
        }
    }

    /// A permanent failure whose message is `cause`'s, keeping it as source.
    pub fn permanent_from(cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::Permanent {
            reason: cause.to_string(),
            cause: Some(Box::new(cause)),
        }
    }

    /// A retryable failure whose message is `cause`'s, keeping it as source.
    pub fn retry_from(cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::Retry {
            reason: cause.to_string(),
            cause: Some(Box::new(cause)),
        }
    }

    /// The failure of a job a client cancelled: final, nothing to record.
    pub fn cancelled() -> Self {
        Self::permanent(CANCELLED_REASON)
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }

    /// The reason shown to clients as `failedReason`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Permanent { reason, .. } | Self::Retry { reason, .. } => reason,
        }
    }
}
