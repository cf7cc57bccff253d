//! What a webhook says: the Standard Webhooks envelope `{type, timestamp,
//! data}` around the job's final state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{JobState, ReceiptResult};

/// The final events of a receipt's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "receipt.completed")]
    Completed,
    #[serde(rename = "receipt.failed")]
    Failed,
    #[serde(rename = "receipt.cancelled")]
    Cancelled,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "receipt.completed",
            Self::Failed => "receipt.failed",
            Self::Cancelled => "receipt.cancelled",
        }
    }

    fn state(self) -> JobState {
        match self {
            Self::Completed => JobState::Completed,
            Self::Failed => JobState::Failed,
            Self::Cancelled => JobState::Cancelled,
        }
    }
}

/// The body of every delivery of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// When the job reached its final state.
    pub timestamp: DateTime<Utc>,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    pub job_id: String,
    pub receipt_id: Uuid,
    pub state: JobState,
    /// The full result of a completed job, as `GET /api/job/{id}` gives it.
    pub result: Option<ReceiptResult>,
    /// Why a job failed.
    pub failed_reason: Option<String>,
}

impl WebhookPayload {
    pub fn completed(job_id: &str, result: ReceiptResult) -> Self {
        Self::new(
            EventKind::Completed,
            job_id,
            result.receipt_id,
            Some(result),
            None,
        )
    }

    pub fn failed(job_id: &str, receipt_id: Uuid, reason: &str) -> Self {
        let reason = Some(reason.to_string());
        Self::new(EventKind::Failed, job_id, receipt_id, None, reason)
    }

    pub fn cancelled(job_id: &str, receipt_id: Uuid) -> Self {
        Self::new(EventKind::Cancelled, job_id, receipt_id, None, None)
    }

    fn new(
        kind: EventKind,
        job_id: &str,
        receipt_id: Uuid,
        result: Option<ReceiptResult>,
        failed_reason: Option<String>,
    ) -> Self {
        Self {
            kind,
            timestamp: Utc::now(),
            data: EventData {
                job_id: job_id.to_string(),
                receipt_id,
                state: kind.state(),
                result,
                failed_reason,
            },
        }
    }
}
