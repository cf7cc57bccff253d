//! The queue as a whole: its job counts, pause and resume (held in Redis,
//! so every worker process obeys), the connected workers, and why a
//! waiting job is not starting.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{QueueError, QueueHandle, RateLimitStatus};

/// BullMQ's `getJobCounts`: the size of each state's list or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub waiting: u64,
    pub active: u64,
    pub delayed: u64,
    pub prioritized: u64,
    pub completed: u64,
    pub failed: u64,
    pub waiting_children: u64,
    /// Waiting jobs parked while the queue is paused.
    pub paused: u64,
}

/// A worker connected to this queue, as `CLIENT LIST` shows its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedWorker {
    /// The worker's name (`WORKER_NAME`), or the raw connection name.
    pub name: String,
    /// The worker's address as Redis sees it (`host:port`).
    pub address: String,
    /// When its connection opened (to the second).
    pub started_at: Option<DateTime<Utc>>,
}

/// The queue at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOverview {
    pub counts: JobCounts,
    pub paused: bool,
    pub rate_limit: RateLimitStatus,
    pub workers: Vec<ConnectedWorker>,
}

impl QueueHandle {
    pub async fn overview(&self) -> Result<QueueOverview, QueueError> {
        let c = self.deadline(self.queue.get_job_counts()).await?;
        let counts = JobCounts {
            waiting: c.waiting,
            active: c.active,
            delayed: c.delayed,
            prioritized: c.prioritized,
            completed: c.completed,
            failed: c.failed,
            waiting_children: c.waiting_children,
            paused: c.paused,
        };
        let workers = self.deadline(self.queue.get_workers()).await?;
        let prefix = self.queue.keys().client_name(":w:");
        Ok(QueueOverview {
            counts,
            paused: self.is_paused().await?,
            rate_limit: self.rate_limit().await?,
            workers: workers
                .iter()
                .map(|client| connected_worker(client, &prefix))
                .collect(),
        })
    }

    /// Stop every worker from starting jobs; uploads are still accepted.
    pub async fn pause(&self) -> Result<(), QueueError> {
        self.deadline(self.queue.pause()).await
    }

    pub async fn resume(&self) -> Result<(), QueueError> {
        self.deadline(self.queue.resume()).await
    }

    /// Remove every key of the queue and of its webhook queue (for a
    /// throw-away queue such as `bench queue`'s; never the service's).
    pub async fn obliterate(&self) -> Result<(), QueueError> {
        for queue in [&self.queue, &self.webhooks] {
            queue
                .obliterate(true, 1000)
                .await
                .map_err(|source| QueueError::Redis {
                    url: self.url.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    pub async fn is_paused(&self) -> Result<bool, QueueError> {
        self.deadline(self.queue.is_paused()).await
    }

    /// Why a waiting job is not starting, when the queue itself holds it:
    /// a pause, or the global rate limit's current window.
    pub async fn waiting_reason(&self) -> Result<Option<String>, QueueError> {
        if self.is_paused().await? {
            return Ok(Some("queue paused".to_string()));
        }
        let limit = self.rate_limit().await?;
        Ok((limit.wait_ms > 0).then(|| {
            let seconds = limit.wait_ms.div_ceil(1000);
            format!("rate limited for another {seconds} s")
        }))
    }

    /// Keep the reason of a failed attempt on the job while its retry is
    /// pending, as Node's BullMQ does (`bullmq-official` 1.4.4 does not):
    /// only on a hash that still exists, so a removed job is not recreated,
    /// and not yet finished, so a late event does not overwrite the final
    /// reason.
    pub async fn record_failed_attempt(
        &self,
        job_id: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        static SET_IF_THERE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 \
                   and redis.call('HEXISTS', KEYS[1], 'finishedOn') == 0 then \
                   redis.call('HSET', KEYS[1], 'failedReason', ARGV[1]) end",
            )
        });
        self.script(&SET_IF_THERE, self.queue.keys().job_key(job_id), reason)
            .await
    }

    /// Make failed job `job_id` a client's cancel (its reason
    /// `CANCELLED_REASON`) if a cancel request for it stands: looked at and
    /// written in one step, so a job a retry has put back since (its
    /// request dropped, out of the failed set) is left alone. True when
    /// it did.
    pub async fn fail_as_cancelled(&self, job_id: &str) -> Result<bool, QueueError> {
        static IF_REQUESTED: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('EXISTS', KEYS[3]) == 1 \
                   and redis.call('ZSCORE', KEYS[2], ARGV[2]) then \
                   redis.call('HSET', KEYS[1], 'failedReason', ARGV[1]) return 1 end \
                 return 0",
            )
        });
        let mut invocation = IF_REQUESTED.key(self.queue.keys().job_key(job_id));
        invocation
            .key(format!("{}:failed", self.keys))
            .key(self.cancel_key(job_id))
            .arg(crate::job::CANCELLED_REASON)
            .arg(job_id);
        let mut conn = self.queue.connection().connection();
        let run = async { Ok(invocation.invoke_async::<i64>(&mut conn).await? == 1) };
        self.deadline(run).await
    }

    /// When a delayed job becomes due: its score in the delayed set is the
    /// due time in ms times 0x1000 plus a counter (BullMQ's encoding), which
    /// stays right for retries with backoff, unlike `timestamp + delay`.
    pub(super) async fn due_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>, QueueError> {
        let mut conn = self.queue.connection().connection();
        let mut zscore = redis::cmd("ZSCORE");
        zscore.arg(self.queue.keys().delayed()).arg(job_id);
        let read = async { Ok(zscore.query_async::<Option<f64>>(&mut conn).await?) };
        let score = self.deadline(read).await?;
        Ok(score.and_then(|score| {
            let millis = (score as i64) / 0x1000;
            DateTime::from_timestamp_millis(millis)
        }))
    }
}

fn connected_worker(client: &HashMap<String, String>, named_prefix: &str) -> ConnectedWorker {
    let field = |key: &str| client.get(key).cloned().unwrap_or_default();
    let raw = field("rawname");
    let name = raw
        .strip_prefix(named_prefix)
        .map_or_else(|| raw.clone(), str::to_string);
    let started_at = field("age")
        .parse::<i64>()
        .ok()
        .and_then(TimeDelta::try_seconds)
        .map(|age| Utc::now() - age);
    ConnectedWorker {
        name,
        address: field("addr"),
        started_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_named_by_what_follows_the_queues_prefix() {
        let client = HashMap::from([
            ("rawname".to_string(), "bull:cQ==:w:reader-1".to_string()),
            ("addr".to_string(), "127.0.0.1:5000".to_string()),
            ("age".to_string(), "30".to_string()),
        ]);
        let worker = connected_worker(&client, "bull:cQ==:w:");
        assert_eq!(worker.name, "reader-1");
        assert_eq!(worker.address, "127.0.0.1:5000");
        let age = Utc::now() - worker.started_at.expect("a start time");
        assert!((29..=31).contains(&age.num_seconds()), "{age}");
    }
}
