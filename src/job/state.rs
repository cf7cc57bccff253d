//! The typed states of a job (as BullMQ reports it) and of its receipt row.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A state name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state `{0}`")]
pub struct UnknownState(pub String);

/// A job's state as clients see it: BullMQ's states, plus `unknown` when
/// neither Redis nor the receipt row can place it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    poem_openapi::Enum,
    async_graphql::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
#[graphql(rename_items = "lowercase")]
pub enum JobState {
    Waiting,
    Active,
    Delayed,
    Prioritized,
    Completed,
    Failed,
    /// Cancelled by a client; its receipt row says when.
    Cancelled,
    Unknown,
}

impl JobState {
    const ALL: [JobState; 8] = [
        Self::Waiting,
        Self::Active,
        Self::Delayed,
        Self::Prioritized,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Active => "active",
            Self::Delayed => "delayed",
            Self::Prioritized => "prioritized",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    /// Completed, failed or cancelled: the job will not change any more
    /// (unless a client retries it).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// Where a receipt is in its life; the row's `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    Queued,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

impl ReceiptStatus {
    const ALL: [ReceiptStatus; 5] = [
        Self::Queued,
        Self::Processing,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// `queued` or `processing`, as the rows spell them.
    pub const UNFINISHED: [&'static str; 2] = [Self::Queued.as_str(), Self::Processing.as_str()];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Completed, failed or cancelled: only a retry changes the row now.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// `Display` and `FromStr` through `as_str`, so the two can never disagree.
macro_rules! named_states {
    ($($state:ty),*) => {$(
        impl fmt::Display for $state {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $state {
            type Err = UnknownState;

            fn from_str(raw: &str) -> Result<Self, UnknownState> {
                Self::ALL
                    .into_iter()
                    .find(|state| state.as_str() == raw)
                    .ok_or_else(|| UnknownState(raw.to_string()))
            }
        }
    )*};
}

named_states!(JobState, ReceiptStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_parses_back_from_its_name() {
        for state in JobState::ALL {
            assert_eq!(state.to_string().parse::<JobState>(), Ok(state));
        }
        for status in ReceiptStatus::ALL {
            assert_eq!(status.to_string().parse::<ReceiptStatus>(), Ok(status));
        }
    }

    #[test]
    fn an_unknown_receipt_status_is_an_error_not_queued() {
        assert_eq!(
            "archived".parse::<ReceiptStatus>(),
            Err(UnknownState("archived".into()))
        );
    }

    #[test]
    fn states_serialise_as_their_lowercase_names() {
        let json = serde_json::to_string(&JobState::Prioritized).expect("serialises");
        assert_eq!(json, "\"prioritized\"");
    }
}
