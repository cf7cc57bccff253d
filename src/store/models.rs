//! Rows of the `receipts` and `receipt_items` tables, and the one
//! conversion from stored rows to the job's [`ReceiptResult`].

use bigdecimal::{BigDecimal, ToPrimitive};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{Insertable, Queryable, Selectable};
use uuid::Uuid;

use super::DbError;
use super::schema::{receipt_items, receipts};
use crate::job::{Confidence, ReceiptItem, ReceiptResult, ReceiptStatus};

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
        }
    }

    /// The SHA-256 of the image (stored to spot duplicates).
    pub fn with_content(mut self, image: &[u8]) -> Self {
        self.content_hash = super::content_hash(image);
        self
    }

    /// The same receipt as a worker first sees it.
    pub fn processing(mut self) -> Self {
        self.status = ReceiptStatus::Processing.to_string();
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
        Ok(ReceiptResult {
            receipt_id: row.id,
            store_name: row.store_name.clone(),
            total_amount: row.total_amount.as_ref().map(number),
            items: self.items.iter().map(item).collect(),
            currency: row.currency.clone(),
            date: row.purchase_date,
            confidence: self.confidence()?,
        })
    }

    fn confidence(&self) -> Result<Option<Confidence>, DbError> {
        let Some(stored) = &self.row.field_confidence else {
            return Ok(None);
        };
        serde_json::from_value(stored.clone())
            .map(Some)
            .map_err(|e| DbError::Corrupt(self.row.id, format!("field_confidence: {e}")))
    }
}

fn item(row: &ItemRow) -> ReceiptItem {
    ReceiptItem {
        name: row.name.clone(),
        quantity: number(&row.quantity),
        price: number(&row.unit_price),
        line_total: Some(number(&row.line_total)),
    }
}
