//! End to end through real Tesseract and real PP-OCR: a receipt rendered
//! with a real font is read by `OcrEngine::read` into its store, date,
//! items and total.
//!
//! The font is DejaVu Sans Mono from Debian's `fonts-dejavu-core`; set
//! `TEST_FONT` to another TrueType file where it lives elsewhere. PP-OCR's
//! models come from `OCR_MODELS_DIR` (default under ~/.cache; fetched by
//! scripts/deps.sh, which scripts/test.sh sources).

use std::io::Cursor;
use std::str::FromStr;

use ab_glyph::{FontVec, PxScale};
use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use image::{GrayImage, ImageFormat, Luma};
use imageproc::drawing::draw_text_mut;
use receipt_ocr::inputs::read_upload;
use receipt_ocr::ocr::{EngineChoice, EngineKind, EngineSettings, OcrEngine, OcrError, Stage};

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

fn tesseract() -> OcrEngine {
    OcrEngine::new(&EngineSettings::with_engine(EngineChoice::Tesseract))
        .expect("Tesseract with eng.traineddata")
}

fn engine(choice: EngineChoice) -> OcrEngine {
    OcrEngine::new(&EngineSettings::with_engine(choice))
        .unwrap_or_else(|e| panic!("{choice:?} engine: {e}"))
}

fn dec(s: &str) -> BigDecimal {
    BigDecimal::from_str(s).unwrap()
}

#[test]
fn a_rendered_receipt_is_read_into_store_date_items_and_total() {
    let mut engine = tesseract();
    let mut stages = Vec::new();
    let reading = engine
        .read_image(&render_receipt(RECEIPT), &mut |stage| stages.push(stage))
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
    let mut engine = tesseract();
    let error = read_upload(
        &mut engine,
        b"plain text, not an image",
        &mut |_| {},
        &|| true,
    )
    .unwrap_err();
    assert!(matches!(error, OcrError::Image(_)), "{error}");
    assert!(error.is_permanent());
    // A broken PDF as well, with a reason that names it.
    let error = read_upload(&mut engine, b"%PDF-1.7 cut short", &mut |_| {}, &|| true).unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("PDF"), "{error}");
}

/// Each engine finds the total, and its reading keeps the page contract:
/// line i of the text is page line i, every box inside the image.
fn reads_the_total_with(choice: EngineChoice, engines: &[EngineKind]) {
    let png = render_receipt(RECEIPT);
    let reading = engine(choice)
        .read_image(&png, &mut |_| {})
        .expect("the receipt is read");
    assert_eq!(
        reading.receipt.total_amount,
        Some(dec("19.15")),
        "{}",
        reading.text
    );
    assert_eq!(reading.engines, engines);
    assert_eq!(reading.text, reading.page.text());
    let lines: Vec<&str> = reading.text.lines().collect();
    assert_eq!(lines.len(), reading.page.lines.len());
    let total_line = reading
        .page
        .lines
        .iter()
        .find(|l| l.text().contains("19.15"));
    let total_line = total_line.unwrap_or_else(|| panic!("no total line in {}", reading.text));
    // "TOTAL" is line 11 of the rendered receipt: 40 + 42 × 11 px down.
    let expected_top = 40 + 42 * 11;
    assert!(
        total_line.bbox.y.abs_diff(expected_top) < 30,
        "{:?}",
        total_line.bbox
    );
    for word in reading.page.lines.iter().flat_map(|l| &l.words) {
        assert!(word.bbox.right() <= 900 && (0.0..=1.0).contains(&word.confidence));
    }
}

#[test]
fn tesseract_reads_the_total_and_places_its_line() {
    reads_the_total_with(EngineChoice::Tesseract, &[EngineKind::Tesseract]);
}

#[test]
fn ppocr_reads_the_total_and_places_its_line() {
    reads_the_total_with(EngineChoice::Ppocr, &[EngineKind::PpOcr]);
}

#[test]
fn ppocr_splits_words_and_keeps_the_store_name() {
    let reading = engine(EngineChoice::Ppocr)
        .read_image(&render_receipt(RECEIPT), &mut |_| {})
        .expect("the receipt is read");
    assert_eq!(
        reading.page.lines[0].text(),
        "CORNER GROCERY",
        "{}",
        reading.text
    );
    assert!(
        reading.text.contains("Date: 03/14/2024"),
        "{}",
        reading.text
    );
    assert_eq!(
        reading.receipt.store_name.as_deref(),
        Some("CORNER GROCERY")
    );
}

