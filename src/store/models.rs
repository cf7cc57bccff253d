//! Rows of the `receipts` and `receipt_items` tables, and the one
//! conversion from stored rows to the job's [`ReceiptResult`].

use bigdecimal::{BigDecimal, ToPrimitive};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::{Insertable, Queryable, Selectable};
use uuid::Uuid;

use super::DbError;
use super::schema::{receipt_items, receipts};

use crate::job::{ReceiptItem, ReceiptJobData, ReceiptResult, ReceiptStatus};

/// The placeholder written at upload time.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = receipts)]
pub struct NewReceipt {
    pub id: Uuid,
    pub job_id: String,
    status: String,
    pub blob_key: String,
    pub content_type: String,
    pub content_hash: String,
    /// Where this receipt's final event goes, besides WEBHOOK_URLS.
    pub callback_url: Option<String>,
    /// The API key that uploaded it, by name; `None` when the API is open.
    pub owner: Option<String>,
    /// The run of its job (0 at upload; a worker starting a job sets it).
    pub run: i32,
}

impl NewReceipt {
    /// A queued receipt for the job `job_id`; the image is at `blob_key`.
    pub fn queued(id: Uuid, job_id: String, blob_key: String, content_type: String) -> Self {
        Self {
            id,
            job_id,
            status: ReceiptStatus::Queued.to_string(),
            blob_key,
            content_type,
            content_hash: String::new(),
            callback_url: None,
            owner: None,
            run: 0,
        }
    }

    /// The upload's own webhook target.
    pub fn with_callback(mut self, url: Option<String>) -> Self {
        self.callback_url = url;
        self
    }

    /// The API key (by name) the receipt belongs to.
    pub fn owned_by(mut self, owner: Option<&str>) -> Self {
        self.owner = owner.map(String::from);
        self
    }

    /// The SHA-256 of the image (stored to spot duplicates).
    pub fn with_content(mut self, image: &[u8]) -> Self {
        self.content_hash = super::content_hash(image);
        self
    }

    /// The same receipt as a worker first sees it, starting a job that
    /// is the receipt's `run`.
    pub fn processing(mut self, run: u32) -> Self {
        self.status = ReceiptStatus::Processing.to_string();
        self.run = i32::try_from(run).unwrap_or(i32::MAX);
        self
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = receipts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ReceiptRow {
    pub id: Uuid,
    pub job_id: String,
    pub status: String,
    pub store_name: Option<String>,
    pub total_amount: Option<BigDecimal>,
    pub currency: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    pub raw_text: Option<String>,
    pub ocr_confidence: Option<f32>,
    pub confidence: Option<f32>,
    pub field_confidence: Option<serde_json::Value>,
    pub blob_key: String,
    pub content_type: String,
    pub content_hash: String,
    pub failed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub subtotal: Option<BigDecimal>,
    pub tax: Option<BigDecimal>,
    pub tip: Option<BigDecimal>,
    pub payment_method: Option<String>,
    pub purchase_time: Option<NaiveTime>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub field_boxes: Option<serde_json::Value>,
    pub ocr_engines: Option<serde_json::Value>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub callback_url: Option<String>,
    pub owner: Option<String>,
    /// When the image was removed (IMAGE_KEEP_DAYS); the fields stay.
    pub image_removed_at: Option<DateTime<Utc>>,
    /// The run of its job the receipt is on (0, then one more per retry).
    pub run: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = receipt_items)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ItemRow {
    pub receipt_id: Uuid,
    pub position: i32,
    pub name: String,
    pub quantity: BigDecimal,
    pub unit_price: BigDecimal,
    pub line_total: BigDecimal,
    pub bbox: Option<serde_json::Value>,
}

/// A receipt with its items, as the store hands it out.
#[derive(Debug, Clone)]
pub struct StoredReceipt {
    pub row: ReceiptRow,
    pub items: Vec<ItemRow>,
}

/// Money and quantities are exact in the database; JSON carries numbers.
fn number(value: &BigDecimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

impl ReceiptRow {
    /// The data of a job that reads this receipt again (a retry, or a job
    /// Redis lost); the enqueue adds the trace context.
    pub fn job_data(&self) -> ReceiptJobData {
        ReceiptJobData {
            receipt_id: self.id,
            blob_key: self.blob_key.clone(),
            content_type: self.content_type.clone(),
            trace_context: Default::default(),
            run: u32::try_from(self.run).unwrap_or_default(),
        }
    }
}

impl StoredReceipt {
    /// The row's status; a value outside the table's CHECK constraint is
    /// reported, never guessed.
    pub fn status(&self) -> Result<ReceiptStatus, DbError> {
        self.row
            .status
            .parse()
            .map_err(|e| DbError::Corrupt(self.row.id, format!("status: {e}")))
    }

    /// Completed or failed: nothing will change it any more.
    pub fn is_finished(&self) -> Result<bool, DbError> {
        Ok(self.status()?.is_final())
    }

    /// The job's result as stored: the only conversion from rows to results.
    pub fn result(&self) -> Result<ReceiptResult, DbError> {
        let row = &self.row;
        let money = |value: &Option<BigDecimal>| value.as_ref().map(number);
        Ok(ReceiptResult {
            receipt_id: row.id,
            store_name: row.store_name.clone(),
            total_amount: money(&row.total_amount),
            items: self
                .items
                .iter()
                .map(|i| self.item(i))
                .collect::<Result<_, _>>()?,
            currency: row.currency.clone(),
            date: row.purchase_date,
            time: row.purchase_time,
            subtotal: money(&row.subtotal),
            tax: money(&row.tax),
            tip: money(&row.tip),
            payment_method: row.payment_method.clone(),
            address: row.address.clone(),
            phone: row.phone.clone(),
            confidence: self.typed("field_confidence", &row.field_confidence)?,
            boxes: self.typed("field_boxes", &row.field_boxes)?,
            engines: self
                .typed("ocr_engines", &row.ocr_engines)?
                .unwrap_or_default(),
        })
    }

    fn item(&self, row: &ItemRow) -> Result<ReceiptItem, DbError> {
        Ok(ReceiptItem {
            name: row.name.clone(),
            quantity: number(&row.quantity),
            price: number(&row.unit_price),
            line_total: Some(number(&row.line_total)),
            bbox: self.typed("receipt_items.bbox", &row.bbox)?,
        })
    }

    /// A JSONB column read back as the type that was written to it.
    fn typed<T: serde::de::DeserializeOwned>(
        &self,
        column: &str,
        stored: &Option<serde_json::Value>,
    ) -> Result<Option<T>, DbError> {
        let Some(stored) = stored else {
            return Ok(None);
        };
        serde_json::from_value(stored.clone())
            .map(Some)
            .map_err(|e| DbError::Corrupt(self.row.id, format!("{column}: {e}")))
    }
}
