//! End to end through real Tesseract: a receipt rendered with a real font
//! is read by `OcrEngine::read` into its store, date, items and total.
//!
//! The font is DejaVu Sans Mono from Debian's `fonts-dejavu-core`; set
//! `TEST_FONT` to another TrueType file where it lives elsewhere.

use std::io::Cursor;
use std::str::FromStr;

use ab_glyph::{FontVec, PxScale};
use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use image::{GrayImage, ImageFormat, Luma};
use imageproc::drawing::draw_text_mut;
use receipt_ocr::ocr::{OcrEngine, OcrError, Stage};

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf";

const RECEIPT: &[&str] = &[
    "CORNER GROCERY",
    "12 Harbour Street, Springfield",
    "Tel: (555) 013-4477",
    "Date: 03/14/2024  10:42",
    "",
    "Whole Milk 2 x 3.99      7.98",
    "Sourdough Bread          4.50",
    "Free Range Eggs          5.25",
    "",
    "SUBTOTAL                17.73",
    "TAX                      1.42",
    "TOTAL                  $19.15",
    "CASH                   $20.00",
    "CHANGE                  $0.85",
];

fn load_font() -> FontVec {
    let path = std::env::var("TEST_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("cannot read the test font {path} ({e}): install fonts-dejavu-core or set TEST_FONT")
    });
    FontVec::try_from_vec(bytes).expect("a TrueType font")
}

/// A white receipt with black monospaced text, as a PNG file's bytes.
fn render_receipt(lines: &[&str]) -> Vec<u8> {
    let font = load_font();
    let (line_height, margin) = (42, 40);
    let height = margin * 2 + line_height * lines.len() as u32;
    let mut image = GrayImage::from_pixel(900, height, Luma([255]));
    for (i, line) in lines.iter().enumerate() {
        let y = (margin + line_height * i as u32) as i32;
        draw_text_mut(
            &mut image,
            Luma([0]),
            margin as i32,
            y,
            PxScale::from(30.0),
            &font,
            line,
        );
    }
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .expect("PNG encodes");
    png
}

fn dec(s: &str) -> BigDecimal {
    BigDecimal::from_str(s).unwrap()
}

#[test]
fn a_rendered_receipt_is_read_into_store_date_items_and_total() {
    let mut engine = OcrEngine::new().expect("Tesseract with eng.traineddata");
    let mut stages = Vec::new();
    let reading = engine
        .read(&render_receipt(RECEIPT), &mut |stage| stages.push(stage))
        .expect("the receipt is read");
    let receipt = &reading.receipt;

    assert_eq!(
        receipt.store_name.as_deref(),
        Some("CORNER GROCERY"),
        "{}",
        reading.text
    );
    assert_eq!(receipt.total_amount, Some(dec("19.15")), "{}", reading.text);
    assert_eq!(receipt.purchase_date, NaiveDate::from_ymd_opt(2024, 3, 14));
    assert_eq!(receipt.currency.as_deref(), Some("USD"));
    let items: Vec<(&str, BigDecimal, BigDecimal)> = receipt
        .items
        .iter()
        .map(|i| (i.name.as_str(), i.quantity.clone(), i.line_total.clone()))
        .collect();
    assert_eq!(
        items,
        vec![
            ("Whole Milk", dec("2"), dec("7.98")),
            ("Sourdough Bread", dec("1"), dec("4.50")),
            ("Free Range Eggs", dec("1"), dec("5.25")),
        ],
        "{}",
        reading.text
    );
    assert_eq!(receipt.items[0].unit_price, dec("3.99"));
    assert!(
        receipt.confidence.total_amount >= 0.8,
        "{:?}",
        receipt.confidence
    );
    assert!(receipt.confidence.overall > 0.6, "{:?}", receipt.confidence);
    assert_eq!(
        stages,
        [
            Stage::Loaded,
            Stage::Preprocessed,
            Stage::Recognised,
            Stage::Parsed
        ]
    );
}

#[test]
fn bytes_that_are_not_an_image_fail_permanently() {
    let mut engine = OcrEngine::new().expect("Tesseract with eng.traineddata");
    let error = engine
        .read(b"%PDF-1.7 not an image", &mut |_| {})
        .unwrap_err();
    assert!(matches!(error, OcrError::Image(_)), "{error}");
    assert!(error.is_permanent());
}
