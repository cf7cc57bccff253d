//! The root of the actor tree in processes that read receipts (`serve`,
//! `worker`; an `api` process runs no actors):
//!
//! ```text
//! Supervisor
//!  ├── OCR pool (ractor factory)      started first, so jobs have readers
//!  │    └── OcrWorker × OCR_CONCURRENCY    one engine each; the factory
//!  │                                        replaces one that panics or is
//!  │                                        stuck past JOB_TIMEOUT_MS
//!  ├── QueueWorker                    the BullMQ worker: fetch, lock
//!  │                                  renewal, complete/fail, events
//!  ├── WebhookWorker                  the BullMQ worker of the webhook
//!  │                                  deliveries' queue, and their sweep
//!  └── Reconciler                     mends receipts whose job left Redis
//!                                     unfinished (one pass at a time per
//!                                     deployment, under a Redis lock)
//! ```
//!
//! A child that fails is restarted after a pause that doubles with each
//! failure of that child in a burst (each child keeps its own count); a
//! child that stops normally is not restarted. The supervisor never stops
//! because a child did.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::ocr_pool::{OcrPool, PoolStats};
use super::queue_worker::{Pipeline, QueueWorker, QueueWorkerArgs};
use super::reconciler::{Reconciler, ReconcilerArgs};
use super::webhook_worker::{WebhookWorker, WebhookWorkerArgs};
use crate::config::{OcrSettings, QueueSettings, ReconcileSettings, WebhookSettings};
use crate::outcomes::ReceiptOutcomes;
use crate::pipeline::ReceiptPipeline;
use crate::queue::{QueueHandle, StallCounter};
use crate::store::{BlobStore, Db};

/// Longest pause before restarting a failing child.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A child that has not failed for this long restarts without delay again.
const CALM_AFTER: Duration = Duration::from_secs(30);

/// What the tree needs: its sections of the settings and the handles.
#[derive(Clone)]
pub struct SupervisorArgs {
    pub ocr: OcrSettings,
    pub queue_settings: QueueSettings,
    pub reconcile: ReconcileSettings,
    /// IMAGE_KEEP_DAYS (`None`: images are kept for ever).
    pub image_keep: Option<Duration>,
    pub webhooks: WebhookSettings,
    /// How long a stopping worker lets its active jobs finish.
    pub grace: Duration,
    pub db: Db,
    pub blobs: BlobStore,
    pub queue: QueueHandle,
    /// Where every final state of a receipt is written and announced.
    pub outcomes: ReceiptOutcomes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Child {
    OcrPool,
    QueueWorker,
    WebhookWorker,
    Reconciler,
}

pub enum SupervisorMessage {
    Respawn(Child),
    Stats(RpcReplyPort<SupervisorStats>),
    /// Test-only: `child` fails as a crash would (it is killed, with its
    /// own children) and is started again after the given pause.
    #[cfg(feature = "fault-injection")]
    Crash(Child, Duration),
}

/// What health endpoints report about the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorStats {
    pub ocr_workers: usize,
    /// Children and OCR workers restarted since start-up.
    pub restarts: u64,
    /// Stalled jobs this process logged (each stall is logged by one
    /// process of the deployment).
    pub stalled_jobs: u64,
}

pub struct Supervisor;

pub struct SupervisorState {
    children: HashMap<ActorId, (Child, ActorCell)>,
    backoff: HashMap<Child, Backoff>,
    pool: OcrPool,
    queue_worker: QueueWorkerArgs,
    webhook_worker: WebhookWorkerArgs,
    reconcile: ReconcileSettings,
    image_keep: Option<Duration>,
    outcomes: ReceiptOutcomes,
    restarts: u64,
}

