//! The BullMQ worker's events. The worker queues every event on an
//! unbounded channel, so something must read them or memory grows with each
//! job; we also act on them: a job BullMQ fails for good on its own (too
//! many stalls, say) gets its receipt row marked failed, as our processor
//! does for the failures it sees.

use std::sync::Arc;

use bullmq::worker::WorkerEvent;
use bullmq::{JobState, Queue, Worker};
use tokio::task::JoinHandle;

use crate::store::Db;

/// Read `worker`'s events until it closes.
pub fn drain(worker: Arc<Worker>, queue: Queue, db: Db) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = worker.next_event().await {
            match event {
                WorkerEvent::Failed { job_id, error } => {
                    record_final_failure(&queue, &db, &job_id, &error).await
                }
                WorkerEvent::Stalled { job_id } => {
                    tracing::warn!(job_id, "job stalled (its worker died?); BullMQ retries it")
                }
                WorkerEvent::Error(error) => tracing::warn!(%error, "BullMQ worker error"),
                WorkerEvent::Closed => break,
                _ => {}
            }
        }
    })
}

/// BullMQ reports every failed attempt; only a job now in the failed set
/// has failed for good.
async fn record_final_failure(queue: &Queue, db: &Db, job_id: &str, error: &str) {
    if !matches!(queue.get_job_state(job_id).await, Ok(JobState::Failed)) {
        return;
    }
    if let Err(e) = db.mark_job_failed(job_id, error).await {
        tracing::warn!(job_id, error = %e, "could not record the job's failure on its receipt");
    }
}
