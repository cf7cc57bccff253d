//! Which process exports the queue-wide series (`bullmq_job_count`,
//! `bullmq_job_completed_total`, `bullmq_job_failed_total`): one per queue
//! at a time, the holder of a lease in Redis
//! (`<prefix>:<queue>:receipt-ocr:lock:queue-metrics`). Every process
//! serves its own series; only the holder adds these, so a sum over all
//! scraped processes counts each job once. A holder that dies is replaced
//! within [`LEASE`] plus [`RENEW_EVERY`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::QueueHandle;

/// How long the lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the holder renews it and the others try to take it.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// This process's view of the lease; cheap to clone. The renewing task
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct QueueMetricsLease(Arc<Lease>);

struct Lease {
    held: Arc<AtomicBool>,
    renewing: JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewing.abort();
    }
}

impl QueueMetricsLease {
    /// Start competing for the lease (the first try is immediate).
    pub fn start(queue: QueueHandle) -> Self {
        let held = Arc::new(AtomicBool::new(false));
        let owner = uuid::Uuid::new_v4().to_string();
        let flag = held.clone();
        let renewing = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RENEW_EVERY);
            loop {
                ticks.tick().await;
                // Redis down: nobody can claim to hold it.
                let holds = queue.try_lock("queue-metrics", &owner, LEASE).await;
                flag.store(holds.unwrap_or(false), Ordering::SeqCst);
            }
        });
        Self(Arc::new(Lease { held, renewing }))
    }

    /// True while this process is the one that exports the queue series.
    pub fn is_held(&self) -> bool {
        self.0.held.load(Ordering::SeqCst)
    }
}
