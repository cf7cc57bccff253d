//! The OCR queue's events stream (`<prefix>:<queue>:events`), which BullMQ's
//! scripts write and `QueueEvents` reads: where a live reader starts, and
//! our own entry for what happens to a job outside BullMQ's scripts.

use super::{QueueError, QueueHandle};

/// How many entries BullMQ keeps in an events stream by default.
const EVENTS_MAX_LEN: u64 = 10_000;

impl QueueHandle {
    /// The OCR queue's events stream, `<prefix>:<queue>:events`.
    pub fn events_key(&self) -> String {
        format!("{}:events", self.keys)
    }

    /// Write `event` for `job_id` to the queue's events stream, as BullMQ's
    /// `QueueEventsProducer.publishEvent` does, for what happens to a job
    /// outside BullMQ's scripts (a waiting job cancelled, say).
    pub async fn publish_event(&self, event: &str, job_id: &str) -> Result<(), QueueError> {
        let mut add = redis::cmd("XADD");
        add.arg(self.events_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_MAX_LEN)
            .arg("*")
            .arg("event")
            .arg(event)
            .arg("jobId")
            .arg(job_id);
        self.command::<String>(add).await.map(|_| ())
    }

    /// The id of the stream's newest entry (`0-0` when empty): a reader
    /// that starts after it misses nothing written from now on, unlike one
    /// that starts at `$` whenever its first read reaches Redis.
    pub async fn last_event_id(&self) -> Result<String, QueueError> {
        let mut newest = redis::cmd("XREVRANGE");
        newest
            .arg(self.events_key())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let newest: redis::streams::StreamRangeReply = self.command(newest).await?;
        Ok(newest
            .ids
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_string(), |entry| entry.id))
    }
}
