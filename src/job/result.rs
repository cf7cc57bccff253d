//! What a completed receipt job yields: the same type is the BullMQ return
//! value, the source of the stored row, and what both APIs show.

use chrono::{NaiveDate, NaiveTime};
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
    #[oai(nullable)]
    pub line_total: Option<f64>,
    /// Where on the image the item's price was read.
    #[serde(default)]
    #[oai(nullable)]
    pub bbox: Option<ReceiptBox>,
}

/// A rectangle on the uploaded image, in its pixels (after EXIF rotation),
/// origin top left.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    poem_openapi::Object,
    async_graphql::SimpleObject,
)]
pub struct ReceiptBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Where on the image each field was read: the box of its line (the first
/// line for an address). Null for a field not found, or computed rather
/// than read (a total from subtotal + tax).
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
#[serde(rename_all = "camelCase", default)]
#[oai(rename_all = "camelCase")]
pub struct FieldBoxes {
    #[oai(nullable)]
    pub store_name: Option<ReceiptBox>,
    #[oai(nullable)]
    pub total_amount: Option<ReceiptBox>,
    #[oai(nullable)]
    pub date: Option<ReceiptBox>,
    #[oai(nullable)]
    pub time: Option<ReceiptBox>,
    #[oai(nullable)]
    pub subtotal: Option<ReceiptBox>,
    #[oai(nullable)]
    pub tax: Option<ReceiptBox>,
    #[oai(nullable)]
    pub tip: Option<ReceiptBox>,
    #[oai(nullable)]
    pub payment_method: Option<ReceiptBox>,
    #[oai(nullable)]
    pub address: Option<ReceiptBox>,
    #[oai(nullable)]
    pub phone: Option<ReceiptBox>,
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
    #[serde(default)]
    pub time: f32,
    #[serde(default)]
    pub subtotal: f32,
    #[serde(default)]
    pub tax: f32,
    #[serde(default)]
    pub tip: f32,
    #[serde(default)]
    pub payment_method: f32,
    #[serde(default)]
    pub address: f32,
    #[serde(default)]
    pub phone: f32,
}

/// The result of a completed job.
#[derive(
    Debug,
    Clone,
    Default,
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
    #[oai(nullable)]
    pub store_name: Option<String>,
    #[oai(nullable)]
    pub total_amount: Option<f64>,
    pub items: Vec<ReceiptItem>,
    /// ISO 4217 code, where the receipt shows one.
    #[serde(default)]
    #[oai(nullable)]
    pub currency: Option<String>,
    /// Purchase date printed on the receipt.
    #[serde(default)]
    #[oai(nullable)]
    pub date: Option<NaiveDate>,
    /// Time of purchase printed beside the date.
    #[serde(default)]
    #[oai(nullable)]
    pub time: Option<NaiveTime>,
    /// The items' sum before tax, as printed.
    #[serde(default)]
    #[oai(nullable)]
    pub subtotal: Option<f64>,
    /// All tax lines added up.
    #[serde(default)]
    #[oai(nullable)]
    pub tax: Option<f64>,
    #[serde(default)]
    #[oai(nullable)]
    pub tip: Option<f64>,
    /// `VISA`, `MASTERCARD`, `AMEX`, `DISCOVER`, `DEBIT`, `CREDIT` or `CASH`.
    #[serde(default)]
    #[oai(nullable)]
    pub payment_method: Option<String>,
    /// The store's address, lines joined with `, `.
    #[serde(default)]
    #[oai(nullable)]
    pub address: Option<String>,
    #[serde(default)]
    #[oai(nullable)]
    pub phone: Option<String>,
    #[serde(default)]
    #[oai(nullable)]
    pub confidence: Option<Confidence>,
    /// Where on the image each field was read.
    #[serde(default)]
    #[oai(nullable)]
    pub boxes: Option<FieldBoxes>,
    /// What read the receipt: `tesseract`, `ppocr`, `ppocr-v6` (auto's second reading), or `pdf-text` (a PDF's text layer, no OCR).
    #[serde(default)]
    pub engines: Vec<String>,
}