#[test]
fn ppocr_with_an_empty_models_dir_says_to_run_deps_sh() {
    let empty = std::env::temp_dir().join(format!("receipt-ocr-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("a temporary folder");
    let settings = EngineSettings {
        ocr_engine: EngineChoice::Ppocr,
        ocr_models_dir: empty.clone(),
        ocr_alphabet: receipt_ocr::ocr::ppocr::Script::Latin,
        max_image_pixels: receipt_ocr::ocr::preprocess::DEFAULT_MAX_IMAGE_PIXELS,
        max_pdf_pages: receipt_ocr::inputs::DEFAULT_MAX_PDF_PAGES,
    };
    let error = OcrEngine::new(&settings)
        .err()
        .expect("no models, no engine");
    std::fs::remove_dir_all(&empty).ok();
    assert!(matches!(error, OcrError::Init(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("scripts/deps.sh"), "{message}");
    assert!(message.contains("OCR_MODELS_DIR"), "{message}");
    assert!(message.contains(&empty.display().to_string()), "{message}");
}

#[test]
fn ppocr_v6_reads_the_receipt_with_its_own_spaces() {
    let png = render_receipt(RECEIPT);
    let grey = image::load_from_memory(&png).expect("a PNG").to_luma8();
    let mut auto = engine(EngineChoice::Auto);
    let v6 = auto.ppocr_v6_mut().expect("auto starts PP-OCRv6");
    let text = v6.read_page(&grey).expect("the receipt is read").text();
    for line in ["CORNER GROCERY", "Whole Milk", "Sourdough Bread", "19.15"] {
        assert!(text.contains(line), "{line} in {text}");
    }
}

#[test]
fn auto_reads_a_receipt_without_a_date_again_with_ppocr_v6() {
    // No date line: PP-OCRv4's reading lacks a date, so PP-OCRv6 reads the
    // receipt too and the fields are merged.
    let undated: Vec<&str> = RECEIPT
        .iter()
        .copied()
        .filter(|l| !l.starts_with("Date"))
        .collect();
    let reading = engine(EngineChoice::Auto)
        .read_image(&render_receipt(&undated), &mut |_| {})
        .expect("the receipt is read");
    assert_eq!(reading.engines, [EngineKind::PpOcr, EngineKind::PpOcrV6]);
    assert_eq!(reading.receipt.total_amount, Some(dec("19.15")));
    assert_eq!(
        reading.receipt.store_name.as_deref(),
        Some("CORNER GROCERY")
    );
    // A dated receipt with a sure total is read once.
    let dated = engine(EngineChoice::Auto)
        .read_image(&render_receipt(RECEIPT), &mut |_| {})
        .expect("the receipt is read");
    assert_eq!(dated.engines, [EngineKind::PpOcr], "{}", dated.text);
}

#[test]
fn auto_without_the_v6_models_says_to_run_deps_sh() {
    // The runtime and the v4 models, but not v6's.
    let models = EngineSettings::with_engine(EngineChoice::Auto).ocr_models_dir;
    let partial = std::env::temp_dir().join(format!("receipt-ocr-v4-only-{}", std::process::id()));
    std::fs::create_dir_all(&partial).expect("a temporary folder");
    for name in [
        "libonnxruntime.so",
        receipt_ocr::ocr::ppocr::model::DETECTION_MODEL,
        receipt_ocr::ocr::ppocr::model::RECOGNITION_MODEL,
    ] {
        std::os::unix::fs::symlink(models.join(name), partial.join(name)).expect("a link");
    }
    let mut settings = EngineSettings::with_engine(EngineChoice::Auto);
    settings.ocr_models_dir = partial.clone();
    let error = OcrEngine::new(&settings)
        .err()
        .expect("no v6 models, no auto engine");
    std::fs::remove_dir_all(&partial).ok();
    let message = error.to_string();
    assert!(message.contains("PP-OCRv6_det_small.onnx"), "{message}");
    assert!(message.contains("scripts/deps.sh"), "{message}");
}

#[test]
fn the_rewritten_pp_ocr_v4_models_read_a_receipt_as_the_originals_do() {
    use receipt_ocr::ocr::ppocr::model::{DETECTION_MODEL, Generation, RECOGNITION_MODEL};
    use receipt_ocr::ocr::ppocr::{PpOcrEngine, Script};
    // The original models under the names the service loads.
    let models = EngineSettings::with_engine(EngineChoice::Auto).ocr_models_dir;
    let originals = tempfile::tempdir().expect("a temporary folder");
    for (name, original) in [
        ("libonnxruntime.so", "libonnxruntime.so"),
        (DETECTION_MODEL, "ch_PP-OCRv4_det_infer.onnx"),
        (RECOGNITION_MODEL, "ch_PP-OCRv4_rec_infer.onnx"),
    ] {
        let (folded, original) = (models.join(name), models.join(original));
        let size = |path: &std::path::Path| std::fs::metadata(path).expect("the model").len();
        if name.ends_with(".onnx") {
            assert_ne!(size(&folded), size(&original), "{name} is not rewritten");
        }
        std::os::unix::fs::symlink(original, originals.path().join(name)).expect("a link");
    }
    let receipt = image::load_from_memory(&render_receipt(RECEIPT))
        .expect("a PNG")
        .to_luma8();
    let read = |dir: &std::path::Path| {
        PpOcrEngine::new(dir, Script::Latin, Generation::V4)
            .expect("the engine starts")
            .read_page(&receipt)
            .expect("the receipt is read")
    };
    let (rewritten, original) = (read(&models), read(originals.path()));
    assert_eq!(rewritten.text(), original.text());
    let words = |page: &receipt_ocr::ocr::page::OcrPage| -> Vec<(String, f32)> {
        let lines = page.lines.iter();
        let words = lines.flat_map(|line| line.words.iter());
        words.map(|w| (w.text.clone(), w.confidence)).collect()
    };
    for ((text, a), (_, b)) in words(&rewritten).into_iter().zip(words(&original)) {
        assert!((a - b).abs() < 1e-3, "{text}: confidence {a} against {b}");
    }
}
