//! A page of the receipt listing as clients see it: one summary per
//! receipt and the opaque cursor of the next page.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::listing::ListedRow;

/// One receipt in a listing: its state and the headline fields.
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
    pub id: Uuid,
    pub job_id: String,
    /// `queued`, `processing`, `completed`, `failed` or `cancelled` (the job's state as
    /// the receipt row knows it; Redis is not asked per row).
    pub status: String,
    #[oai(nullable)]
    pub store_name: Option<String>,
    #[oai(nullable)]
    pub total_amount: Option<f64>,
    #[oai(nullable)]
    pub currency: Option<String>,
    #[oai(nullable)]
    pub purchase_date: Option<NaiveDate>,
    #[oai(nullable)]
    pub failed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Receipts newest first; pass `nextCursor` back as `cursor` for the next.
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
pub struct ReceiptPage {
    pub receipts: Vec<ReceiptSummary>,
    /// Null on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl ReceiptSummary {
    pub(crate) fn from_row(row: &ListedRow) -> Self {
        use bigdecimal::ToPrimitive;
        Self {
            id: row.id,
            job_id: row.job_id.clone(),
            status: row.status.clone(),
            store_name: row.store_name.clone(),
            total_amount: row.total_amount.as_ref().and_then(ToPrimitive::to_f64),
            currency: row.currency.clone(),
            purchase_date: row.purchase_date,
            failed_reason: row.failed_reason.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}
