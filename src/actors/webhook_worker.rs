//! The WebhookWorker actor: this process's BullMQ worker on the deliveries'
//! queue (`<QUEUE_NAME>-webhooks`). Each job is one attempt at one
//! delivery ([`Deliverer`]); BullMQ retries it with exponential backoff.
//! Every SWEEP_INTERVAL it also queues deliveries whose outcome was
//! committed but whose job never reached Redis, and queues again pending
//! deliveries whose job Redis lost (a failover, a flush, a Redis without
//! persistence): ones untouched for longer than any wait between attempts
//! whose job is gone.

use std::sync::Arc;
use std::time::Duration;

use bullmq::worker::WorkerEvent;
use bullmq::{Job, Worker, WorkerOptions};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::config::{QueueSettings, WebhookSettings};
use crate::outcomes::ReceiptOutcomes;
use crate::queue::{DeliveryJobData, webhook_queue_name};
use crate::webhooks::delivery::{Deliverer, DeliveryAttempt, NextStep};
use crate::webhooks::sender::WebhookSender;

/// How often unqueued deliveries are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// How old an unqueued delivery must be before the sweep takes it (its own
/// process normally queues it within milliseconds).
const SWEEP_AFTER: Duration = Duration::from_secs(30);
/// Deliveries queued per sweep.
const SWEEP_BATCH: i64 = 500;

pub struct WebhookWorker;

#[derive(Clone)]
pub struct WebhookWorkerArgs {
    pub queue_settings: QueueSettings,
    pub settings: WebhookSettings,
    pub outcomes: ReceiptOutcomes,
    /// How long a stopping worker lets attempts under way finish.
    pub grace: Duration,
}

pub struct WebhookWorkerState {
    worker: Arc<Worker>,
    events: JoinHandle<()>,
    outcomes: ReceiptOutcomes,
    grace: Duration,
    /// How long a pending delivery may go untouched before its job is
    /// looked for.
    overdue_after: Duration,
    /// WEBHOOK_KEEP_DAYS (`None`: for ever), and when settled deliveries
    /// were last pruned.
    keep: Option<Duration>,
    pruned_at: Option<std::time::Instant>,
}

/// How often settled deliveries past WEBHOOK_KEEP_DAYS are removed, and at
/// most how many in one go.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: i64 = 10_000;

/// Time to sweep.
pub struct Sweep;

impl Actor for WebhookWorker {
    type Msg = Sweep;
    type State = WebhookWorkerState;
    type Arguments = WebhookWorkerArgs;

