//! The pipeline with a fake store and a fake reader: no Redis, no
//! PostgreSQL, no Tesseract. Blobs are a real local directory.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::*;
use crate::ocr::{EngineKind, OcrPage, ParsedReceipt, ReceiptReading};

/// What the fake store was asked to do, in order.
#[derive(Debug, Clone, PartialEq)]
enum Recorded {
    Processing(String),
    Saved(Uuid),
    Failed(String, String, u32),
}

#[derive(Default)]
struct FakeRecords(Mutex<Vec<Recorded>>);

impl FakeRecords {
    fn push(&self, event: Recorded) {
        // A poisoned lock means another assertion already failed.
        self.0.lock().expect("records lock").push(event);
    }

    fn events(&self) -> Vec<Recorded> {
        self.0.lock().expect("records lock").clone()
    }
}

impl ReceiptRecords for FakeRecords {
    async fn begin_processing(&self, receipt: &NewReceipt) -> Result<bool, DbError> {
        self.push(Recorded::Processing(receipt.job_id.clone()));
        Ok(true)
    }

    async fn save_reading(
        &self,
        receipt_id: Uuid,
        reading: &ReceiptReading,
    ) -> Result<Option<ReceiptResult>, DbError> {
        self.push(Recorded::Saved(receipt_id));
        Ok(Some(ReceiptResult {
            receipt_id,
            store_name: reading.receipt.store_name.clone(),
            ..ReceiptResult::default()
        }))
    }

    async fn mark_failed(&self, job_id: &str, reason: &str, run: u32) -> Result<(), DbError> {
        self.push(Recorded::Failed(job_id.into(), reason.into(), run));
        Ok(())
    }
}

/// Reads every image as the same store, or fails as told.
struct FakeReader {
    fails_with: Option<fn() -> JobError>,
}

impl ReceiptReader for FakeReader {
    async fn read(&self, _image: Bytes, progress: Progress) -> Result<ReceiptReading, JobError> {
        if let Some(error) = self.fails_with {
            return Err(error());
        }
        for percent in [10, 30, 80, 90] {
            let _ = progress.send(percent);
        }
        Ok(ReceiptReading {
            text: "CORNER MARKET".into(),
            ocr_confidence: 90.0,
            receipt: ParsedReceipt {
                store_name: Some("CORNER MARKET".into()),
                ..ParsedReceipt::default()
            },
            page: OcrPage::default(),
            engines: vec![EngineKind::Tesseract],
        })
    }
}

struct Fixture {
    pipeline: ReceiptPipeline<FakeRecords, FakeReader>,
    attempt: JobAttempt,
}

async fn fixture(image: Option<&[u8]>, fails_with: Option<fn() -> JobError>) -> Fixture {
    let dir = std::env::temp_dir().join(format!("pipeline-test-{}", Uuid::new_v4()));
    let blobs = BlobStore::open(&dir.display().to_string()).expect("a local blob store");
    let receipt_id = Uuid::new_v4();
    let blob_key = format!("receipts/{receipt_id}.png");
    if let Some(image) = image {
        blobs
            .put(&blob_key, Bytes::copy_from_slice(image))
            .await
            .expect("store the image");
    }
    let attempt = JobAttempt {
        job_id: "ocr-1-test".into(),
        data: ReceiptJobData {
            receipt_id,
            blob_key,
            content_type: "image/png".into(),
            trace_context: Default::default(),
            run: 0,
        },
        attempt: 1,
        max_attempts: 3,
        saving: Default::default(),
    };
    let pipeline = ReceiptPipeline::new(FakeRecords::default(), blobs, FakeReader { fails_with });
    Fixture { pipeline, attempt }
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n fake but whole";

#[tokio::test]
async fn a_receipt_is_marked_processing_read_and_saved_in_that_order() {
    let f = fixture(Some(PNG), None).await;
    let (progress, mut reports) = mpsc::unbounded_channel();
    let result = f.pipeline.run(&f.attempt, progress).await.expect("read");
    assert_eq!(result.receipt_id, f.attempt.data.receipt_id);
    assert_eq!(result.store_name.as_deref(), Some("CORNER MARKET"));
    assert_eq!(
        f.pipeline.records.events(),
        [
            Recorded::Processing("ocr-1-test".into()),
            Recorded::Saved(f.attempt.data.receipt_id)
        ]
    );
    let mut seen = Vec::new();
    while let Ok(percent) = reports.try_recv() {
        seen.push(percent);
    }
    assert_eq!(seen, [10, 30, 80, 90]);
}

#[tokio::test]
async fn a_missing_image_fails_permanently_and_leaves_the_receipt_to_the_failed_event() {
    let f = fixture(None, None).await;
    let (progress, _reports) = mpsc::unbounded_channel();
    let error = f
        .pipeline
        .run(&f.attempt, progress)
        .await
        .expect_err("fails");
    assert!(error.is_permanent(), "{error:?}");
    assert!(error.reason().contains("missing"), "{error}");
    // Recorded once BullMQ has failed the job (the worker's event).
    assert_eq!(f.pipeline.records.events(), []);
}

#[tokio::test]
async fn a_truncated_jpeg_is_a_permanent_failure() {
    let f = fixture(Some(b"\xFF\xD8\xFF\xE0 cut off"), None).await;
    let (progress, _reports) = mpsc::unbounded_channel();
    let error = f
        .pipeline
        .run(&f.attempt, progress)
        .await
        .expect_err("fails");
    assert!(error.is_permanent(), "{error:?}");
    assert_eq!(
        f.pipeline.records.events(),
        [Recorded::Processing("ocr-1-test".into())]
    );
}

#[tokio::test]
async fn no_attempt_marks_the_receipt_failed_itself_not_even_the_last() {
    let crash = || {
        JobError::retry(
            crate::job::FailureClass::WorkerCrash,
            "the OCR worker crashed",
        )
    };
    let mut f = fixture(Some(PNG), Some(crash)).await;
    let (progress, _reports) = mpsc::unbounded_channel();
    let error = f
        .pipeline
        .run(&f.attempt, progress.clone())
        .await
        .expect_err("fails");
    assert!(!error.is_permanent());
    f.attempt.attempt = 3;
    f.pipeline
        .run(&f.attempt, progress)
        .await
        .expect_err("fails again");
    let processing = Recorded::Processing("ocr-1-test".into());
    assert_eq!(
        f.pipeline.records.events(),
        [processing.clone(), processing]
    );

    // BullMQ failed the job: the worker's event records it, on its run.
    f.pipeline
        .job_failed("ocr-1-test", "the OCR worker crashed", 2)
        .await;
    assert_eq!(
        f.pipeline.records.events().last(),
        Some(&Recorded::Failed(
            "ocr-1-test".into(),
            "the OCR worker crashed".into(),
            2
        ))
    );
}
