//! The root of the actor tree. It starts its children linked, restarts any
//! that fails (with backoff), and never stops because a child stopped.
//!
//! ```text
//! Supervisor
//!  ├── OcrWorker × OCR_CONCURRENCY   (worker mode; started first, so the
//!  │                                  queue has somewhere to send jobs)
//!  ├── RateLimiterActor              (worker mode)
//!  └── QueueActor                    (always; runs the BullMQ worker loop
//!                                     in worker mode)
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};

use super::ocr_pool::{JobProcessor, OcrPool};
use super::ocr_worker::{OcrWorker, OcrWorkerArgs};
use super::queue::{QueueActor, QueueArgs, QueueHandle};
use super::rate_limiter::{RateLimitStatus, RateLimiterActor, RateLimiterMessage};
use crate::config::Settings;
use crate::store::{BlobStore, Db};
use ractor::rpc::CallResult;

/// Longest pause before restarting a failing child.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A child that has not failed for this long restarts without delay again.
const CALM_AFTER: Duration = Duration::from_secs(30);
/// Beyond SHUTDOWN_GRACE_MS, what stopping the children may take.
const STOP_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct SupervisorArgs {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub blobs: BlobStore,
    /// Run OCR workers in this process (`serve`, `worker`), or only enqueue (`api`).
    pub run_workers: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Queue,
    RateLimiter,
    Ocr,
}

pub enum SupervisorMessage {
    Respawn(Child),
    QueueHandle(RpcReplyPort<QueueHandle>),
    Stats(RpcReplyPort<SupervisorStats>),
}

/// What health endpoints report about the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisorStats {
    pub ocr_workers: usize,
    pub restarts: u64,
    /// The global rate limit and its current wait (worker processes).
    pub rate_limit: Option<RateLimitStatus>,
}

pub struct Supervisor;

pub struct SupervisorState {
    args: SupervisorArgs,
    children: HashMap<ActorId, (Child, ActorCell)>,
    pool: Arc<OcrPool>,
    ocr_args: OcrWorkerArgs,
    queue: Option<QueueHandle>,
    rate_limiter: Option<ActorRef<RateLimiterMessage>>,
    recent_failures: u32,
    last_failure: Option<Instant>,
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
        let ocr_args = OcrWorkerArgs {
            db: args.db.clone(),
            blobs: args.blobs.clone(),
            engine: args.settings.engine.clone(),
            injected_panics: Arc::new(AtomicU32::new(args.settings.inject_panics)),
        };
        let mut state = SupervisorState {
            pool: OcrPool::new(),
            ocr_args,
            children: HashMap::new(),
            queue: None,
            rate_limiter: None,
            recent_failures: 0,
            last_failure: None,
            restarts: 0,
            args,
        };
        if state.args.run_workers {
            for _ in 0..state.args.settings.ocr_concurrency {
                state.spawn(&me, Child::Ocr).await?;
            }
            state.spawn(&me, Child::RateLimiter).await?;
        }
        state.spawn(&me, Child::Queue).await?;
        Ok(state)
    }

    async fn post_stop(
        &self,
        _me: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let grace = Duration::from_millis(state.args.settings.shutdown_grace_ms) + STOP_MARGIN;
        // The queue first: it stops fetching and lets active jobs finish
        // while the OCR workers are still there to finish them.
        let children: Vec<_> = state.children.drain().map(|(_, child)| child).collect();
        for (kind, cell) in children.iter().filter(|(kind, _)| *kind == Child::Queue) {
            tracing::debug!(?kind, "stopping");
            let _ = cell.stop_and_wait(None, Some(grace)).await;
        }
        for (_, cell) in children.iter().filter(|(kind, _)| *kind != Child::Queue) {
            let _ = cell.stop_and_wait(None, Some(grace)).await;
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
            SupervisorMessage::QueueHandle(reply) => {
                // pre_start always spawns the queue, so the handle exists.
                let _ = reply.send(state.queue.clone().expect("queue started in pre_start"));
            }
            SupervisorMessage::Stats(reply) => {
                let ocr_workers = state
                    .children
                    .values()
                    .filter(|(k, _)| *k == Child::Ocr)
                    .count();
                let rate_limit = state.rate_limit_status().await;
                let _ = reply.send(SupervisorStats {
                    ocr_workers,
                    restarts: state.restarts,
                    rate_limit,
                });
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
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, format!("failed: {error}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, format!("stopped: {reason:?}"))
            }
            _ => return Ok(()),
        };
        if let Some((kind, _)) = state.children.remove(&cell.get_id()) {
            tracing::error!(?kind, actor = %cell.get_id(), %why, "child ended; restarting it");
            state.restarts += 1;
            state.schedule_respawn(&me, kind);
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
            Child::Ocr => {
                let (actor, _) =
                    Actor::spawn_linked(None, OcrWorker, self.ocr_args.clone(), parent).await?;
                self.pool.give_back(actor.clone()).await;
                actor.get_cell()
            }
            Child::RateLimiter => {
                let settings = self.args.settings.clone();
                let (actor, _) =
                    Actor::spawn_linked(None, RateLimiterActor, settings, parent).await?;
                self.rate_limiter = Some(actor.clone());
                actor.get_cell()
            }
            Child::Queue => {
                let (actor, _) =
                    Actor::spawn_linked(None, QueueActor, self.queue_args(), parent).await?;
                match &self.queue {
                    Some(handle) => handle.replace(actor.clone()).await,
                    None => {
                        self.queue =
                            Some(QueueHandle::new(actor.clone(), self.args.settings.clone()))
                    }
                }
                actor.get_cell()
            }
        };
        self.children.insert(cell.get_id(), (kind, cell));
        Ok(())
    }

    fn queue_args(&self) -> QueueArgs {
        let processor = self.args.run_workers.then(|| {
            Arc::new(JobProcessor {
                pool: self.pool.clone(),
                db: self.args.db.clone(),
                read_timeout: Duration::from_millis(self.args.settings.job_timeout_ms),
            })
        });
        QueueArgs {
            settings: self.args.settings.clone(),
            processor,
        }
    }

    async fn rate_limit_status(&self) -> Option<RateLimitStatus> {
        let limiter = self.rate_limiter.as_ref()?;
        let asked = limiter.call(RateLimiterMessage::Status, Some(Duration::from_secs(2)));
        match asked.await {
            Ok(CallResult::Success(Ok(status))) => Some(status),
            _ => None,
        }
    }

    /// Restart after a pause that doubles with each failure in a burst.
    fn schedule_respawn(&mut self, me: &ActorRef<SupervisorMessage>, kind: Child) {
        let now = Instant::now();
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) > CALM_AFTER)
        {
            self.recent_failures = 0;
        }
        self.last_failure = Some(now);
        let delay =
            (Duration::from_millis(50) * 2u32.pow(self.recent_failures.min(7))).min(MAX_BACKOFF);
        self.recent_failures += 1;
        me.send_after(delay, move || SupervisorMessage::Respawn(kind));
    }
}
