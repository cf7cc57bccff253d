//! The OCR worker pool: a ractor factory of [`OcrWorker`]s, and the handle
//! the pipeline reads images through.
//!
//! The factory queues reads until a worker is free, replaces a worker that
//! panics, and its dead-man's switch replaces one stuck in a read for
//! longer than JOB_TIMEOUT_MS (Tesseract cannot be interrupted: the stuck
//! thread finishes on its own, its result thrown away).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::QueuerRouting;
use ractor::factory::{DeadMansSwitchConfiguration, Factory, FactoryArguments, worker_builder};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::sync::RwLock;

use super::ocr_worker::{OcrWorker, PoolMessage, ReadImage, WorkerArgs, WorkerCounters};
use crate::config::OcrSettings;
use crate::job::{FailureClass, JobError};
use crate::ocr::ReceiptReading;
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

/// How the pipeline reaches the current factory; the supervisor swaps in a
/// new one if the factory itself ever has to be restarted.
#[derive(Clone)]
pub struct OcrPool {
    factory: Arc<RwLock<Option<ActorRef<PoolMessage>>>>,
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
            factory: Arc::new(RwLock::new(None)),
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
        *self.factory.write().await = Some(factory);
        Ok(cell)
    }

    pub fn stats(&self) -> PoolStats {
        let started = self.counters.started.load(Ordering::SeqCst);
        PoolStats {
            workers: self.counters.live.load(Ordering::SeqCst),
            replaced: started.saturating_sub(self.settings.concurrency.get()),
        }
    }

    async fn factory(&self) -> Result<ActorRef<PoolMessage>, JobError> {
        self.factory.read().await.clone().ok_or_else(|| {
            JobError::retry(FailureClass::WorkerCrash, "the OCR pool is not running")
        })
    }
}

const CRASHED: &str = "the OCR worker crashed while reading this receipt; \
                       it has been replaced";

impl ReceiptReader for OcrPool {
    async fn read(&self, image: Bytes, progress: Progress) -> Result<ReceiptReading, JobError> {
        let factory = self.factory().await?;
        let started = Instant::now();
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
            Ok(CallResult::Success(Ok(reading))) => Ok(reading),
            Ok(CallResult::Success(Err(e))) if e.is_permanent() => {
                Err(JobError::permanent_from(FailureClass::BadImage, e))
            }
            Ok(CallResult::Success(Err(e))) => {
                Err(JobError::retry_from(FailureClass::OcrEngine, e))
            }
            // The worker went away mid-read: stuck past the timeout and
            // replaced by the dead-man's switch, or crashed.
            _ if started.elapsed() >= self.settings.read_timeout => Err(timed_out(&self.settings)),
            _ => Err(JobError::retry(FailureClass::WorkerCrash, CRASHED)),
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
