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
use redis::{AsyncCommands, Value};

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
    let mut read = redis::cmd("XREADGROUP");
    read.arg("GROUP").arg(GROUP).arg(consumer);
    read.arg("COUNT")
        .arg(BATCH)
        .arg("BLOCK")
        .arg(BLOCK.as_millis() as u64);
    read.arg("NOACK").arg("STREAMS").arg(events_key).arg(">");
    loop {
        // Read as a bare reply and walked in place: the typed reply builds a
        // map per entry, and a busy queue writes two or three entries a job.
        let reply: Value = read.query_async(&mut conn).await?;
        let entries = stream_entries(&reply);
        for fields in &entries {
            if field(fields, "event") == Some(b"stalled".as_slice()) {
                let job_id = field(fields, "jobId").unwrap_or_default();
                log_stall(&String::from_utf8_lossy(job_id), stalls);
            }
        }
        if !entries.is_empty() && entries.len() < BATCH {
            tokio::time::sleep(PAUSE).await;
        }
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

/// The field lists (`[name, value, …]`) of the entries in an `XREADGROUP`
/// reply: `[[key, [[id, fields], …]], …]` in RESP2, a map from key to
/// entries in RESP3, nil when the read timed out.
fn stream_entries(reply: &Value) -> Vec<&[Value]> {
    let streams: Vec<&Value> = match reply {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|stream| match stream {
                Value::Array(key_and_entries) => key_and_entries.get(1),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams.iter().map(|(_, entries)| entries).collect(),
        _ => Vec::new(),
    };
    let entries = streams.into_iter().filter_map(|entries| match entries {
        Value::Array(entries) => Some(entries),
        _ => None,
    });
    entries
        .flatten()
        .filter_map(|entry| match entry {
            Value::Array(id_and_fields) => match id_and_fields.get(1) {
                Some(Value::Array(fields)) => Some(fields.as_slice()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The value of field `name` in an entry's `[name, value, …]` list.
fn field<'a>(fields: &'a [Value], name: &str) -> Option<&'a [u8]> {
    fields.chunks_exact(2).find_map(|pair| match pair {
        [Value::BulkString(key), Value::BulkString(value)] if key == name.as_bytes() => {
            Some(value.as_slice())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        let fields = fields.iter().map(|f| bulk(f)).collect();
        Value::Array(vec![bulk(id), Value::Array(fields)])
    }

    #[test]
    fn stalled_entries_are_found_in_a_resp2_or_resp3_reply() {
        let entries = Value::Array(vec![
            entry("1-0", &["event", "active", "jobId", "7", "prev", "waiting"]),
            entry("1-1", &["event", "stalled", "jobId", "8"]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("q:events"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("q:events"), entries)]);
        for reply in [resp2, resp3] {
            let found = stream_entries(&reply);
            assert_eq!(found.len(), 2);
            assert_eq!(field(found[0], "event"), Some(b"active".as_slice()));
            assert_eq!(field(found[1], "event"), Some(b"stalled".as_slice()));
            assert_eq!(field(found[1], "jobId"), Some(b"8".as_slice()));
        }
        assert!(stream_entries(&Value::Nil).is_empty());
    }
}
