//! Following one job live: its status now, then each change the queue's
//! events stream reports (every progress step, every state), until a final
//! state. The subscription is taken before the status is read, so nothing
//! between the two is missed, and a job already final when the client
//! subscribes answers that state and ends.

use std::time::Duration;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{Caller, JobStatusView, ReceiptService, ServiceError};
use crate::job::JobState;
use crate::live::{JobEvent, JobEventKind, Subscription};
use crate::pauses::Pauses;

/// How long a followed job's status is read again while a dependency does
/// not answer.
const READ_PATIENCE: Duration = Duration::from_secs(30);

/// One update of a followed job.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveUpdate {
    /// The events-stream entry it came from (`<unix ms>-<n>`); `None` for
    /// the status read when the client subscribed.
    pub event_id: Option<String>,
    pub status: JobStatusView,
}

impl ReceiptService {
    /// The job's status now, then each change, ending after a final state.
    /// An unknown job or a dependency down is an error here, before any
    /// update.
    pub async fn watch_job(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<impl Stream<Item = LiveUpdate> + use<>, ServiceError> {
        // Checked first, so an unknown id takes no subscription.
        if !crate::job::is_plausible_job_id(job_id) {
            return Err(ServiceError::JobNotFound(job_id.to_string()));
        }
        let subscription = self.live.subscribe(job_id).await?;
        let status = self.job_status(caller, job_id).await?;
        let watch = JobWatch {
            caller: caller.clone(),
            service: self.clone(),
            job_id: job_id.to_string(),
            subscription,
            first: Some(status.clone()),
            last: status,
            finished: false,
        };
        Ok(futures::stream::unfold(watch, |mut watch| async move {
            let next = watch.next_update().await?;
            Some((next, watch))
        }))
    }
}

struct JobWatch {
    caller: Caller,
    service: ReceiptService,
    job_id: String,
    subscription: Subscription,
    /// The status read at subscription, not yet sent.
    first: Option<JobStatusView>,
    last: JobStatusView,
    finished: bool,
}

impl JobWatch {
    async fn next_update(&mut self) -> Option<LiveUpdate> {
        if let Some(status) = self.first.take() {
            self.finished = status.state.is_final();
            return Some(LiveUpdate {
                event_id: None,
                status,
            });
        }
        while !self.finished {
            // A read that keeps failing ends the stream (a client that
            // follows again reads afresh) rather than leave it open with
            // nothing more to come.
            let (event_id, status) = match self.subscription.recv().await {
                Ok(event) if event.kind == JobEventKind::Settled => {
                    (Some(event.id), Some(self.read_again().await?))
                }
                Ok(event) => (Some(event.id.clone()), self.apply(&event)),
                // Fell behind: the status now is all that can be told.
                Err(RecvError::Lagged(_)) => (None, Some(self.read_again().await?)),
                Err(RecvError::Closed) => return None,
            };
            let Some(status) = status else { continue };
            if status == self.last {
                continue;
            }
            self.finished = status.state.is_final();
            self.last = status.clone();
            return Some(LiveUpdate { event_id, status });
        }
        None
    }

    /// The status after `event` (not `Settled`, which is read again), or
    /// `None` when it tells nothing new (an entry older than the status
    /// read at subscription, say).
    fn apply(&self, event: &JobEvent) -> Option<JobStatusView> {
        let last = &self.last;
        let mut next = last.clone();
        match event.kind {
            JobEventKind::Progress(percent) => {
                // Within an attempt progress only rises: a lower one is old.
                if last.state == JobState::Active && u32::from(percent) <= last.progress {
                    return None;
                }
                next.state = JobState::Active;
                next.progress = u32::from(percent);
            }
            JobEventKind::Active if last.state != JobState::Active => {
                // A new attempt starts from nothing.
                next.state = JobState::Active;
                next.progress = 0;
            }
            JobEventKind::Waiting if last.state != JobState::Waiting => {
                next.state = JobState::Waiting;
            }
            JobEventKind::Delayed if last.state != JobState::Delayed => {
                next.state = JobState::Delayed;
            }
            _ => return None,
        }
        Some(next)
    }

    /// The job as the service answers it now (with its result or reason),
    /// read again for up to [`READ_PATIENCE`] while a dependency does not
    /// answer; `None` once it gives up or the job is gone.
    async fn read_again(&self) -> Option<JobStatusView> {
        let mut pauses = Pauses::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            READ_PATIENCE,
        );
        loop {
            match self.service.job_status(&self.caller, &self.job_id).await {
                Ok(status) => return Some(status),
                Err(e) if pauses.next_fits() && e.is_outage() => {
                    tracing::debug!(job_id = self.job_id, error = %e, "reading a followed job again");
                }
                Err(e) => {
                    tracing::warn!(job_id = self.job_id, error = %e, "could not read a followed job; ending its stream");
                    return None;
                }
            }
            pauses.sleep().await;
        }
    }
}
