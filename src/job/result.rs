//! What a completed receipt job yields: the same type is the BullMQ return
//! value, the source of the stored row, and what both APIs show.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// The result of a completed job.
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
pub struct ReceiptResult {
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
