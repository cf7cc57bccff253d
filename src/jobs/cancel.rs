//! Cancelling and retrying a job. A cancelled receipt keeps its image (a
//! retry reads it again); its row says `cancelled` and when.

use super::{Caller, JobStatusView, ReceiptService, ServiceError};
use crate::job::{JobState, ReceiptJobData, ReceiptStatus, is_plausible_job_id};
use crate::queue::QueueError;
use crate::store::models::ReceiptRow;

/// What a 409 to a cancel says can be cancelled.
const CANCELLABLE: &str = "waiting, prioritized, delayed or active jobs can be cancelled";

impl ReceiptService {
    /// Cancel a job: a waiting, prioritized or delayed one leaves the queue
    /// at once; an active one is stopped by whichever worker process holds
    /// it at its next check. Cancelling a cancelled job changes nothing.
    pub async fn cancel_job(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<JobStatusView, ServiceError> {
        let status = self.job_status(caller, job_id).await?;
        let mut request = None;
        match status.state {
            JobState::Cancelled => {
                // Its row too: a retry may have claimed it (`queued`) an
                // instant ago while Redis still shows the job it replaces;
                // cancelled here, the retried job stops as it starts.
                self.outcomes.cancelled(job_id).await?;
                return Ok(status);
            }
            JobState::Completed | JobState::Failed => {
                return Err(ServiceError::Conflict {
                    job_id: job_id.to_string(),
                    state: status.state,
                    allowed: CANCELLABLE,
                });
            }
            JobState::Waiting | JobState::Prioritized | JobState::Delayed | JobState::Active => {
                // A job that became active since is no longer removable: the
                // request then stops it in its worker.
                if !self.queue.remove(job_id).await? {
                    request = Some(self.queue.request_cancel(job_id).await?);
                }
            }
            // The row is all that is left (Redis lost the job).
            JobState::Unknown => {}
        }
        if !self.outcomes.cancelled(job_id).await? {
            // The row was final already: cancelled by another request (or
            // the worker's event), or finished first (a save that committed
            // as the cancel came: its job completes, the cancel is late).
            let row = self.db.receipt_by_job_id(job_id).await?;
            let finished = match row.map(|stored| stored.status()).transpose()? {
                Some(ReceiptStatus::Completed) => Some(JobState::Completed),
                Some(ReceiptStatus::Failed) => Some(JobState::Failed),
                _ => None,
            };
            if let Some(state) = finished {
                // Too late: the job is not to be shown as being cancelled
                // (a request another client made since stays).
                if let Some(request) = &request {
                    self.queue.withdraw_cancel_request(job_id, request).await?;
                }
                return Err(ServiceError::Conflict {
                    job_id: job_id.to_string(),
                    state,
                    allowed: CANCELLABLE,
                });
            }
        }
        self.job_status(caller, job_id).await
    }

    /// Run a failed or cancelled job again, with fresh attempts; its
    /// receipt goes back to `queued`.
    pub async fn retry_job(
        &self,
        caller: &Caller,
        job_id: &str,
    ) -> Result<JobStatusView, ServiceError> {
        let not_found = || ServiceError::JobNotFound(job_id.to_string());
        if !is_plausible_job_id(job_id) {
            return Err(not_found());
        }
        let visible = async || {
            let stored = self.db.receipt_by_job_id(job_id).await?;
            let visible = stored.filter(|stored| caller.may_see(stored.row.owner.as_deref()));
            visible.ok_or_else(not_found)
        };
        let mut stored = visible().await?;
        if !stored.is_finished()?
            && let Some(job) = self.queue.lookup(job_id).await?
            && job.state == JobState::Failed
        {
            // BullMQ failed it for good an instant ago and the worker's
            // write to the row is on its way (or PostgreSQL was down then):
            // recorded here first, on the run that failed.
            self.outcomes.failed_in_queue(&job).await?;
            stored = visible().await?;
        }
        let state = self.job_status(caller, job_id).await?.state;
        let status = stored.status()?;
        if !matches!(status, ReceiptStatus::Failed | ReceiptStatus::Cancelled)
            || stored.row.image_removed_at.is_some()
        {
            return Err(ServiceError::Conflict {
                job_id: job_id.to_string(),
                state,
                allowed: RETRYABLE,
            });
        }
        let data = stored.row.job_data();
        // A worker still holding the job (a cancel it has not seen yet)
        // could save over the row once it is `queued` again: wait for it to
        // let go, the row untouched.
        if let Some(job) = self.queue.lookup(job_id).await?
            && job.state == JobState::Active
        {
            return Err(let_go_first(job_id, job.state));
        }
        // Then the row: of two retries at once one wins here, and only it
        // touches Redis.
        let Some(run) = self.db.requeue_receipt(job_id).await? else {
            return Err(ServiceError::Conflict {
                job_id: job_id.to_string(),
                state: self.job_status(caller, job_id).await?.state,
                allowed: RETRYABLE,
            });
        };
        let data = ReceiptJobData { run, ..data };
        let added = match self.make_way(job_id).await {
            Ok(None) => self.queue.enqueue_again(job_id.to_string(), data).await,
            Ok(Some(held)) => {
                self.unclaim(&stored.row).await;
                return Err(let_go_first(job_id, held));
            }
            Err(e) => Err(e),
        };
        if let Err(e) = added {
            self.unclaim(&stored.row).await;
            return Err(e.into());
        }
        self.job_status(caller, job_id).await
    }

    /// Remove the failed job (if Redis still keeps it) so that a fresh one
    /// takes its id and clients keep polling the id they have. One a
    /// worker still holds (a cancel it has not seen yet) cannot go: the add
    /// would be refused as a duplicate and the retry lost; its state is
    /// answered. (A worker that lets go between the two calls leaves a
    /// removable job: removed on a second try.)
    async fn make_way(&self, job_id: &str) -> Result<Option<JobState>, QueueError> {
        if !self.queue.remove(job_id).await?
            && let Some(job) = self.queue.lookup(job_id).await?
            && (job.state == JobState::Active || !self.queue.remove(job_id).await?)
        {
            return Ok(Some(job.state));
        }
        Ok(None)
    }

    /// Undo a requeue whose job could not be added (or whose failed job
    /// could not make way): the row as it was (state, reason, times), not
    /// announced again.
    async fn unclaim(&self, row: &ReceiptRow) {
        if let Err(e) = self.db.unclaim_receipt(row).await {
            tracing::warn!(job_id = row.job_id, error = %e, "could not restore the receipt after a failed retry");
        }
    }
}

const RETRYABLE: &str = "failed or cancelled jobs whose image is still stored can be retried \
                         (an image removed after IMAGE_KEEP_DAYS days is gone: upload the file again)";

fn let_go_first(job_id: &str, state: JobState) -> ServiceError {
    ServiceError::Conflict {
        job_id: job_id.to_string(),
        state,
        allowed: "jobs their worker has let go of can be retried: try again in a moment",
    }
}
