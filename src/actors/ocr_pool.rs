//! The OCR worker pool: a ractor factory of [`OcrWorker`]s, and the handle
//! the pipeline reads images through.
//!
//! The factory queues reads until a worker is free, replaces a worker that
//! panics, and its dead-man's switch replaces one stuck in a read for
//! longer than JOB_TIMEOUT_MS (Tesseract cannot be interrupted: the stuck
//! thread finishes on its own, its result thrown away).
//!
//! If the factory itself fails, the supervisor starts a new one after its
//! back-off; a read meanwhile waits for it (up to [`POOL_RETURN_WAIT`])
//! rather than failing an attempt of the job at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::QueuerRouting;
use ractor::factory::{DeadMansSwitchConfiguration, Factory, FactoryArguments, worker_builder};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus};
use tokio::sync::watch;

use super::ocr_worker::{OcrWorker, PoolMessage, ReadImage, WorkerArgs, WorkerCounters};
use crate::config::OcrSettings;
use crate::job::{FailureClass, JobError};
use crate::ocr::{OcrError, ReceiptReading};
use crate::pipeline::{Progress, ReceiptReader};

type PoolFactory = Factory<
    (),
    ReadImage,
    WorkerArgs,
    OcrWorker,
    QueuerRouting<(), ReadImage>,
    DefaultQueue<(), ReadImage>,
>;

/// What the pool reports to health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Workers with a loaded engine.
    pub workers: usize,
    /// Workers replaced after a panic or a stuck read.
    pub replaced: usize,
}

/// How long a read waits for a running factory: the supervisor's longest
/// back-off (5 s) and the new workers' engine loads, with room to spare.
pub const POOL_RETURN_WAIT: Duration = Duration::from_secs(30);

/// How the pipeline reaches the current factory; the supervisor swaps in a
/// new one if the factory itself ever has to be restarted.
#[derive(Clone)]
pub struct OcrPool {
    factory: Arc<watch::Sender<Option<ActorRef<PoolMessage>>>>,
    counters: WorkerCounters,
    settings: OcrSettings,
}

impl OcrPool {
    pub fn new(settings: OcrSettings) -> Self {
        let counters = WorkerCounters {
            initial: settings.concurrency.get(),
            ..WorkerCounters::default()
        };
        #[cfg(feature = "fault-injection")]
        {
            let (panics, hold) = (&counters.injected_panics, &counters.injected_hold_ms);
            panics.store(settings.inject_panics, Ordering::SeqCst);
            hold.store(settings.inject_hold_ms, Ordering::SeqCst);
        }
        Self {
            factory: Arc::new(watch::Sender::new(None)),
            counters,
            settings,
        }
    }

    /// Start a factory linked to `supervisor` and route reads to it. Fails
    /// when an engine cannot load (a missing language file, say).
    pub async fn start(&self, supervisor: ActorCell) -> Result<ActorCell, ActorProcessingErr> {
        let args = WorkerArgs {
            engine: self.settings.engine.clone(),
            counters: self.counters.clone(),
        };
        let arguments = FactoryArguments::builder()
            .worker_builder(Box::new(worker_builder(move |_wid| {
                (OcrWorker, args.clone())
            })))
            .queue(Default::default())
            .router(Default::default())
            .num_initial_workers(self.settings.concurrency.get())
            .dead_mans_switch(
                DeadMansSwitchConfiguration::builder()
                    .detection_timeout(self.settings.read_timeout)
                    .kill_worker(true)
                    .build(),
            )
            .build();
        let (factory, _) =
            Actor::spawn_linked(None, PoolFactory::default(), arguments, supervisor).await?;
        let cell = factory.get_cell();
        self.factory.send_replace(Some(factory));
        Ok(cell)
    }

    pub fn stats(&self) -> PoolStats {
        let started = self.counters.started.load(Ordering::SeqCst);
        PoolStats {
            workers: self.counters.live.load(Ordering::SeqCst),
            replaced: started.saturating_sub(self.settings.concurrency.get()),
        }
    }

    /// The factory taking reads; while there is none (it failed and the
    /// supervisor has not started the next yet), wait for one.
    async fn factory(&self) -> Result<ActorRef<PoolMessage>, JobError> {
        let mut current = self.factory.subscribe();
        let running = current.wait_for(|f| f.as_ref().is_some_and(takes_reads));
        match tokio::time::timeout(POOL_RETURN_WAIT, running).await {
            Ok(Ok(factory)) => Ok(factory.clone().expect("a factory that takes reads")),
            _ => Err(JobError::retry(
                FailureClass::WorkerCrash,
                "the OCR pool is not running (it is being restarted)",
            )),
        }
    }

    /// Send one read to the factory and wait for its answer; `None` when
    /// the worker (or the factory) went away without one.
    async fn dispatch(
        &self,
        factory: &ActorRef<PoolMessage>,
        image: Bytes,
        progress: Progress,
    ) -> Option<Result<ReceiptReading, OcrError>> {
        let span = tracing::Span::current();
        let call = factory.call(
            |reply| {
                let read = ReadImage {
                    image,
                    progress,
                    span,
                    reply,
                };
                PoolMessage::Dispatch(ractor::factory::Job::new((), read))
            },
            None,
        );
        match call.await {
            Ok(CallResult::Success(answer)) => Some(answer),
            _ => None,
        }
    }
}

/// Whether `factory` takes reads: running, or still starting (it is
/// published as soon as it is spawned, before ractor marks it running;
/// messages sent meanwhile wait in its mailbox).
fn takes_reads(factory: &ActorRef<PoolMessage>) -> bool {
    matches!(
        factory.get_status(),
        ActorStatus::Starting | ActorStatus::Running | ActorStatus::Upgrading
    )
}

const CRASHED: &str = "the OCR worker crashed while reading this receipt; \
                       it has been replaced";

impl ReceiptReader for OcrPool {
    async fn read(&self, image: Bytes, progress: Progress) -> Result<ReceiptReading, JobError> {
        let factory = self.factory().await?;
        let mut started = Instant::now();
        let mut answer = self
            .dispatch(&factory, image.clone(), progress.clone())
            .await;
        if answer.is_none() && !takes_reads(&factory) {
            // The factory itself went (not one worker): the read was lost
            // with it, through no fault of the image. Once more on the next.
            let factory = self.factory().await?;
            started = Instant::now();
            answer = self.dispatch(&factory, image, progress).await;
        }
        match answer {
            Some(Ok(reading)) => Ok(reading),
            Some(Err(e)) if e.is_permanent() => {
                Err(JobError::permanent_from(FailureClass::BadImage, e))
            }
            Some(Err(e)) => Err(JobError::retry_from(FailureClass::OcrEngine, e)),
            // The worker went away mid-read: stuck past the timeout and
            // replaced by the dead-man's switch, or crashed.
            None if started.elapsed() >= self.settings.read_timeout => {
                Err(timed_out(&self.settings))
            }
            None => Err(JobError::retry(FailureClass::WorkerCrash, CRASHED)),
        }
    }
}

fn timed_out(settings: &OcrSettings) -> JobError {
    JobError::permanent(
        FailureClass::Timeout,
        format!(
            "reading the image took longer than {} ms (JOB_TIMEOUT_MS); it was given up",
            settings.read_timeout.as_millis()
        ),
    )
}
