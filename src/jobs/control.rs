//! The service functions that look at and steer the queue as a whole:
//! its overview, pause and resume, and why a waiting job waits.

use super::{Caller, JobStatusView, QueueView, ReceiptService, ServiceError};
use crate::job::JobState;

impl ReceiptService {
    /// Counts per state, pause, the rate limit in force and the workers.
    pub async fn queue_overview(&self) -> Result<QueueView, ServiceError> {
        let overview = self.queue.overview().await?;
        Ok(QueueView::from_overview(&overview))
    }

    /// Stop all workers, in every process, from starting jobs; uploads are
    /// still accepted and wait. Idempotent.
    pub async fn pause_queue(&self, caller: &Caller) -> Result<QueueView, ServiceError> {
        check_may_steer(caller)?;
        self.queue.pause().await?;
        self.queue_overview().await
    }

    /// Let workers start jobs again. Idempotent.
    pub async fn resume_queue(&self, caller: &Caller) -> Result<QueueView, ServiceError> {
        check_may_steer(caller)?;
        self.queue.resume().await?;
        self.queue_overview().await
    }

    /// Add why a waiting job is held, when the queue holds it. Best effort:
    /// a status is still answered if Redis cannot say.
    pub(super) async fn with_waiting_reason(&self, mut status: JobStatusView) -> JobStatusView {
        if matches!(status.state, JobState::Waiting | JobState::Prioritized) {
            status.waiting_reason = self.queue.waiting_reason().await.ok().flatten();
        }
        status
    }
}

fn check_may_steer(caller: &Caller) -> Result<(), ServiceError> {
    if caller.may_steer_queue() {
        return Ok(());
    }
    Err(ServiceError::Forbidden(
        "Pausing and resuming the queue needs an admin key (an API_KEYS entry `name:key:admin`).",
    ))
}
