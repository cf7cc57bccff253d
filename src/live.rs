//! Live job events: one reader per process follows the OCR queue's events
//! stream (`<prefix>:<queue>:events`, what BullMQ's `QueueEvents` reads,
//! written by every worker process's scripts) and hands each entry to the
//! subscribers of its job, in stream order. Subscribers hold no Redis
//! connection of their own; the reader starts with the first subscriber.
//!
//! ```text
//!  Redis XREAD BLOCK ──▶ reader task ──▶ job id → broadcast ──▶ SSE / GraphQL clients
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bullmq::{QueueEvent, QueueEventEntry, QueueEvents, QueueEventsOptions};
use tokio::sync::{OnceCell, broadcast, oneshot};

use crate::config::QueueSettings;
use crate::outcomes::{CANCELLED_EVENT, FAILED_EVENT};
use crate::queue::{QueueError, QueueHandle};

/// Events a subscriber may fall behind by before it has to re-read the job.
const PER_JOB_BUFFER: usize = 64;
/// How long the reader's XREAD blocks before it looks again (ms).
const READ_BLOCK_MS: u64 = 5_000;

/// What happened to a job, as its subscribers need it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEventKind {
    Waiting,
    Delayed,
    Active,
    Progress(u8),
    /// Completed, failed, removed or cancelled: read the job again for the
    /// whole story (its result, its reason).
    Settled,
}

/// One entry of the events stream for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEvent {
    /// The stream entry's id (`<unix ms>-<n>`): its place and time.
    pub id: String,
    pub kind: JobEventKind,
}

/// A handle on this process's reader; cheap to clone.
#[derive(Clone)]
pub struct LiveEvents {
    inner: Arc<Hub>,
}

struct Hub {
    settings: QueueSettings,
    queue: QueueHandle,
    jobs: Arc<Registry>,
    /// Set once the reader runs; dropping it stops the reader.
    reader: OnceCell<oneshot::Sender<()>>,
}

type Registry = Mutex<HashMap<String, broadcast::Sender<JobEvent>>>;

/// A subscription to one job's events; leaves the registry when dropped.
pub struct Subscription {
    /// Taken only as the subscription ends.
    receiver: Option<broadcast::Receiver<JobEvent>>,
    job_id: String,
    jobs: Arc<Registry>,
}

impl LiveEvents {
    pub fn new(settings: &QueueSettings, queue: QueueHandle) -> Self {
        Self {
            inner: Arc::new(Hub {
                settings: settings.clone(),
                queue,
                jobs: Arc::default(),
                reader: OnceCell::new(),
            }),
        }
    }

    /// Subscribe to `job_id`'s events from now on (starting the reader if
    /// this is the process's first subscriber).
    pub async fn subscribe(&self, job_id: &str) -> Result<Subscription, QueueError> {
        self.inner
            .reader
            .get_or_try_init(|| self.inner.start_reader())
            .await?;
        let receiver = {
            let mut jobs = lock(&self.inner.jobs);
            let sender = jobs
                .entry(job_id.to_string())
                .or_insert_with(|| broadcast::channel(PER_JOB_BUFFER).0);
            sender.subscribe()
        };
        Ok(Subscription {
            receiver: Some(receiver),
            job_id: job_id.to_string(),
            jobs: self.inner.jobs.clone(),
        })
    }
}

impl Hub {
    /// Start reading after the stream's newest entry, so nothing written
    /// after this call is missed.
    async fn start_reader(&self) -> Result<oneshot::Sender<()>, QueueError> {
        let from = self.queue.last_event_id().await?;
        let options = QueueEventsOptions {
            connection: crate::queue::worker_connection(&self.settings),
            prefix: self.settings.prefix.clone(),
            blocking_timeout: READ_BLOCK_MS,
            last_event_id: Some(from),
            autorun: true,
        };
        let events = QueueEvents::with_options(&self.settings.name, options)
            .await
            .map_err(|source| QueueError::Redis {
                url: self.settings.redis_target(),
                source,
            })?;
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(fan_out(events, self.jobs.clone(), stopped));
        Ok(stop)
    }
}

