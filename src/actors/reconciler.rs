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
//! time in the whole deployment. Passes are spaced by RECONCILE_INTERVAL_MS.
//! A cycle looks at every row unfinished when it began, oldest first, up to
//! 1000 a pass, going on where the last pass stopped; the next cycle starts
//! over. So a backlog of healthy waiting or scheduled jobs does not hide a
//! lost one behind it, and rows added meanwhile wait for the next cycle
//! instead of keeping one from ending. A missing job is only mended for
//! rows untouched for RECONCILE_AFTER_MS.
//!
//! With IMAGE_KEEP_DAYS, the process holding the lock also removes, once an
//! hour, the images of receipts settled longer ago than that.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::config::{RateLimit, ReconcileSettings};
use crate::job::{JobState, ReceiptJobData};
use crate::outcomes::ReceiptOutcomes;
use crate::queue::{QueueHandle, QueueJob};
use crate::store::models::ReceiptRow;
use crate::store::receipts::UnfinishedKey;
use crate::store::{BlobError, BlobStore, Db};

/// Rows read at a time, and pages read in one pass.
const BATCH: i64 = 100;
const PAGES_PER_PASS: usize = 10;

/// How often images past IMAGE_KEEP_DAYS are removed, and at most how many
/// in one go.
const IMAGE_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
const IMAGE_PRUNE_BATCH: i64 = 1000;

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
    /// The deployment's rate limit (OCR_RATE_MAX), written again when
    /// Redis has lost it.
    pub rate_limit: RateLimit,
    /// IMAGE_KEEP_DAYS (`None`: images are kept for ever).
    pub image_keep: Option<Duration>,
}

/// Time for one pass.
pub struct Tick;

pub struct ReconcilerState {
    args: ReconcilerArgs,
    /// The cycle under way; `None` starts one at the next pass.
    cycle: Option<Cycle>,
    /// When this process last removed images past IMAGE_KEEP_DAYS.
    images_pruned_at: Option<std::time::Instant>,
}

/// A walk over the rows unfinished and untouched at its start.
#[derive(Debug, Clone, Copy)]
struct Cycle {
    /// Rows touched since are left to the next cycle (a row just written
    /// may belong to an upload whose job is being added).
    settled: chrono::DateTime<chrono::Utc>,
    /// The last row looked at.
    after: Option<UnfinishedKey>,
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
            cycle: None,
            images_pruned_at: None,
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
            args.restore_rate_limit().await;
            match args.pass(state.cycle).await {
                Ok(next) => state.cycle = next,
                Err(e) => {
                    tracing::warn!(error = %e, "reconciling receipts failed; trying again later")
                }
            }
            state.prune_images().await;
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

impl ReconcilerState {
    /// Remove the images of receipts settled longer ago than
    /// IMAGE_KEEP_DAYS: at this process's first pass holding the lock, then
    /// hourly; at every pass while a backlog or a failure is left.
    async fn prune_images(&mut self) {
        let Some(keep) = self.args.image_keep else {
            return;
        };
        if (self.images_pruned_at).is_some_and(|at| at.elapsed() < IMAGE_PRUNE_INTERVAL) {
            return;
        }
        self.images_pruned_at = Some(std::time::Instant::now());
        let cutoff = crate::store::moment_ago(keep);
        let due = match self.args.db.images_due(cutoff, IMAGE_PRUNE_BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for images past IMAGE_KEEP_DAYS");
                return;
            }
        };
        // A backlog (the setting just turned on) goes on at the next pass.
        if due.len() as i64 == IMAGE_PRUNE_BATCH {
            self.images_pruned_at = None;
        }
        let mut removed = Vec::new();
        for image in &due {
            if let Err(e) = self.args.blobs.delete(&image.blob_key).await {
                // The blob store down: the rest stay due, for the next pass.
                tracing::warn!(error = %e, "could not remove images past IMAGE_KEEP_DAYS; trying again later");
                self.images_pruned_at = None;
                break;
            }
            removed.push(image.id);
        }
        if removed.is_empty() {
            return;
        }
        match self.args.db.mark_images_removed(&removed).await {
            Ok(marked) => tracing::info!(marked, "removed images past IMAGE_KEEP_DAYS"),
            // Still due: removed again (already gone) and marked next time.
            Err(e) => {
                tracing::warn!(error = %e, "could not record removed images; trying again later");
                self.images_pruned_at = None;
            }
        }
    }
}

