//! The Reconciler actor: finds receipts left `queued` or `processing`
//! whose job has disappeared from Redis (removed by another BullMQ client,
//! a flushed or restored Redis, trimmed while unfinished) and puts them
//! right: the job is added again when the image is still stored, else the
//! receipt fails with a reason that says what happened.
//!
//! It also records failures the row missed: a job that failed for good
//! while PostgreSQL was down (or whose worker died before writing) has its
//! row marked failed from the reason Redis kept.
//!
//! Every worker process runs one; a lock in Redis lets one pass run at a
//! time in the whole deployment. Passes are spaced by RECONCILE_INTERVAL_MS
//! and each looks at the next 100 unfinished rows, oldest first, starting
//! over after the newest: a backlog of healthy waiting or scheduled jobs
//! does not hide a lost one behind it. A missing job is only mended for
//! rows untouched for RECONCILE_AFTER_MS.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::config::ReconcileSettings;
use crate::job::JobState;
use crate::outcomes::ReceiptOutcomes;
use crate::queue::QueueHandle;
use crate::store::models::ReceiptRow;
use crate::store::receipts::UnfinishedKey;
use crate::store::{BlobError, BlobStore, Db};

/// Rows looked at in one pass.
const BATCH: i64 = 100;

pub struct Reconciler;

pub struct ReconcilerArgs {
    pub settings: ReconcileSettings,
    pub queue: QueueHandle,
    pub db: Db,
    /// Where a lost job's receipt is failed (and announced).
    pub outcomes: ReceiptOutcomes,
    pub blobs: BlobStore,
    /// This process's name, the lock's owner.
    pub owner: String,
}

/// Time for one pass.
pub struct Tick;

pub struct ReconcilerState {
    args: ReconcilerArgs,
    /// The last row the previous pass looked at; `None` starts over.
    resume_after: Option<UnfinishedKey>,
}

impl Actor for Reconciler {
    type Msg = Tick;
    type State = ReconcilerState;
    type Arguments = ReconcilerArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Tick>,
        args: ReconcilerArgs,
    ) -> Result<ReconcilerState, ActorProcessingErr> {
        me.send_after(args.settings.interval, || Tick);
        Ok(ReconcilerState {
            args,
            resume_after: None,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<Tick>,
        _tick: Tick,
        state: &mut ReconcilerState,
    ) -> Result<(), ActorProcessingErr> {
        let args = &state.args;
        #[cfg(feature = "fault-injection")]
        maybe_panic(args.settings.inject_panics);
        // The lock outlives a slow pass; another process takes over after it.
        let ttl = args.settings.interval * 2 + Duration::from_secs(10);
        if let Ok(true) = args.queue.try_lock("reconciler", &args.owner, ttl).await {
            match args.pass(state.resume_after).await {
                Ok(next) => state.resume_after = next,
                Err(e) => {
                    tracing::warn!(error = %e, "reconciling receipts failed; trying again later")
                }
            }
        }
        me.send_after(state.args.settings.interval, || Tick);
        Ok(())
    }
}

/// Test-only: panic in the first `limit` passes of this process (counted
/// across restarts, so the restarted reconciler goes on).
#[cfg(feature = "fault-injection")]
fn maybe_panic(limit: u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static TAKEN: AtomicU32 = AtomicU32::new(0);
    let take = TAKEN.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
        (n < limit).then_some(n + 1)
    });
    if take.is_ok() {
        panic!("injected reconciler panic (RECONCILE_INJECT_PANICS)");
    }
}

impl ReconcilerArgs {
    /// Look at the page of rows after `after`; answer where the next pass
    /// goes on (`None`: from the oldest again, this page was the last).
    async fn pass(
        &self,
        after: Option<UnfinishedKey>,
    ) -> Result<Option<UnfinishedKey>, crate::store::DbError> {
        let now = chrono::Utc::now();
        // A row just written may belong to an upload whose job is being
        // added: only rows older than this are looked at.
        let settled = now - chrono::Duration::seconds(5);
        let lost_after = now - self.settings.after;
        let rows = self.db.unfinished_receipts(settled, after, BATCH).await?;
        let next = (rows.len() as i64 == BATCH)
            .then(|| rows.last().map(UnfinishedKey::of))
            .flatten();
        for row in &rows {
            // Redis down: nothing can be known; the next pass tries again.
            match self.queue.lookup(&row.job_id).await {
                Ok(None) if row.updated_at < lost_after => self.mend(row).await?,
                Ok(Some(job)) if job.state == JobState::Failed => {
                    self.record_failure(row, job.failed_reason.as_deref())
                        .await?
                }
                _ => {}
            }
        }
        Ok(next)
    }

    /// The job failed for good but its row was not told (PostgreSQL was
    /// down then, or the process died before it could write).
    async fn record_failure(
        &self,
        row: &ReceiptRow,
        reason: Option<&str>,
    ) -> Result<(), crate::store::DbError> {
        let job_id = &row.job_id;
        tracing::warn!(
            job_id,
            "job failed while its receipt still said unfinished; recorded now"
        );
        // A client's cancel ends `cancelled` (the outcomes know its reason).
        let reason = reason.unwrap_or(UNKNOWN_FAILURE);
        self.outcomes.failed(job_id, reason).await
    }

    async fn mend(&self, row: &ReceiptRow) -> Result<(), crate::store::DbError> {
        match self.blobs.get(&row.blob_key).await {
            Ok(_) => {
                let data = row.job_data();
                let added = self.queue.enqueue_again(row.job_id.clone(), data);
                if let Err(e) = added.await {
                    tracing::warn!(job_id = row.job_id, error = %e, "could not add the lost job again");
                    return Ok(());
                }
                tracing::warn!(job_id = row.job_id, "job lost from Redis; added again");
                self.db.mark_queued_again(&row.job_id).await
            }
            Err(BlobError::Missing(_)) => {
                tracing::warn!(
                    job_id = row.job_id,
                    "job lost from Redis and its image is gone"
                );
                self.outcomes.failed(&row.job_id, LOST_FOR_GOOD).await
            }
            // The blob store is down: try again next pass.
            Err(_) => Ok(()),
        }
    }
}

const UNKNOWN_FAILURE: &str = "the job failed without a recorded reason";

const LOST_FOR_GOOD: &str = "the job disappeared from the queue (removed from Redis by another \
                             client, or Redis lost it) and its image is no longer in the blob \
                             store, so it cannot be read again; upload the receipt again";