impl Actor for Supervisor {
    type Msg = SupervisorMessage;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let pool = OcrPool::new(args.ocr.clone());
        let pipeline: Arc<Pipeline> = Arc::new(ReceiptPipeline::new(
            args.outcomes.clone(),
            args.blobs.clone(),
            pool.clone(),
        ));
        let webhook_worker = WebhookWorkerArgs {
            queue_settings: args.queue_settings.clone(),
            settings: args.webhooks,
            outcomes: args.outcomes.clone(),
            grace: args.grace,
        };
        let queue_worker = QueueWorkerArgs {
            settings: args.queue_settings,
            concurrency: args.ocr.concurrency.get(),
            grace: args.grace,
            pipeline,
            queue: args.queue.clone(),
            db: args.db.clone(),
            stalls: StallCounter::default(),
        };
        let mut state = SupervisorState {
            children: HashMap::new(),
            backoff: HashMap::new(),
            pool,
            queue_worker,
            webhook_worker,
            reconcile: args.reconcile,
            image_keep: args.image_keep,
            outcomes: args.outcomes,
            restarts: 0,
        };
        state.spawn(&me, Child::OcrPool).await?;
        state.spawn(&me, Child::QueueWorker).await?;
        state.spawn(&me, Child::WebhookWorker).await?;
        state.spawn(&me, Child::Reconciler).await?;
        Ok(state)
    }

    async fn post_stop(
        &self,
        _me: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The queue worker first: it stops fetching and lets active jobs
        // finish while the OCR pool is still there to finish them, then
        // hands back what is still running; the webhook worker stops beside
        // it (a delivery cut short is sent again: at least once). A read
        // still on its thread after that is not waited for (Tesseract
        // cannot be interrupted).
        let grace = state.queue_worker.grace;
        let steps: [&[(Child, Duration)]; 3] = [
            &[(Child::Reconciler, Duration::from_secs(1))],
            &[
                (Child::QueueWorker, grace + Duration::from_secs(4)),
                (Child::WebhookWorker, grace + Duration::from_secs(4)),
            ],
            &[(Child::OcrPool, Duration::from_millis(500))],
        ];
        for step in steps {
            let stops = step.iter().flat_map(|&(kind, bound)| {
                state
                    .children
                    .values()
                    .filter(move |(k, _)| *k == kind)
                    .map(move |(_, cell)| {
                        let cell = cell.clone();
                        async move {
                            let _ = cell.stop_and_wait(None, Some(bound)).await;
                        }
                    })
            });
            futures::future::join_all(stops).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMessage::Respawn(kind) => {
                if let Err(e) = state.spawn(&me, kind).await {
                    tracing::error!(?kind, error = %e, "restart failed; trying again");
                    state.schedule_respawn(&me, kind);
                }
            }
            SupervisorMessage::Stats(reply) => {
                let PoolStats { workers, replaced } = state.pool.stats();
                let _ = reply.send(SupervisorStats {
                    ocr_workers: workers,
                    restarts: state.restarts + replaced as u64,
                    stalled_jobs: state.queue_worker.stalls.get(),
                });
            }
            #[cfg(feature = "fault-injection")]
            SupervisorMessage::Crash(kind, pause) => {
                let id = (state.children.iter())
                    .find(|(_, (k, _))| *k == kind)
                    .map(|(id, _)| *id);
                if let Some((_, cell)) = id.and_then(|id| state.children.remove(&id)) {
                    cell.kill();
                    state.restarts += 1;
                    me.send_after(pause, move || SupervisorMessage::Respawn(kind));
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                if let Some((kind, _)) = state.children.remove(&cell.get_id()) {
                    tracing::error!(?kind, actor = %cell.get_id(), %error, "child failed; restarting it");
                    state.restarts += 1;
                    let restarts = &crate::telemetry::metrics::metrics().worker_restarts;
                    restarts.with_label_values(&["actor"]).inc();
                    state.schedule_respawn(&me, kind);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some((kind, _)) = state.children.remove(&cell.get_id()) {
                    tracing::info!(?kind, ?reason, "child stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        me: &ActorRef<SupervisorMessage>,
        kind: Child,
    ) -> Result<(), ActorProcessingErr> {
        let parent = me.get_cell();
        let cell = match kind {
            Child::OcrPool => self.pool.start(parent).await?,
            Child::QueueWorker => {
                let args = self.queue_worker.clone();
                Actor::spawn_linked(None, QueueWorker::new(), args, parent)
                    .await?
                    .0
                    .get_cell()
            }
            Child::WebhookWorker => {
                let args = self.webhook_worker.clone();
                Actor::spawn_linked(None, WebhookWorker, args, parent)
                    .await?
                    .0
                    .get_cell()
            }
            Child::Reconciler => {
                let args = ReconcilerArgs {
                    settings: self.reconcile.clone(),
                    queue: self.queue_worker.queue.clone(),
                    db: self.queue_worker.db.clone(),
                    outcomes: self.outcomes.clone(),
                    blobs: self.queue_worker.pipeline.blobs().clone(),
                    owner: self.queue_worker.settings.worker_name(),
                    rate_limit: self.queue_worker.settings.rate_limit,
                    image_keep: self.image_keep,
                };
                Actor::spawn_linked(None, Reconciler, args, parent)
                    .await?
                    .0
                    .get_cell()
            }
        };
        self.children.insert(cell.get_id(), (kind, cell));
        Ok(())
    }

    fn schedule_respawn(&mut self, me: &ActorRef<SupervisorMessage>, kind: Child) {
        let delay = self.backoff.entry(kind).or_default().next_delay();
        me.send_after(delay, move || SupervisorMessage::Respawn(kind));
    }
}

/// One child's restart pauses: 50 ms doubling per failure in a burst, up to
/// [`MAX_BACKOFF`]; back to 50 ms after [`CALM_AFTER`] without failures.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    last: Option<Instant>,
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) > CALM_AFTER)
        {
            self.failures = 0;
        }
        self.last = Some(now);
        let delay = (Duration::from_millis(50) * 2u32.pow(self.failures.min(7))).min(MAX_BACKOFF);
        self.failures += 1;
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_pauses_double_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let delays: Vec<u128> = (0..9).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
