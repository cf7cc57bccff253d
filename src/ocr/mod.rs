//! Reading a receipt image: preprocessing, an OCR engine (Tesseract or
//! PP-OCR, both producing an [`OcrPage`]), and parsing the text into fields.
//! Everything here is synchronous and CPU-bound; callers run it on blocking
//! threads.

pub mod engine;
pub mod integrity;
pub mod page;
pub mod parse;
pub mod passes;
pub mod ppocr;
pub mod preprocess;
pub mod settings;
pub mod tesseract;

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveTime};

pub use engine::{EngineKind, InitError, OcrEngine, OcrError};
pub use page::{BBox, OcrLine, OcrPage, OcrWord};
pub use parse::parse_receipt;
pub use settings::{EngineChoice, EngineSettings};

/// What the parser found in a receipt's text. Every field is optional: a
/// receipt that cannot be read well still yields a row with what was found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedReceipt {
    pub store_name: Option<String>,
    pub total_amount: Option<BigDecimal>,
    /// ISO 4217 code where the receipt names one (`USD`, `MYR`, `EUR`, …).
    pub currency: Option<String>,
    pub purchase_date: Option<NaiveDate>,
    /// Time of purchase, as printed beside the date.
    pub time: Option<NaiveTime>,
    /// The sum of the items before tax, as printed.
    pub subtotal: Option<BigDecimal>,
    /// All tax lines added up (GST, VAT, sales tax, service tax).
    pub tax: Option<BigDecimal>,
    pub tip: Option<BigDecimal>,
    /// How it was paid: `VISA`, `MASTERCARD`, `AMEX`, `DISCOVER`, `DEBIT`,
    /// `CREDIT`, `CASH`.
    pub payment_method: Option<String>,
    /// The store's street address; lines of it joined with `, `.
    pub address: Option<String>,
    pub phone: Option<String>,
    pub items: Vec<ParsedItem>,
    pub confidence: FieldConfidence,
    /// Where on the receipt each field was read.
    pub lines: FieldLines,
}

/// The source line of each field: an index into `text.lines()` of the text
/// given to [`parse_receipt`], counting empty lines, so that line `i` is the
/// OCR engine's line `i` and its box. `None` when the field was not found
/// or was computed rather than read (a total from subtotal + tax).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldLines {
    pub store_name: Option<usize>,
    pub total_amount: Option<usize>,
    pub purchase_date: Option<usize>,
    pub time: Option<usize>,
    pub subtotal: Option<usize>,
    /// The first tax line when there are several.
    pub tax: Option<usize>,
    pub tip: Option<usize>,
    pub payment_method: Option<usize>,
    /// The first line of the address.
    pub address: Option<usize>,
    pub phone: Option<usize>,
}

impl FieldLines {
    /// The same lines, `by` further down: for text appended after another.
    pub fn shifted(self, by: usize) -> FieldLines {
        let shift = |line: Option<usize>| line.map(|l| l + by);
        FieldLines {
            store_name: shift(self.store_name),
            total_amount: shift(self.total_amount),
            purchase_date: shift(self.purchase_date),
            time: shift(self.time),
            subtotal: shift(self.subtotal),
            tax: shift(self.tax),
            tip: shift(self.tip),
            payment_method: shift(self.payment_method),
            address: shift(self.address),
            phone: shift(self.phone),
        }
    }
}

/// One line item. `unit_price * quantity` is `line_total` unless the receipt
/// printed something else (discounts, rounding).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedItem {
    pub name: String,
    pub quantity: BigDecimal,
    pub unit_price: BigDecimal,
    pub line_total: BigDecimal,
    /// The source line of the price (see [`FieldLines`] for the numbering).
    pub line: Option<usize>,
}

/// How sure the parser is of each field, 0.0–1.0; `overall` is what a client
/// compares against a threshold to flag a receipt for review.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FieldConfidence {
    pub store_name: f32,
    pub total_amount: f32,
    pub purchase_date: f32,
    pub items: f32,
    pub time: f32,
    pub subtotal: f32,
    pub tax: f32,
    pub tip: f32,
    pub payment_method: f32,
    pub address: f32,
    pub phone: f32,
    pub overall: f32,
}

/// The full outcome of reading one image.
#[derive(Debug, Clone)]
pub struct ReceiptReading {
    /// Exactly `page.text()`: line `i` of `text.lines()` is `page.lines[i]`.
    pub text: String,
    /// The engine's mean word confidence, 0–100.
    pub ocr_confidence: f32,
    pub receipt: ParsedReceipt,
    /// What the engine(s) saw: lines of words with boxes and confidences.
    pub page: OcrPage,
    /// Which engine(s) read it, in the order their lines appear in `page`.
    pub engines: Vec<EngineKind>,
}

/// The stages of reading, reported as job progress as each one finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Loaded,
    Preprocessed,
    Recognised,
    Parsed,
}

impl Stage {
    /// The job progress (0–100) reached when this stage is done.
    pub fn progress(self) -> u8 {
        match self {
            Stage::Loaded => 10,
            Stage::Preprocessed => 30,
            Stage::Recognised => 80,
            Stage::Parsed => 90,
        }
    }
}
