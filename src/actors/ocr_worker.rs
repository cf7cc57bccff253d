//! One OCR worker: owns an OCR engine and reads one receipt at a time
//! on a blocking thread, reporting progress as it goes.
//!
//! A panic while reading propagates out of the handler on purpose: ractor
//! turns it into a supervision event, the supervisor starts a fresh worker
//! (with a fresh engine, the old one being in an unknown state) and the job
//! is retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{Instrument, info_span};

use super::{JobError, OcrJobData};
use crate::jobs::ReceiptSummary;
use crate::ocr::{EngineSettings, OcrEngine, ReceiptReading, Stage, integrity};
use crate::store::content_hash;
use crate::store::models::{NewReceipt, ReceiptStatus};
use crate::store::{BlobError, BlobStore, Db};

pub struct OcrWorker;

/// What a worker needs; cloned into each restart.
#[derive(Clone)]
pub struct OcrWorkerArgs {
    pub db: Db,
    pub blobs: BlobStore,
    /// Which OCR engine(s) to start, and where their models are.
    pub engine: EngineSettings,
    /// Test-only: how many more reads in this process should panic.
    pub injected_panics: Arc<AtomicU32>,
}

pub struct OcrWorkerState {
    /// `None` only while the engine is lent to a blocking thread.
    engine: Option<OcrEngine>,
    args: OcrWorkerArgs,
}

pub struct ReadRequest {
    pub job_id: String,
    pub data: OcrJobData,
    /// Progress percentages, in order.
    pub progress: UnboundedSender<u8>,
    /// The job's processing span: the worker's spans are its children.
    pub span: tracing::Span,
}

pub enum OcrMessage {
    Read(ReadRequest, RpcReplyPort<Result<ReceiptSummary, JobError>>),
}

impl Actor for OcrWorker {
    type Msg = OcrMessage;
    type State = OcrWorkerState;
    type Arguments = OcrWorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: OcrWorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let settings = args.engine.clone();
        let engine = tokio::task::spawn_blocking(move || OcrEngine::new(&settings)).await??;
        Ok(OcrWorkerState {
            engine: Some(engine),
            args,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: OcrMessage,
        state: &mut OcrWorkerState,
    ) -> Result<(), ActorProcessingErr> {
        let OcrMessage::Read(request, reply) = message;
        let outcome = state.read_and_save(request).await;
        // The caller may have gone (worker shutting down); nothing to do then.
        let _ = reply.send(outcome);
        if state.engine.is_none() {
            // The read was cancelled with the engine on its thread: without
            // one this worker is useless, so fail and let it be replaced.
            return Err("the OCR engine was lost with a cancelled read".into());
        }
        Ok(())
    }
}

impl OcrWorkerState {
    async fn read_and_save(&mut self, request: ReadRequest) -> Result<ReceiptSummary, JobError> {
        let ReadRequest {
            job_id,
            data,
            progress,
            span,
        } = request;
        let db = self.args.db.clone();
        let blobs = self.args.blobs.clone();
        let download = async {
            let image = blobs.get(&data.blob_key).await.map_err(blob_error)?;
            let receipt = NewReceipt {
                id: data.receipt_id,
                job_id,
                status: ReceiptStatus::Processing.as_str().to_string(),
                blob_key: data.blob_key.clone(),
                content_type: data.content_type.clone(),
                content_hash: content_hash(&image),
            };
            db.begin_processing(&receipt).await.map_err(transient)?;
            Ok::<_, JobError>(image)
        };
        let image = download
            .instrument(info_span!(parent: &span, "download"))
            .await?;
        integrity::check_whole(&image).map_err(|e| JobError::Permanent(e.to_string()))?;
        if take_injected_panic(&self.args.injected_panics) {
            panic!("injected OCR worker panic (OCR_INJECT_PANICS)");
        }
        let read_span = info_span!(parent: &span, "ocr", bytes = image.len());
        let reading = self
            .read(image, progress.clone())
            .instrument(read_span)
            .await?;
        let save = db.save_reading(data.receipt_id, &reading);
        save.instrument(info_span!(parent: &span, "save", items = reading.receipt.items.len()))
            .await
            .map_err(transient)?;
        Ok(ReceiptSummary::from_reading(data.receipt_id, &reading))
    }

    /// Run the OCR engine on a blocking thread, lending it the engine.
    async fn read(
        &mut self,
        image: bytes::Bytes,
        progress: UnboundedSender<u8>,
    ) -> Result<ReceiptReading, JobError> {
        // The engine is put back after every read, and a read that panics
        // takes the whole actor down, so it is always here.
        let mut engine = self.engine.take().expect("engine present between reads");
        let parent = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            // Each stage gets a span, opened when the previous stage ends.
            let mut stage_span: Option<tracing::span::EnteredSpan> = None;
            let outcome = engine.read(&image, &mut |stage| {
                drop(stage_span.take());
                let _ = progress.send(stage.progress());
                stage_span = span_after(&parent, stage).map(tracing::Span::entered);
            });
            drop(stage_span);
            (engine, outcome)
        })
        .await;
        let (engine, outcome) = match joined {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => return Err(JobError::Transient(format!("OCR task was cancelled: {e}"))),
        };
        self.engine = Some(engine);
        outcome.map_err(|e| {
            if e.is_permanent() {
                JobError::Permanent(e.to_string())
            } else {
                JobError::Transient(e.to_string())
            }
        })
    }
}

/// The span of the stage that starts when `done` ends.
fn span_after(parent: &tracing::Span, done: Stage) -> Option<tracing::Span> {
    match done {
        Stage::Loaded => Some(info_span!(parent: parent, "preprocess")),
        Stage::Preprocessed => Some(info_span!(parent: parent, "recognise")),
        Stage::Recognised => Some(info_span!(parent: parent, "parse")),
        Stage::Parsed => None,
    }
}

fn take_injected_panic(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn transient(e: impl ToString) -> JobError {
    JobError::Transient(e.to_string())
}

fn blob_error(e: BlobError) -> JobError {
    match e {
        BlobError::Missing(_) => JobError::Permanent(e.to_string()),
        other => JobError::Transient(other.to_string()),
    }
}