/// Hand each entry to its job's subscribers until the hub is dropped.
async fn fan_out(events: QueueEvents, jobs: Arc<Registry>, mut stopped: oneshot::Receiver<()>) {
    let mut failing = false;
    loop {
        let entry = tokio::select! {
            entry = events.next_event() => entry,
            _ = &mut stopped => None,
        };
        let Some(QueueEventEntry { id, event }) = entry else {
            break;
        };
        if let QueueEvent::Error { message } = &event {
            // The reader retries on its own, from where it was.
            if !failing {
                tracing::warn!(error = %message, "reading the queue's events failed; retrying");
            }
            failing = true;
            continue;
        }
        failing = false;
        let Some((job_id, kind)) = job_event(event) else {
            continue;
        };
        if let Some(subscribers) = lock(&jobs).get(&job_id) {
            // No receiver left is not an error: it is leaving.
            let _ = subscribers.send(JobEvent { id, kind });
        }
    }
    events.close().await;
}

/// The events subscribers care about, by job.
fn job_event(event: QueueEvent) -> Option<(String, JobEventKind)> {
    let (job_id, kind) = match event {
        QueueEvent::Waiting { job_id, .. } => (job_id, JobEventKind::Waiting),
        QueueEvent::Delayed { job_id, .. } => (job_id, JobEventKind::Delayed),
        QueueEvent::Active { job_id, .. } => (job_id, JobEventKind::Active),
        QueueEvent::Progress { job_id, data } => {
            let percent = data.as_f64()?.clamp(0.0, 100.0).round() as u8;
            (job_id, JobEventKind::Progress(percent))
        }
        QueueEvent::Completed { job_id, .. }
        | QueueEvent::Failed { job_id, .. }
        | QueueEvent::Removed { job_id, .. } => (job_id, JobEventKind::Settled),
        QueueEvent::Other { event, mut fields }
            if event == CANCELLED_EVENT || event == FAILED_EVENT =>
        {
            (fields.remove("jobId")?, JobEventKind::Settled)
        }
        _ => return None,
    };
    Some((job_id, kind))
}

impl Subscription {
    /// The next event, or why there is none: `Lagged` (read the job again)
    /// or `Closed` (the reader stopped).
    pub async fn recv(&mut self) -> Result<JobEvent, broadcast::error::RecvError> {
        match &mut self.receiver {
            Some(receiver) => receiver.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut jobs = lock(&self.jobs);
        // This subscription's receiver goes under the lock: of two ending
        // at once, the second then sees none left (counted before its
        // receiver dropped, both saw two and the entry stayed for ever).
        drop(self.receiver.take());
        if jobs
            .get(&self.job_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            jobs.remove(&self.job_id);
        }
    }
}

/// The registry's lock; a panic while holding it (none is possible: only
/// map operations run under it) must not stop every subscription.
fn lock(
    jobs: &Registry,
) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<JobEvent>>> {
    jobs.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_and_final_entries_become_job_events() {
        let progress = QueueEvent::Progress {
            job_id: "ocr-1".into(),
            data: serde_json::json!(30),
        };
        assert_eq!(
            job_event(progress),
            Some(("ocr-1".into(), JobEventKind::Progress(30)))
        );
        let cancelled = QueueEvent::Other {
            event: CANCELLED_EVENT.into(),
            fields: HashMap::from([("jobId".to_string(), "ocr-2".to_string())]),
        };
        assert_eq!(
            job_event(cancelled),
            Some(("ocr-2".into(), JobEventKind::Settled))
        );
        let failed = QueueEvent::Other {
            event: FAILED_EVENT.into(),
            fields: HashMap::from([("jobId".to_string(), "ocr-3".to_string())]),
        };
        assert_eq!(
            job_event(failed),
            Some(("ocr-3".into(), JobEventKind::Settled))
        );
        assert_eq!(job_event(QueueEvent::Drained), None);
    }

    #[test]
    fn subscriptions_to_one_job_ending_at_once_leave_no_entry() {
        // Four at once on four threads: before the fix, some round out of
        // a few hundred left the entry behind.
        let jobs = Arc::new(Registry::default());
        for round in 0..3000 {
            let subscribe = || {
                let mut registry = lock(&jobs);
                let sender = registry
                    .entry("ocr-1".to_string())
                    .or_insert_with(|| broadcast::channel(PER_JOB_BUFFER).0);
                Subscription {
                    receiver: Some(sender.subscribe()),
                    job_id: "ocr-1".to_string(),
                    jobs: jobs.clone(),
                }
            };
            let start = Arc::new(std::sync::Barrier::new(4));
            let ending: Vec<_> = (0..4)
                .map(|_| {
                    let (subscription, start) = (subscribe(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        drop(subscription);
                    })
                })
                .collect();
            for thread in ending {
                thread.join().unwrap();
            }
            assert!(lock(&jobs).is_empty(), "round {round}");
        }
    }
}
