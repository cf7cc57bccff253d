//! Stalled jobs, logged and counted once in the whole deployment.
//!
//! A job stalls when its worker stops renewing the lock (killed, frozen,
//! cut off from Redis); BullMQ's stalled-jobs check moves it back to
//! `waiting` and writes a `stalled` event to the queue's event stream.
//! `bullmq-official` 1.4 never reports these: it reads the check's answer
//! as a list nested in a list, and BullMQ's script answers a flat list of
//! job ids, so its `Stalled` worker event never fires. We read the event
//! stream instead, through a consumer group, so each stall reaches exactly
//! one worker process: one log line and one count per stall, however many
//! processes run.
//!
//! The stream carries every job's events (added, active, progress,
//! completed, …) and stalls are rare, so the reading is kept cheap for a
//! busy queue: entries are read without acknowledgement (`NOACK`: no
//! pending list to keep, no `XACK`), and after a read that emptied the
//! backlog the reader pauses [`PAUSE`] before the next, so it costs a few
//! round trips a second however many jobs run, not one or two per job.
//! A process that dies between a read and its log line loses those
//! stalls' log lines and counts (the jobs themselves are BullMQ's
//! business and are not affected).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::redis_connection::RedisConnection;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

/// The consumer group every worker process joins.
const GROUP: &str = "receipt-ocr:stalls";
/// How long one read waits for events before looking again.
const BLOCK: Duration = Duration::from_secs(5);
/// Entries taken per read; a full batch is followed by another read at once.
const BATCH: usize = 1000;
/// The pause after a read that emptied the backlog. Short beside how fast
/// BullMQ trims the stream (about 10 000 entries): at 10 000 jobs/s, some
/// 5 000 entries arrive in a pause.
const PAUSE: Duration = Duration::from_millis(100);

/// Stalls this process saw (each stall is seen by one process only).
#[derive(Debug, Clone, Default)]
pub struct StallCounter(Arc<AtomicU64>);

impl StallCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Follow `<prefix>:<queue>:events` as `consumer` until the task is
/// dropped; Redis errors are logged and retried.
pub async fn watch(
    redis: RedisConnectionOptions,
    events_key: String,
    consumer: String,
    stalls: StallCounter,
) {
    loop {
        if let Err(e) = follow(&redis, &events_key, &consumer, &stalls).await {
            tracing::debug!(error = %e, "reading the queue's events for stalls; trying again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn follow(
    redis: &RedisConnectionOptions,
    events_key: &str,
    consumer: &str,
    stalls: &StallCounter,
) -> Result<(), bullmq::Error> {
    // A connection of its own, without a response timeout: the blocking
    // reads would hold up others (and outlast one).
    let connection = RedisConnection::new_managed_only(redis).await?;
    let mut conn = connection.dedicated_any_connection().await?;
    let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(events_key, GROUP, "$").await;
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e.into());
    }
    let options = StreamReadOptions::default()
        .group(GROUP, consumer)
        .noack()
        .count(BATCH)
        .block(BLOCK.as_millis() as usize);
    loop {
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[events_key], &[">"], &options).await?;
        let entries: Vec<_> = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .collect();
        for entry in &entries {
            let event: Option<String> = entry.get("event");
            if event.as_deref() == Some("stalled") {
                let job_id: String = entry.get("jobId").unwrap_or_default();
                stalls.0.fetch_add(1, Ordering::Relaxed);
                let counter = &crate::telemetry::metrics::metrics().jobs_stalled;
                counter.with_label_values::<&str>(&[]).inc();
                tracing::warn!(
                    job_id,
                    "job stalled: its worker stopped renewing the lock (killed, frozen or cut \
                     off from Redis); BullMQ moved it back to waiting"
                );
            }
        }
        if !entries.is_empty() && entries.len() < BATCH {
            tokio::time::sleep(PAUSE).await;
        }
    }
}
