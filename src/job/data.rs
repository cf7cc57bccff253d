//! The data of one receipt job, as stored in the BullMQ job hash.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::telemetry::propagation::TraceContext;

/// BullMQ's job name for our jobs (the seed's).
pub const JOB_NAME: &str = "process-receipt";

/// Field names are the seed's, so Node producers can enqueue jobs we process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptJobData {
    pub receipt_id: Uuid,
    pub blob_key: String,
    pub content_type: String,
    /// W3C trace context of the upload, so the worker continues its trace.
    /// Absent in jobs from producers that do not trace.
    #[serde(default, skip_serializing_if = "TraceContext::is_empty")]
    pub trace_context: TraceContext,
    /// The receipt's run this job is (0 for the upload's, one more per
    /// retry; absent, so 0, in a Node producer's job): its failure is
    /// recorded only while the row is on this run.
    #[serde(default, skip_serializing_if = "is_first_run")]
    pub run: u32,
}

/// A run no receipt is past: a failure recorded on it applies to whatever
/// run the row is on (for a job whose run is not known any more).
pub const LATEST_RUN: u32 = u32::MAX;

fn is_first_run(run: &u32) -> bool {
    *run == 0
}