    async fn pre_start(
        &self,
        me: ActorRef<Sweep>,
        args: WebhookWorkerArgs,
    ) -> Result<WebhookWorkerState, ActorProcessingErr> {
        let deliverer = Deliverer {
            db: args.outcomes.db().clone(),
            sender: WebhookSender::new(&args.settings)?,
        };
        let worker = Arc::new(start_worker(&args, deliverer).await?);
        let events = drain_events(worker.clone());
        me.send_message(Sweep)?;
        Ok(WebhookWorkerState {
            worker,
            events,
            // A sweep's own delay on top.
            overdue_after: args.settings.overdue_after().saturating_add(SWEEP_AFTER),
            keep: args.settings.keep(),
            pruned_at: None,
            outcomes: args.outcomes,
            grace: args.grace,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<Sweep>,
        _sweep: Sweep,
        state: &mut WebhookWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let cutoff = chrono::Utc::now() - SWEEP_AFTER;
        match state
            .outcomes
            .db()
            .unqueued_deliveries(cutoff, SWEEP_BATCH)
            .await
        {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(
                    count = ids.len(),
                    "queuing webhook deliveries left unqueued"
                );
                state.outcomes.queue_deliveries(ids).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not look for unqueued webhook deliveries"),
        }
        state.requeue_lost().await;
        state.prune().await;
        me.send_after(SWEEP_INTERVAL, || Sweep);
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<Sweep>,
        state: &mut WebhookWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        state.worker.close(state.grace.as_millis() as u64).await?;
        state.events.abort();
        Ok(())
    }
}

/// A handler that panics skips `post_stop`: the task draining the worker's
/// events (which holds the worker) must not outlive the actor.
impl Drop for WebhookWorkerState {
    fn drop(&mut self) {
        self.events.abort();
    }
}

impl WebhookWorkerState {
    /// Remove settled deliveries older than WEBHOOK_KEEP_DAYS, once an hour
    /// (at start first). Every worker process may do it: a row goes once.
    async fn prune(&mut self) {
        let Some(keep) = self.keep else { return };
        if self
            .pruned_at
            .is_some_and(|at| at.elapsed() < PRUNE_INTERVAL)
        {
            return;
        }
        self.pruned_at = Some(std::time::Instant::now());
        let cutoff = crate::store::moment_ago(keep);
        match self
            .outcomes
            .db()
            .prune_settled_deliveries(cutoff, PRUNE_BATCH)
            .await
        {
            Ok(0) => {}
            Ok(removed) => {
                tracing::info!(
                    removed,
                    "removed settled webhook deliveries past WEBHOOK_KEEP_DAYS"
                )
            }
            Err(e) => tracing::warn!(error = %e, "could not remove old webhook deliveries"),
        }
    }

    /// Queue again the overdue pending deliveries whose job is gone.
    async fn requeue_lost(&self) {
        let db = self.outcomes.db();
        let cutoff = crate::store::moment_ago(self.overdue_after);
        let overdue = match db.take_overdue_deliveries(cutoff, SWEEP_BATCH).await {
            Ok(overdue) => overdue,
            Err(e) => {
                tracing::warn!(error = %e, "could not look for overdue webhook deliveries");
                return;
            }
        };
        let queue = self.outcomes.queue();
        let (mut requeued, mut unsettled) = (Vec::new(), Vec::new());
        for id in overdue {
            // (A redelivery's run records attempts, so is not overdue while
            // it lives.)
            match queue.delivery_run_pending(id).await {
                Ok(true) => {}
                Ok(false) => match queue.redeliver(id).await {
                    Ok(()) => requeued.push(id),
                    Err(e) => {
                        tracing::warn!(delivery_id = %id, error = %e, "could not queue a lost webhook delivery again");
                        unsettled.push(id);
                    }
                },
                // Redis down: nothing can be known yet.
                Err(_) => unsettled.push(id),
            }
        }
        // Taken but not settled: first in line at the next sweep.
        if !unsettled.is_empty()
            && let Err(e) = db.overdue_again(&unsettled).await
        {
            tracing::warn!(error = %e, "could not put webhook deliveries back for the next sweep");
        }
        if requeued.is_empty() {
            return;
        }
        tracing::warn!(
            count = requeued.len(),
            "queued again webhook deliveries whose job Redis lost"
        );
        if let Err(e) = db.mark_deliveries_queued(&requeued).await {
            tracing::warn!(error = %e, "could not note queued webhook deliveries");
        }
    }
}

async fn start_worker(
    args: &WebhookWorkerArgs,
    deliverer: Deliverer,
) -> Result<Worker, ActorProcessingErr> {
    let queue = &args.queue_settings;
    let options = WorkerOptions {
        connection: crate::queue::worker_connection(queue),
        prefix: queue.prefix.clone(),
        name: Some(queue.worker_name()),
        concurrency: args.settings.concurrency.get(),
        ..WorkerOptions::default()
    };
    let deliverer = Arc::new(deliverer);
    let process = move |job: Job, _cancel| {
        let deliverer = deliverer.clone();
        async move { deliver(&deliverer, &job).await }
    };
    Ok(Worker::with_options(&webhook_queue_name(queue), process, options).await?)
}

/// One delivery job: one attempt, its outcome in BullMQ's terms.
async fn deliver(deliverer: &Deliverer, job: &Job) -> Result<Value, bullmq::Error> {
    let data: DeliveryJobData = serde_json::from_value(job.data().clone())
        .map_err(|e| bullmq::Error::Unrecoverable(format!("not a delivery job: {e}")))?;
    let attempt = DeliveryAttempt {
        delivery_id: data.delivery_id,
        attempt: job.attempts_made() + 1,
        max_attempts: job.opts().attempts.unwrap_or(1),
    };
    match deliverer.attempt(attempt).await {
        NextStep::Done => Ok(Value::Null),
        NextStep::Retry(reason) => Err(bullmq::Error::ProcessingError(reason)),
        NextStep::Stop(reason) => Err(bullmq::Error::Unrecoverable(reason)),
    }
}

/// Read the worker's events until it closes (the crate queues every one).
fn drain_events(worker: Arc<Worker>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = worker.next_event().await {
            match event {
                WorkerEvent::Error(error) => {
                    tracing::warn!(%error, "BullMQ webhook worker error")
                }
                WorkerEvent::Closed => break,
                _ => {}
            }
        }
    })
}
