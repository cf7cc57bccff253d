//! What people actually upload: PDF e-receipts and scans, HEIC photos,
//! several receipts in one request, and the same file twice.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use image::ImageFormat;
use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};
use crate::support::documents::{
    PdfPage, encrypted, heif_from_jpeg, heif_from_jpegs, jpeg_stored_sideways, pdf, pdf_with_bleed,
    scanned,
};
use crate::support::receipt_image::{
    CORNER_MARKET, HARBOR_CAFE, corner_market_png, encode, render,
};

/// Upload, wait for the job to end, and return its `result` (which must
/// be completed).
async fn read_through(app: &TestApp, bytes: Vec<u8>, name: &str) -> Value {
    let response = app.upload_bytes(bytes, name).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "upload refused: {body}");
    let job_id = body["jobId"].as_str().expect("a job id").to_string();
    app.wait_for_final(&job_id).await;
    let (_, job) = app.job(&job_id).await;
    assert_eq!(job["state"], "completed", "job: {job}");
    job["result"].clone()
}

fn assert_corner_market(result: &Value) {
    assert_eq!(result["storeName"], CORNER_MARKET.store, "result: {result}");
    assert_eq!(result["totalAmount"].as_f64(), Some(CORNER_MARKET.total));
    assert_eq!(result["date"], "2024-03-14");
    let items = result["items"].as_array().expect("items");
    let read: Vec<(&str, f64, f64)> = items
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or_default();
            (
                name,
                i["quantity"].as_f64().unwrap(),
                i["price"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(read, CORNER_MARKET.items, "items: {items:?}");
}

fn engines(result: &Value) -> Vec<String> {
    let list = result["engines"].as_array().expect("engines");
    list.iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

async fn assert_refused(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "body: {body}");
    body["message"].as_str().expect("a message").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_pdf_e_receipt_is_read_from_its_text_without_ocr() {
    let app = TestApp::serve().await;
    let bytes = pdf(vec![PdfPage::Text(CORNER_MARKET.lines)]);
    let result = read_through(&app, bytes, "receipt.pdf").await;
    assert_corner_market(&result);
    assert_eq!(engines(&result), ["pdf-text"], "no OCR engine ran");
    assert_eq!(
        result["confidence"]["totalAmount"]
            .as_f64()
            .map(|c| c > 0.5),
        Some(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scanned_pdf_is_rasterised_and_read_by_ocr() {
    let app = TestApp::serve().await;
    let bytes = pdf(vec![scanned(CORNER_MARKET.lines)]);
    let result = read_through(&app, bytes, "scan.pdf").await;
    assert_corner_market(&result);
    let engines = engines(&result);
    assert!(
        !engines.is_empty() && !engines.contains(&"pdf-text".to_string()),
        "{engines:?}"
    );
}

/// The page pdfinfo measures (and we check at upload) is the crop box;
/// the page drawn must be the same, not a media box 1800 pt larger (56 MP
/// at 300 dpi, over MAX_IMAGE_PIXELS).
#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_page_is_drawn_as_its_crop_box_however_large_its_media_box() {
    let app = TestApp::serve().await;
    let bytes = pdf_with_bleed(vec![scanned(CORNER_MARKET.lines)], 1800);
    let result = read_through(&app, bytes, "bleed.pdf").await;
    assert_corner_market(&result);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_page_pdf_is_one_receipt_read_in_page_order() {
    let app = TestApp::serve().await;
    let (first, second) = CORNER_MARKET.lines.split_at(6);
    let bytes = pdf(vec![PdfPage::Text(first), scanned(second)]);
    let result = read_through(&app, bytes, "two-pages.pdf").await;
    assert_corner_market(&result);
    let engines = engines(&result);
    assert_eq!(engines[0], "pdf-text", "{engines:?}");
    assert_eq!(engines.len(), 2, "page 2 was read by OCR: {engines:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_pdf_is_refused_at_upload_and_leaves_nothing() {
    let app = TestApp::serve().await;
    let locked = encrypted(&pdf(vec![PdfPage::Text(CORNER_MARKET.lines)]), "secret");
    let message = assert_refused(
        app.upload_bytes(locked, "locked.pdf").await,
        422,
        "encrypted_pdf",
    )
    .await;
    assert!(message.contains("password"), "{message}");
    let broken = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog".to_vec();
    assert_refused(
        app.upload_bytes(broken, "broken.pdf").await,
        422,
        "unreadable_pdf",
    )
    .await;
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_over_max_pdf_pages_is_refused_with_413() {
    let mut settings = isolated_settings();
    settings.ocr.engine.max_pdf_pages = 1;
    let app = TestApp::spawn(Role::Serve, settings).await;
    let bytes = pdf(vec![
        PdfPage::Text(&["PAGE ONE A B"]),
        PdfPage::Text(&["PAGE TWO A B"]),
    ]);
    let message = assert_refused(
        app.upload_bytes(bytes, "long.pdf").await,
        413,
        "too_many_pages",
    )
    .await;
    assert!(message.contains("MAX_PDF_PAGES"), "{message}");
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heic_photo_stored_sideways_is_turned_upright_by_its_exif_orientation() {
    let app = TestApp::serve().await;
    let sideways = jpeg_stored_sideways(&render(CORNER_MARKET.lines));
    let heic = heif_from_jpeg(&sideways, false);
    assert_eq!(&heic[4..12], b"ftypheic", "heif-enc wrote a HEIC");
    let result = read_through(&app, heic, "IMG_0001.HEIC").await;
    assert_corner_market(&result);
}

/// A HEIC holding two photos (a burst): the first is read. libheif's
/// converter names its outputs after each image then, which once looked
/// like "no room for a temporary file", retried until the attempts ran out.
#[tokio::test(flavor = "multi_thread")]
async fn a_heic_with_two_photos_is_read_from_the_first() {
    let app = TestApp::serve().await;
    let receipt = encode(&render(CORNER_MARKET.lines), ImageFormat::Jpeg);
    let other = encode(&render(HARBOR_CAFE), ImageFormat::Jpeg);
    let heic = heif_from_jpegs(&[&receipt, &other], false);
    let result = read_through(&app, heic, "burst.heic").await;
    assert_corner_market(&result);
}

/// A HEIC of more photos than MAX_HEIF_IMAGES (heif-convert would decode
/// every one to read the first): refused at upload, leaving nothing, and
/// failed for good by a worker that meets one (a Node producer's job).
#[tokio::test(flavor = "multi_thread")]
async fn a_heic_of_more_photos_than_the_limit_is_refused() {
    use receipt_ocr::inputs::InputError;
    use receipt_ocr::inputs::heif::{MAX_HEIF_IMAGES, decode};
    let app = TestApp::serve().await;
    let tiny = encode(&image::GrayImage::new(64, 64), ImageFormat::Jpeg);
    let photos = vec![tiny.as_slice(); MAX_HEIF_IMAGES + 1];
    let burst = heif_from_jpegs(&photos, false);

    let response = app.upload_bytes(burst.clone(), "burst.heic").await;
    let message = assert_refused(response, 413, "too_many_pages").await;
    assert!(message.contains("holds 9 photos"), "{message}");
    app.assert_nothing_left().await;
    let error = decode(&burst, 40_000_000).expect_err("refused");
    assert!(
        matches!(error, InputError::TooManyImages { images: 9, .. }),
        "{error}"
    );
    assert!(error.is_permanent(), "{error}");
    // At the limit, it is read (from its first photo).
    let at_limit = heif_from_jpegs(&photos[1..], false);
    assert_eq!(
        decode(&at_limit, 40_000_000).expect("read").dimensions(),
        (64, 64)
    );
}

/// Our count of top-level images, read from the boxes, against libheif's
/// own (`heif-info`, which decodes each: fine for these tiny files), on
/// files `heif-enc` makes: bursts as HEIC and AVIF, and a photo with a
/// thumbnail and an alpha plane (both items of their own, neither top-level).
#[test]
fn top_level_images_are_counted_as_libheif_lists_them() {
    use receipt_ocr::inputs::heif_items::top_level_images;
    let dir = tempfile::tempdir().unwrap();
    let libheif_count = |bytes: &[u8]| {
        let path = dir.path().join("count.heif");
        std::fs::write(&path, bytes).unwrap();
        let info = std::process::Command::new("heif-info")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout).into_owned();
        text.lines().filter(|l| l.starts_with("image: ")).count()
    };
    let tiny = encode(&image::GrayImage::new(64, 64), ImageFormat::Jpeg);
    let mut files = vec![
        heif_from_jpegs(&[&tiny, &tiny, &tiny], false),
        heif_from_jpegs(&[&tiny, &tiny], true),
    ];
    let translucent = dir.path().join("alpha.png");
    image::RgbaImage::from_pixel(64, 64, image::Rgba([9, 9, 9, 128]))
        .save(&translucent)
        .unwrap();
    let extras = dir.path().join("extras.heic");
    let made = std::process::Command::new("heif-enc")
        .args(["-t", "32", "-o"])
        .arg(&extras)
        .arg(&translucent)
        .status()
        .unwrap();
    assert!(made.success());
    files.push(std::fs::read(&extras).unwrap());
    let ours: Vec<_> = files.iter().map(|f| top_level_images(f)).collect();
    let libheif: Vec<_> = files.iter().map(|f| Some(libheif_count(f))).collect();
    assert_eq!(ours, libheif);
    assert_eq!(ours, [Some(3), Some(2), Some(1)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_avif_photo_stored_sideways_is_read_upright() {
    let app = TestApp::serve().await;
    let sideways = jpeg_stored_sideways(&render(CORNER_MARKET.lines));
    let avif = heif_from_jpeg(&sideways, true);
    assert_eq!(&avif[4..12], b"ftypavif", "heif-enc wrote an AVIF");
    let result = read_through(&app, avif, "photo.avif").await;
    assert_corner_market(&result);
}

/// `receipt-ocr eval` over a folder of a text PDF, a scanned PDF and a
/// HEIC photo, each with its label file beside it: all three are read and
/// scored, and the plain-Tesseract baseline leaves out what Tesseract
/// cannot open, saying so.
#[test]
fn eval_reads_pdf_and_heic_receipts_with_the_labels_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let label = serde_json::json!({
        "storeName": CORNER_MARKET.store,
        "totalAmount": CORNER_MARKET.total,
        "date": "2024-03-14",
    });
    let sideways = jpeg_stored_sideways(&render(CORNER_MARKET.lines));
    let inputs = [
        (
            "e-receipt.pdf",
            pdf(vec![PdfPage::Text(CORNER_MARKET.lines)]),
        ),
        ("scan.pdf", pdf(vec![scanned(CORNER_MARKET.lines)])),
        ("photo.heic", heif_from_jpeg(&sideways, false)),
    ];
    for (name, bytes) in inputs {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::write(path.with_extension("json"), label.to_string()).unwrap();
    }

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_receipt-ocr"))
        .arg("eval")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{output:?}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["receipts"], 3, "{summary}");
    for field in ["totalAmount", "storeName", "date"] {
        assert_eq!(summary[field], 1.0, "{field}: {summary}");
    }
    assert_eq!(summary["baselineLeftOut"], 3, "{summary}");
    assert!(stdout.contains("cannot open 3 of the 3 inputs"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_three_with_one_bad_file_queues_the_two_good_ones() {
    let app = TestApp::serve().await;
    let part = |bytes: Vec<u8>, name: &str| {
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string())
    };
    let form = reqwest::multipart::Form::new()
        .part("file", part(corner_market_png(), "a.png"))
        .part("file", part(b"just some text".to_vec(), "b.txt"))
        .part(
            "file",
            part(encode(&render(HARBOR_CAFE), ImageFormat::Jpeg), "c.jpg"),
        );
    let response = app.upload_form(form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["accepted"], 2, "{body}");
    assert_eq!(body["refused"], 1, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["status"], 415);
    assert_eq!(results[1]["error"]["error"], "unsupported_media_type");
    assert!(results[1].get("upload").is_none(), "{body}");
    let mut totals = Vec::new();
    for index in [0, 2] {
        assert_eq!(results[index]["status"], 200, "{body}");
        let job_id = results[index]["upload"]["jobId"]
            .as_str()
            .expect("a job id");
        let status = app.wait_for_final(job_id).await;
        let result = status.result.expect("completed");
        totals.push(result.total_amount);
    }
    assert_eq!(
        totals,
        [Some(CORNER_MARKET.total), Some(12.15)],
        "each file its own receipt"
    );
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        2,
        "no row for the bad file"
    );
    assert_eq!(app.blob_files().len(), 2, "no file kept for the bad one");
}

/// A batch's `processAt` is checked once, as the request arrives: one a
/// moment ahead still holds for its last file after slow checks of the
/// ones before (each PDF check held 1 s; it was checked per file, and the
/// third file found it in the past).
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread")]
async fn a_batchs_process_at_is_checked_once_for_every_file() {
    let mut settings = isolated_settings();
    settings.inputs.inject_pdf_check_hold_ms = 1_000;
    let app = TestApp::spawn(Role::Api, settings).await;
    let bytes = pdf(vec![PdfPage::Text(CORNER_MARKET.lines)]);
    let at = chrono::Utc::now() + chrono::TimeDelta::milliseconds(1_500);
    let mut form = reqwest::multipart::Form::new().text("processAt", at.to_rfc3339());
    for name in ["a.pdf", "b.pdf", "c.pdf"] {
        let part = reqwest::multipart::Part::bytes(bytes.clone()).file_name(name);
        form = form.part("file", part);
    }
    let response = app.upload_form(form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["accepted"], 3, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_over_max_batch_files_is_refused_whole() {
    let mut settings = isolated_settings();
    settings.inputs.max_batch_files = 2;
    let app = TestApp::spawn(Role::Api, settings).await;
    let mut form = reqwest::multipart::Form::new();
    for name in ["a.png", "b.png", "c.png"] {
        let part = reqwest::multipart::Part::bytes(corner_market_png()).file_name(name);
        form = form.part("file", part);
    }
    let message = assert_refused(app.upload_form(form).await, 413, "too_many_files").await;
    assert!(message.contains("MAX_BATCH_FILES"), "{message}");
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_file_within_dedup_window_gets_the_first_uploads_job() {
    let mut settings = isolated_settings();
    settings.inputs.dedup_window = Duration::from_secs(600);
    settings.webhooks.allow_private = true;
    let app = TestApp::spawn(Role::Api, settings).await;
    let first: Value = app
        .upload_bytes(corner_market_png(), "a.png")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        first.get("duplicate").is_none(),
        "a first upload is not a duplicate: {first}"
    );
    let response = app.upload_bytes(corner_market_png(), "again.png").await;
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["jobId"], first["jobId"]);
    assert_eq!(again["receiptId"], first["receiptId"]);
    assert_eq!(
        again["status"], "queued",
        "an api process runs no worker: {again}"
    );
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        1,
        "one receipt for both"
    );
    // The same bytes with a callbackUrl of their own: a job of their own,
    // so that URL is told; the same URL again is a duplicate.
    let told = async || -> Value {
        let part = reqwest::multipart::Part::bytes(corner_market_png()).file_name("c.png");
        let form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("callbackUrl", "http://127.0.0.1:9/hook");
        app.upload_form(form).await.json().await.unwrap()
    };
    let with_callback = told().await;
    assert!(with_callback.get("duplicate").is_none(), "{with_callback}");
    assert_ne!(with_callback["jobId"], first["jobId"]);
    let same_callback = told().await;
    assert_eq!(
        same_callback["jobId"], with_callback["jobId"],
        "{same_callback}"
    );

    let other = encode(&render(HARBOR_CAFE), ImageFormat::Png);
    let different: Value = app.upload_bytes(other, "b.png").await.json().await.unwrap();
    assert!(different.get("duplicate").is_none(), "{different}");
    assert_ne!(different["jobId"], first["jobId"]);

    // The lookup's index covers the hash and the newest first (a migration
    // once meant to make it so and, with `IF NOT EXISTS`, did not).
    let mut conn = app.db.conn().await.expect("a connection");
    let index: IndexDef = diesel::sql_query(
        "SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'receipts_content_hash_idx'",
    )
    .get_result(&mut conn)
    .await
    .expect("the duplicates index");
    assert!(
        index.def.ends_with("(content_hash, created_at DESC)"),
        "{}",
        index.def
    );
}

#[derive(diesel::QueryableByName)]
struct IndexDef {
    #[diesel(sql_type = diesel::sql_types::Text)]
    def: String,
}

/// Which resolution to rasterise scanned PDF pages at: a generated scanned
/// receipt rasterised by `pdftoppm` at each, read by the default engine,
/// fields right and seconds printed. Run with
/// `cargo test --features fault-injection --test api raster_resolution -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: prints a table"]
fn raster_resolution_measurement() {
    use receipt_ocr::ocr::{EngineSettings, OcrEngine};
    let scan = pdf(vec![scanned(CORNER_MARKET.lines)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.pdf");
    std::fs::write(&path, scan).unwrap();
    let mut engine = OcrEngine::new(&EngineSettings::from_env()).expect("engine");
    println!("dpi | pixels | store | total | date | items | seconds");
    for dpi in [100, 150, 200, 300, 400] {
        let png = std::process::Command::new("pdftoppm")
            .args(["-r", &dpi.to_string(), "-singlefile", "-gray", "-png"])
            .arg(&path)
            .output()
            .expect("pdftoppm")
            .stdout;
        let size = image::load_from_memory(&png).unwrap();
        let started = std::time::Instant::now();
        let reading = engine.read_image(&png, &mut |_| {}).expect("read");
        let seconds = started.elapsed().as_secs_f32();
        let r = &reading.receipt;
        let total = r.total_amount.as_ref().map(|t| t.to_string());
        let items: Vec<_> = r.items.iter().map(|i| i.name.clone()).collect();
        println!(
            "{dpi} | {}x{} | {} | {} | {} | {}/3 | {seconds:.2}",
            size.width(),
            size.height(),
            r.store_name.as_deref() == Some(CORNER_MARKET.store),
            total.as_deref() == Some("17.47"),
            r.purchase_date.map(|d| d.to_string()).as_deref() == Some("2024-03-14"),
            items
                .iter()
                .filter(|n| ["Milk", "Bread", "Apples"].contains(&n.as_str()))
                .count(),
        );
    }
}

/// PDFs are checked MAX_PDF_CHECKS at a time: with one turn, held longer
/// than an upload waits for one, of two PDFs sent at once one is taken and
/// the other gets 503 `server_busy` and leaves nothing behind.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread")]
async fn pdfs_beyond_max_pdf_checks_wait_then_get_503() {
    let mut settings = isolated_settings();
    settings.inputs.max_pdf_checks = 1;
    // Longer than the 10 s an upload waits for its turn.
    settings.inputs.inject_pdf_check_hold_ms = 13_000;
    let app = TestApp::spawn(Role::Api, settings).await;
    let bytes = pdf(vec![PdfPage::Text(CORNER_MARKET.lines)]);
    let (first, second) = tokio::join!(
        app.upload_bytes(bytes.clone(), "a.pdf"),
        app.upload_bytes(bytes, "b.pdf"),
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 503]);
    let refused = if first.status() == 503 { first } else { second };
    let message = assert_refused(refused, 503, "server_busy").await;
    assert!(message.contains("MAX_PDF_CHECKS"), "{message}");
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        1,
        "only the one taken"
    );
}

#[test]
fn a_pdf_read_that_nobody_waits_for_stops_before_its_next_page() {
    use receipt_ocr::inputs::read_upload;
    use receipt_ocr::ocr::{EngineChoice, EngineSettings, OcrEngine};
    let mut engine = OcrEngine::new(&EngineSettings::with_engine(EngineChoice::Tesseract))
        .expect("Tesseract with eng.traineddata");
    let pages = || {
        let lines = CORNER_MARKET.lines;
        vec![
            PdfPage::Text(lines),
            PdfPage::Text(lines),
            PdfPage::Text(lines),
        ]
    };
    let asked = std::cell::Cell::new(0);
    let gone = || {
        asked.set(asked.get() + 1);
        false
    };
    let error = read_upload(&mut engine, &pdf(pages()), &mut |_| {}, &gone).unwrap_err();
    assert!(error.to_string().contains("given up"), "{error}");
    assert_eq!(asked.get(), 1, "asked once, before the second page");
    // Still waited for: every page is read.
    let reading = read_upload(&mut engine, &pdf(pages()), &mut |_| {}, &|| true).unwrap();
    assert_eq!(reading.text.matches(CORNER_MARKET.store).count(), 3);
}
