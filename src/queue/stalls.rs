//! Stalled jobs: found by BullMQ's own stalled-jobs check, which we run,
//! so each stall is logged and counted once in the whole deployment.
//!
//! A job stalls when its worker stops renewing the lock (killed, frozen,
//! cut off from Redis). BullMQ's `moveStalledJobsToWait` script finds it:
//! each run moves back to `waiting` the active jobs that the previous run
//! marked and whose lock has expired since (failing for good, on its next
//! pickup, one that stalled more than `maxStalledCount` times), then marks
//! the active jobs for the next run. A `stalled-check` key that lives one
//! stalled interval lets only one run through per interval, whoever asks:
//! every worker process (and any Node worker on the queue) may run it on
//! its timer, and a job is moved, and named in an answer, once.
//!
//! `bullmq-official` 1.4 runs the script too but reads its answer (a flat
//! list of job ids) as a list nested in a list, so its `Stalled` worker
//! event never fires. So our workers turn the crate's check off
//! (`skip_stalled_check`) and run the same script here on BullMQ's
//! schedule (at start, then every stalled interval), reading the ids it
//! answers: one log line and one count per stall, in the process whose run
//! moved the job. Nothing else is read, so a busy queue costs one script
//! call per interval, not a read of every job's events. Stalls that a Node
//! worker's check moves are that worker's to report.
//!
//! `moveStalledJobsToWait-9.lua` is a byte copy of the script
//! `bullmq-official` 1.4.4 ships (`src/commands/`), which is BullMQ's
//! (<https://github.com/taskforcesh/bullmq>, MIT licence; the crate is
//! published by Taskforce.sh Inc., and BullMQ's `LICENSE` reads
//! "Copyright (c) 2018 BullForce Labs AB."): the notice is in
//! `moveStalledJobsToWait-9.LICENSE` beside it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::{QueueError, QueueHandle};

/// BullMQ's stalled-jobs check, hashed once (it is sent by its SHA1, and
/// in full only when Redis does not have it yet).
static MOVE_STALLED_JOBS_TO_WAIT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("moveStalledJobsToWait-9.lua")));

/// The script's keys, after `<prefix>:<queue>:`, in its order.
const SCRIPT_KEYS: [&str; 9] = [
    "stalled",
    "wait",
    "active",
    "stalled-check",
    "meta",
    "paused",
    "marker",
    "events",
    "repeat",
];

/// Stalls this process saw (each stall is seen by one process only).
#[derive(Debug, Clone, Default)]
pub struct StallCounter(Arc<AtomicU64>);

impl StallCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How the stalled-jobs check runs: BullMQ's worker options of the same
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallCheck {
    /// Time between checks, and how long one check keeps others out.
    pub interval: Duration,
    /// Stalls a job may have; the next one fails it for good.
    pub max_stalled_count: u32,
}

impl StallCheck {
    /// The check a `bullmq` worker with `options` would run.
    pub fn of(options: &bullmq::WorkerOptions) -> Self {
        Self {
            interval: Duration::from_millis(options.stalled_interval),
            max_stalled_count: options.max_stalled_count,
        }
    }
}

/// Run the stalled-jobs check at once and then every interval, until the
/// task is dropped; Redis errors are logged and the next tick tries again.
pub async fn watch(queue: QueueHandle, check: StallCheck, stalls: StallCounter) {
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = check_once(&queue, check, &stalls).await {
            tracing::debug!(error = %e, "the stalled-jobs check failed; trying again next interval");
        }
    }
}

/// One run of the check (a no-op when another ran within the interval):
/// each job it moved back is logged and counted; their number.
pub async fn check_once(
    queue: &QueueHandle,
    check: StallCheck,
    stalls: &StallCounter,
) -> Result<usize, QueueError> {
    let moved = queue.move_stalled_jobs_to_wait(check).await?;
    for job_id in &moved {
        log_stall(job_id, stalls);
    }
    Ok(moved.len())
}

impl QueueHandle {
    /// Run BullMQ's `moveStalledJobsToWait` on this queue: the ids of the
    /// jobs it moved back to `waiting` (none when a check ran within the
    /// interval).
    async fn move_stalled_jobs_to_wait(
        &self,
        check: StallCheck,
    ) -> Result<Vec<String>, QueueError> {
        let mut invocation = MOVE_STALLED_JOBS_TO_WAIT.prepare_invoke();
        for key in SCRIPT_KEYS {
            invocation.key(format!("{}:{key}", self.keys));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        invocation
            .arg(check.max_stalled_count)
            .arg(format!("{}:", self.keys))
            .arg(now_ms)
            .arg(check.interval.as_millis() as u64);
        let mut redis = self.queue.connection().connection();
        let run = async move { invocation.invoke_async(&mut redis).await };
        self.deadline(async { run.await.map_err(bullmq::Error::from) })
            .await
    }
}

fn log_stall(job_id: &str, stalls: &StallCounter) {
    stalls.0.fetch_add(1, Ordering::Relaxed);
    let counter = &crate::telemetry::metrics::metrics().jobs_stalled;
    counter.with_label_values::<&str>(&[]).inc();
    tracing::warn!(
        job_id,
        "job stalled: its worker stopped renewing the lock (killed, frozen or cut \
         off from Redis); BullMQ moved it back to waiting"
    );
}
