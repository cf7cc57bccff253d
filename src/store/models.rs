//! Rows of the `receipts` and `receipt_items` tables.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{Insertable, Queryable, Selectable};
use uuid::Uuid;

use super::schema::{receipt_items, receipts};

/// Where a receipt is in its life; mirrors the job's final states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Queued,
    Processing,
    Completed,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw {
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

/// The placeholder written at upload time.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = receipts)]
pub struct NewReceipt {
    pub id: Uuid,
    pub job_id: String,
    pub status: String,
    pub blob_key: String,
    pub content_type: String,
    pub content_hash: String,
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

/// A receipt with its items, as the service functions hand it out.
#[derive(Debug, Clone)]
pub struct StoredReceipt {
    pub row: ReceiptRow,
    pub items: Vec<ItemRow>,
}

impl StoredReceipt {
    /// Completed or failed: nothing will change it any more.
    pub fn is_finished(&self) -> bool {
        matches!(
            ReceiptStatus::parse(&self.row.status),
            ReceiptStatus::Completed | ReceiptStatus::Failed
        )
    }
}
