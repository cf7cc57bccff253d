//! The supervision tree that runs the queue and the OCR workers:
//!
//! ```text
//! Supervisor
//!  ├── QueueActor        BullMQ on Redis: enqueue, lookups; in worker mode it
//!  │                     runs the BullMQ worker loop (fetch, lock renewal,
//!  │                     complete, fail) and hands each job to the pool
//!  ├── RateLimiterActor  the global job-start limit, kept in Redis
//!  └── OcrWorker × N     one Tesseract each; restarted when one fails
//! ```

pub mod ocr_pool;
pub mod ocr_worker;
pub mod queue;
pub mod rate_limiter;
pub mod supervisor;
pub mod worker_events;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use queue::{QueueHandle, QueueMessage};
pub use supervisor::{Supervisor, SupervisorArgs};

/// The data of one OCR job, as stored in the BullMQ job hash. Field names
/// are the seed's, so Node producers can enqueue jobs we process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OcrJobData {
    pub receipt_id: Uuid,
    pub blob_key: String,
    pub content_type: String,
    /// W3C trace context of the upload, so the worker continues its trace.
    /// Absent in jobs from producers that do not trace.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub trace_context: HashMap<String, String>,
}

/// Why reading a receipt failed, in the terms the queue acts on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// The input can never be read: fail the job now, no retries.
    #[error("{0}")]
    Permanent(String),
    /// Something outside the input failed (database, blob store): retry.
    #[error("{0}")]
    Transient(String),
}
