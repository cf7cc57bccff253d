//! The shapes clients see, shared by REST (poem-openapi), GraphQL and the
//! job's BullMQ return value, so the three can never drift apart.

use bigdecimal::{BigDecimal, ToPrimitive};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::queue_state_name;
use crate::actors::queue::QueueJob;
use crate::ocr::ReceiptReading;
use crate::store::models::{ItemRow, ReceiptStatus, StoredReceipt};

/// Money and quantities are exact in the database; JSON carries numbers.
fn number(value: &BigDecimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

/// One line of a receipt. `price` is the unit price.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ReceiptItem {
    pub name: String,
    pub quantity: f64,
    /// Unit price.
    pub price: f64,
    /// quantity × price as printed (after any discount on the line).
    pub line_total: Option<f64>,
}

impl From<&ItemRow> for ReceiptItem {
    fn from(row: &ItemRow) -> Self {
        Self {
            name: row.name.clone(),
            quantity: number(&row.quantity),
            price: number(&row.unit_price),
            line_total: Some(number(&row.line_total)),
        }
    }
}

/// How sure the parser is of each field (0–1); flag receipts below a
/// threshold of `overall` for review.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Default,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct Confidence {
    pub overall: f32,
    pub store_name: f32,
    pub total_amount: f32,
    pub date: f32,
    pub items: f32,
}

/// The result of a completed job (also its BullMQ `returnvalue`).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ReceiptSummary {
    pub receipt_id: Uuid,
    pub store_name: Option<String>,
    pub total_amount: Option<f64>,
    pub items: Vec<ReceiptItem>,
    /// ISO 4217 code, where the receipt shows one.
    #[serde(default)]
    pub currency: Option<String>,
    /// Purchase date printed on the receipt.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    #[serde(default)]
    pub confidence: Option<Confidence>,
}

impl ReceiptSummary {
    pub fn from_reading(receipt_id: Uuid, reading: &ReceiptReading) -> Self {
        let parsed = &reading.receipt;
        let c = parsed.confidence;
        Self {
            receipt_id,
            store_name: parsed.store_name.clone(),
            total_amount: parsed.total_amount.as_ref().map(number),
            items: parsed
                .items
                .iter()
                .map(|i| ReceiptItem {
                    name: i.name.clone(),
                    quantity: number(&i.quantity),
                    price: number(&i.unit_price),
                    line_total: Some(number(&i.line_total)),
                })
                .collect(),
            currency: parsed.currency.clone(),
            date: parsed.purchase_date,
            confidence: Some(Confidence {
                overall: c.overall,
                store_name: c.store_name,
                total_amount: c.total_amount,
                date: c.purchase_date,
                items: c.items,
            }),
        }
    }

    fn from_stored(stored: &StoredReceipt) -> Self {
        let row = &stored.row;
        Self {
            receipt_id: row.id,
            store_name: row.store_name.clone(),
            total_amount: row.total_amount.as_ref().map(number),
            items: stored.items.iter().map(ReceiptItem::from).collect(),
            currency: row.currency.clone(),
            date: row.purchase_date,
            confidence: stored_confidence(stored),
        }
    }
}

fn stored_confidence(stored: &StoredReceipt) -> Option<Confidence> {
    let fields = stored.row.field_confidence.as_ref()?;
    let mut confidence: Confidence = serde_json::from_value(fields.clone()).ok()?;
    confidence.overall = stored.row.confidence.unwrap_or_default();
    Some(confidence)
}

/// A job as clients poll it.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct JobStatusView {
    pub id: String,
    /// `waiting`, `active`, `completed`, `failed`, `delayed`, `prioritized` or `unknown`.
    pub state: String,
    /// 0–100.
    pub progress: u32,
    /// Null until the job has completed.
    pub result: Option<ReceiptSummary>,
    pub failed_reason: Option<String>,
}

impl JobStatusView {
    pub(crate) fn from_queue(job: &QueueJob) -> Self {
        let state = queue_state_name(job);
        let result = (state == "completed")
            .then(|| {
                job.return_value
                    .clone()
                    .and_then(|v| serde_json::from_value(v).ok())
            })
            .flatten();
        Self {
            id: job.id.clone(),
            state: state.to_string(),
            progress: u32::from(job.progress),
            result,
            failed_reason: job.failed_reason.clone(),
        }
    }

    /// After Redis has trimmed the job, the receipt row still answers.
    pub(crate) fn from_receipt(stored: &StoredReceipt) -> Self {
        let row = &stored.row;
        let (state, progress) = match ReceiptStatus::parse(&row.status) {
            ReceiptStatus::Completed => ("completed", 100),
            ReceiptStatus::Failed => ("failed", 100),
            // Queued or processing in the row but absent from Redis: the
            // queue lost track of it (flushed Redis?).
            _ => ("unknown", 0),
        };
        Self {
            id: row.job_id.clone(),
            state: state.to_string(),
            progress,
            result: (state == "completed").then(|| ReceiptSummary::from_stored(stored)),
            failed_reason: row.failed_reason.clone(),
        }
    }
}

/// A stored receipt.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct ReceiptView {
    pub id: Uuid,
    pub store_name: Option<String>,
    pub total_amount: Option<f64>,
    pub items: Vec<ReceiptItem>,
    pub job_id: Option<String>,
    /// `queued`, `processing`, `completed` or `failed`.
    pub status: Option<String>,
    pub currency: Option<String>,
    pub date: Option<NaiveDate>,
    pub confidence: Option<Confidence>,
    pub failed_reason: Option<String>,
}

impl ReceiptView {
    pub(crate) fn from_stored(stored: &StoredReceipt) -> Self {
        let summary = ReceiptSummary::from_stored(stored);
        Self {
            id: summary.receipt_id,
            store_name: summary.store_name,
            total_amount: summary.total_amount,
            items: summary.items,
            job_id: Some(stored.row.job_id.clone()),
            status: Some(stored.row.status.clone()),
            currency: summary.currency,
            date: summary.date,
            confidence: summary.confidence,
            failed_reason: stored.row.failed_reason.clone(),
        }
    }

    fn placeholder(id: Uuid, job_id: &str) -> Self {
        Self {
            id,
            store_name: None,
            total_amount: None,
            items: Vec::new(),
            job_id: Some(job_id.to_string()),
            status: Some(ReceiptStatus::Queued.as_str().to_string()),
            currency: None,
            date: None,
            confidence: None,
            failed_reason: None,
        }
    }
}

/// The answer to an accepted upload (the seed's shape).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct UploadAccepted {
    pub job_id: String,
    pub receipt_id: Uuid,
    pub message: String,
    /// Always `processing`.
    pub status: String,
    pub receipt: ReceiptView,
}

impl UploadAccepted {
    pub(crate) fn new(job_id: String, receipt_id: Uuid) -> Self {
        Self {
            receipt: ReceiptView::placeholder(receipt_id, &job_id),
            job_id,
            receipt_id,
            message: "File uploaded successfully. OCR processing started in background."
                .to_string(),
            status: "processing".to_string(),
        }
    }
}
