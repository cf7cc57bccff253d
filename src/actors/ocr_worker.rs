//! One OCR worker of the pool: owns an OCR engine and reads one image at a
//! time on a blocking thread, reporting progress as each stage ends. It
//! does no I/O: image bytes in, a reading out.
//!
//! A panic while reading propagates out of the handler on purpose: the
//! factory replaces the worker (with a fresh engine, the old one being in
//! an unknown state), the caller's reply port is dropped, and the job is
//! retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use ractor::factory::{FactoryMessage, Job, Worker, WorkerId};
use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::ocr::{EngineSettings, OcrEngine, OcrError, ReceiptReading, Stage};
use crate::pipeline::Progress;
use crate::telemetry::metrics::metrics;

/// Read one image; the reply carries the reading or why it failed.
pub struct ReadImage {
    pub image: Bytes,
    pub progress: Progress,
    /// The span the stage spans go under.
    pub span: tracing::Span,
    pub reply: RpcReplyPort<Result<ReceiptReading, OcrError>>,
}

pub type PoolMessage = FactoryMessage<(), ReadImage>;

pub struct OcrWorker;

/// What each worker of a pool starts with.
#[derive(Clone)]
pub struct WorkerArgs {
    pub engine: EngineSettings,
    pub counters: WorkerCounters,
}

/// What every worker of a pool shares with the pool.
#[derive(Clone, Default)]
pub struct WorkerCounters {
    /// Workers whose engine is loaded and not yet dropped.
    pub live: Arc<AtomicUsize>,
    /// Workers ever started, first ones included.
    pub started: Arc<AtomicUsize>,
    /// How many workers the pool starts with (later ones are replacements).
    pub initial: usize,
    /// Test-only: how many more reads in this pool should panic.
    #[cfg(feature = "fault-injection")]
    pub injected_panics: Arc<std::sync::atomic::AtomicU32>,
    /// Test-only: how long (ms) the next read is held; taken once.
    #[cfg(feature = "fault-injection")]
    pub injected_hold_ms: Arc<std::sync::atomic::AtomicU64>,
}

pub struct OcrWorkerState {
    /// `None` only while the engine is lent to a blocking thread.
    engine: Option<OcrEngine>,
    _live: LiveGuard,
    #[cfg(feature = "fault-injection")]
    injected_panics: Arc<std::sync::atomic::AtomicU32>,
    #[cfg(feature = "fault-injection")]
    injected_hold_ms: Arc<std::sync::atomic::AtomicU64>,
}

/// Counts a worker live from its start until its state is dropped, which
/// happens however it ends (a panic included).
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        metrics().ocr_workers.dec();
    }
}

impl Worker for OcrWorker {
    type Key = ();
    type Message = ReadImage;
    type Arguments = WorkerArgs;
    type State = OcrWorkerState;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<PoolMessage>,
        WorkerArgs { engine, counters }: WorkerArgs,
    ) -> Result<OcrWorkerState, ActorProcessingErr> {
        let engine = tokio::task::spawn_blocking(move || OcrEngine::new(&engine)).await??;
        let started_before = counters.started.fetch_add(1, Ordering::SeqCst);
        if started_before >= counters.initial {
            let restarts = &metrics().worker_restarts;
            restarts.with_label_values(&["ocr"]).inc();
        }
        counters.live.fetch_add(1, Ordering::SeqCst);
        metrics().ocr_workers.inc();
        Ok(OcrWorkerState {
            engine: Some(engine),
            _live: LiveGuard(counters.live.clone()),
            #[cfg(feature = "fault-injection")]
            injected_panics: counters.injected_panics.clone(),
            #[cfg(feature = "fault-injection")]
            injected_hold_ms: counters.injected_hold_ms.clone(),
        })
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<PoolMessage>,
        job: Job<(), ReadImage>,
        state: &mut OcrWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let ReadImage {
            image,
            progress,
            span,
            reply,
        } = job.msg;
        state.maybe_panic();
        let outcome = state.read(image, progress, span).await;
        // The caller may have gone (shutting down); nothing to do then.
        let _ = reply.send(outcome);
        Ok(())
    }
}

impl OcrWorkerState {
    /// Run the engine on a blocking thread, lending it the engine.
    async fn read(
        &mut self,
        image: Bytes,
        progress: Progress,
        parent: tracing::Span,
    ) -> Result<ReceiptReading, OcrError> {
        // The engine is put back after every read, and a read that panics
        // takes the whole worker down, so it is always here.
        let mut engine = self.engine.take().expect("engine present between reads");
        let hold = self.take_hold();
        let joined = tokio::task::spawn_blocking(move || {
            if !hold.is_zero() {
                // Said first, so that a test knows the read is under way.
                let _ = progress.send(Stage::Loaded.progress());
                std::thread::sleep(hold);
            }
            // The engine opens a span per stage (preprocess, recognise,
            // parse) under the job's, which it finds entered here.
            let _job = parent.enter();
            let _busy = BusyGuard::start();
            // The job drops its end of `progress` when it stops waiting
            // (timed out, cancelled): a PDF's remaining pages are skipped.
            let on_stage = &mut |stage: Stage| {
                let _ = progress.send(stage.progress());
            };
            let wanted = &|| !progress.is_closed();
            let outcome = crate::inputs::read_upload(&mut engine, &image, on_stage, wanted);
            (engine, outcome)
        })
        .await;
        match joined {
            Ok((engine, outcome)) => {
                self.engine = Some(engine);
                outcome
            }
            // A panic in the engine: take this worker down with it.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("the OCR thread was cancelled with the engine on it: {e}"),
        }
    }

    #[cfg(feature = "fault-injection")]
    fn maybe_panic(&self) {
        let take = self
            .injected_panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if take.is_ok() {
            panic!("injected OCR worker panic (OCR_INJECT_PANICS)");
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    fn maybe_panic(&self) {}

    /// How long to hold this read (test-only; zero otherwise).
    #[cfg(feature = "fault-injection")]
    fn take_hold(&self) -> std::time::Duration {
        let ms = self.injected_hold_ms.swap(0, Ordering::SeqCst);
        std::time::Duration::from_millis(ms)
    }

    #[cfg(not(feature = "fault-injection"))]
    fn take_hold(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Counts an OCR worker busy (`receipt_ocr_ocr_workers_busy`) for as long
/// as it lives, which ends however the read ends (a panic included).
struct BusyGuard;

impl BusyGuard {
    fn start() -> Self {
        metrics().ocr_workers_busy.inc();
        Self
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        metrics().ocr_workers_busy.dec();
    }
}