impl ReconcilerArgs {
    /// A Redis that lost its data (no persistence, a failover to a replica
    /// behind, a flush) lost the global rate limit with it: write it again.
    async fn restore_rate_limit(&self) {
        if !self.rate_limit.is_on() {
            return;
        }
        if let Ok(status) = self.queue.rate_limit().await
            && status.max == 0
        {
            tracing::warn!("the queue's rate limit was gone from Redis; written again");
            if let Err(e) = self.queue.set_rate_limit(self.rate_limit).await {
                tracing::warn!(error = %e, "could not write the rate limit again");
            }
        }
    }

    /// Go on with `cycle` (or start one) for up to [`PAGES_PER_PASS`]
    /// pages; answer where the next pass goes on (`None`: the cycle ended).
    async fn pass(&self, cycle: Option<Cycle>) -> Result<Option<Cycle>, crate::store::DbError> {
        let mut cycle = cycle.unwrap_or_else(|| Cycle {
            settled: chrono::Utc::now() - chrono::Duration::seconds(5),
            after: None,
        });
        for _ in 0..PAGES_PER_PASS {
            let rows = self
                .db
                .unfinished_receipts(cycle.settled, cycle.after, BATCH)
                .await?;
            self.look_at(&rows).await;
            match rows.last() {
                Some(last) if rows.len() as i64 == BATCH => {
                    cycle.after = Some(UnfinishedKey::of(last))
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(cycle))
    }

    /// Mend what needs it; a row whose repair fails is left to the next
    /// cycle and does not hold up the rows after it.
    async fn look_at(&self, rows: &[ReceiptRow]) {
        let lost_after = crate::store::moment_ago(self.settings.after);
        for row in rows {
            // Redis down: nothing can be known; the next pass tries again.
            let repaired = match self.queue.lookup(&row.job_id).await {
                Ok(None) if row.updated_at < lost_after && self.unchanged(row).await => {
                    self.mend(row).await
                }
                Ok(Some(job)) if job.state == JobState::Failed && self.unchanged(row).await => {
                    self.record_failure(row, &job).await
                }
                _ => Ok(()),
            };
            if let Err(e) = repaired {
                tracing::warn!(job_id = row.job_id, error = %e, "could not put the receipt right; trying again next cycle");
            }
        }
    }

    /// Whether `row` is still as this page read it: a retry may have
    /// claimed it since (its old job still in Redis for a moment), or a
    /// worker moved it on; then it is not ours to mend.
    async fn unchanged(&self, row: &ReceiptRow) -> bool {
        match self.db.receipt_by_job_id(&row.job_id).await {
            Ok(Some(now)) => now.row.updated_at == row.updated_at && now.row.status == row.status,
            _ => false,
        }
    }

    /// The job failed for good but its row was not told (PostgreSQL was
    /// down then, or the process died before it could write).
    async fn record_failure(
        &self,
        row: &ReceiptRow,
        job: &QueueJob,
    ) -> Result<(), crate::store::DbError> {
        let job_id = &row.job_id;
        tracing::warn!(
            job_id,
            "job failed while its receipt still said unfinished; recorded now"
        );
        self.outcomes.failed_in_queue(job).await
    }

    async fn mend(&self, row: &ReceiptRow) -> Result<(), crate::store::DbError> {
        match self.blobs.check_present(&row.blob_key).await {
            Ok(()) => {
                // On a new run: should the lost job's worker still write
                // its failure late, that changes nothing.
                let Some(run) = self.db.requeue_lost(&row.job_id).await? else {
                    return Ok(());
                };
                let data = ReceiptJobData {
                    run,
                    ..row.job_data()
                };
                let added = self.queue.enqueue_again(row.job_id.clone(), data);
                if let Err(e) = added.await {
                    tracing::warn!(job_id = row.job_id, error = %e, "could not add the lost job again");
                    return Ok(());
                }
                tracing::warn!(job_id = row.job_id, "job lost from Redis; added again");
                Ok(())
            }
            Err(BlobError::Missing(_)) => {
                tracing::warn!(
                    job_id = row.job_id,
                    "job lost from Redis and its image is gone"
                );
                let run = u32::try_from(row.run).unwrap_or_default();
                self.outcomes.failed(&row.job_id, LOST_FOR_GOOD, run).await
            }
            // The blob store is down: try again next pass.
            Err(_) => Ok(()),
        }
    }
}

const LOST_FOR_GOOD: &str = "the job disappeared from the queue (removed from Redis by another \
                             client, or Redis lost it) and its image is no longer in the blob \
                             store, so it cannot be read again; upload the receipt again";
