//! Bad input gets its status and a JSON message, and leaves nothing behind:
//! no receipt row, no stored file, no job.

use image::ImageFormat;
use receipt_ocr::config::ApiKeys;
use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};
use crate::support::receipt_image::{
    CORNER_MARKET, corner_market_png, corrupt_png, encode, jpeg_claiming, png_claiming, render,
};
use receipt_ocr::job::JobState;

async fn assert_refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "body: {body}");
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.len() > 20,
        "the message should say what to do: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_without_a_file_field_is_refused_with_400() {
    let app = TestApp::serve().await;
    let form = reqwest::multipart::Form::new().text("priority", "3");
    assert_refused(app.upload_form(form).await, 400, "no_file").await;
    let form = reqwest::multipart::Form::new().text("note", "no file here");
    assert_refused(app.upload_form(form).await, 400, "invalid_field").await;
    let not_multipart = app
        .http
        .post(format!("{}/api/upload", app.address))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_refused(not_multipart, 400, "no_file").await;
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_field_sent_twice_or_not_as_text_is_refused_naming_it() {
    let app = TestApp::serve().await;
    let with_file = || {
        let file = reqwest::multipart::Part::bytes(corner_market_png()).file_name("r.png");
        reqwest::multipart::Form::new().part("file", file)
    };
    let twice = with_file().text("priority", "1").text("priority", "2");
    let not_text = reqwest::multipart::Part::bytes(vec![0xff, 0xfe, 0x00]);
    let not_utf8 = with_file().part("delay", not_text);
    for (form, field) in [(twice, "`priority`"), (not_utf8, "`delay`")] {
        let response = app.upload_form(form).await;
        assert_eq!(response.status().as_u16(), 400);
        let body: Value = response.json().await.expect("a JSON error body");
        assert_eq!(body["error"], "invalid_field", "{body}");
        let message = body["message"].as_str().expect("a message");
        assert!(message.contains(field), "{message}");
        assert!(message.contains("at most once"), "{message}");
    }
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_file_is_refused_with_400() {
    let app = TestApp::serve().await;
    assert_refused(
        app.upload_bytes(Vec::new(), "receipt.jpg").await,
        400,
        "empty_file",
    )
    .await;
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_file_named_jpg_is_refused_with_415() {
    let app = TestApp::serve().await;
    let text = b"TOTAL 12.00\nthis is not an image\n".to_vec();
    assert_refused(
        app.upload_bytes(text, "receipt.jpg").await,
        415,
        "unsupported_media_type",
    )
    .await;
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_over_the_size_limit_is_refused_with_413() {
    let mut settings = isolated_settings();
    settings.http.max_upload_bytes = 100_000;
    let app = TestApp::spawn(Role::Serve, settings).await;
    let mut big = encode(&render(CORNER_MARKET.lines), ImageFormat::Png);
    big.resize(150_000, 0);
    assert_refused(
        app.upload_bytes(big, "receipt.png").await,
        413,
        "file_too_large",
    )
    .await;
    // Far beyond the limit: refused on Content-Length alone, before the
    // client sends a byte of the body.
    let head = refused_head_only(&app, 1_000_000_000).await;
    assert!(head.starts_with("HTTP/1.1 413"), "answer: {head}");
    assert!(head.contains("file_too_large"), "answer: {head}");
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_job_is_404_with_json() {
    let app = TestApp::serve().await;
    let (status, body) = app.job("ocr-1-doesnotexist0").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let graphql = app
        .graphql(r#"query { jobStatus(jobId: "ocr-1-nope") { id } }"#)
        .await;
    assert_eq!(
        graphql["errors"][0]["extensions"]["code"], "not_found",
        "{graphql}"
    );

    // Ids that name the queue's own keys are no jobs either (not a 503
    // from Redis's WRONGTYPE): its lists, and a key such as a lock.
    let queue = format!("{}:{}", app.settings.queue.prefix, app.settings.queue.name);
    let _: () = redis::cmd("SET")
        .arg(format!("{queue}:ocr-1-x:lock"))
        .arg("token")
        .query_async(&mut app.redis().await)
        .await
        .expect("SET");
    for id in ["wait", "meta", "events", "ocr-1-x:lock"] {
        let (status, body) = app.job(id).await;
        assert_eq!(
            (status, &body["error"]),
            (404, &"not_found".into()),
            "{id}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_short_jpeg_or_an_unreadable_header_is_refused_with_422() {
    let app = TestApp::serve().await;
    let jpeg = encode(&render(CORNER_MARKET.lines), ImageFormat::Jpeg);
    let cut = jpeg[..jpeg.len() / 3].to_vec();
    let response = app.upload_bytes(cut, "receipt.jpg").await;
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], "corrupt_image", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("upload the whole file again"), "{body}");
    // PNG's signature, then no header.
    let headless = b"\x89PNG\r\n\x1a\nnot a header at all".to_vec();
    assert_refused(
        app.upload_bytes(headless, "receipt.png").await,
        422,
        "corrupt_image",
    )
    .await;
    // A whole header (its CRC right) claiming no pixels.
    let empty = png_claiming(0, 8);
    assert_refused(
        app.upload_bytes(empty, "receipt.png").await,
        422,
        "corrupt_image",
    )
    .await;
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_corrupt_past_its_header_is_accepted_then_fails_without_retries() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corrupt_png(CORNER_MARKET.lines)).await;

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Failed, "job: {job:?}");
    let reason = job.failed_reason.as_deref().expect("a failedReason");
    assert!(
        reason.contains("corrupt") || reason.contains("decode"),
        "reason: {reason}"
    );
    assert_eq!(
        app.job_hash(&job_id).await.get("atm").map(String::as_str),
        Some("1"),
        "one attempt only"
    );
    // The row follows an instant after BullMQ failed the job.
    let row = app.wait_for_row(&job_id, "failed").await;
    assert_eq!(row.failed_reason.as_deref(), Some(reason));
}

/// Send only the headers of a huge multipart upload and read the answer.
async fn refused_head_only(app: &TestApp, length: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_api_keys_set_requests_without_a_valid_key_get_401() {
    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::plain(&["first-key", "second-key"]);
    let app = TestApp::spawn(Role::Serve, settings).await;

    assert_refused(
        app.upload_bytes(corner_market_png(), "receipt.png").await,
        401,
        "unauthorized",
    )
    .await;
    let wrong_key = app
        .http
        .get(format!("{}/api/job/ocr-1-x", app.address))
        .header("x-api-key", "nope");
    assert_refused(wrong_key.send().await.unwrap(), 401, "unauthorized").await;
    let graphql = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&serde_json::json!({"query": "{ __typename }"}));
    assert_refused(graphql.send().await.unwrap(), 401, "unauthorized").await;
    // The socket's upgrade may come without a key (browsers send it in
    // `connection_init`, see events.rs), but not with a wrong one.
    let websocket = app
        .http
        .get(format!("{}/graphql/ws", app.address))
        .header("x-api-key", "wrong-key");
    assert_eq!(
        websocket.send().await.unwrap().status(),
        401,
        "a wrong key on the subscription socket is refused"
    );
    app.assert_nothing_left().await;

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(corner_market_png()).file_name("r.png"),
    );
    let with_key = app
        .http
        .post(format!("{}/api/upload", app.address))
        .header("x-api-key", "second-key");
    assert_eq!(with_key.multipart(form).send().await.unwrap().status(), 200);
    let health = app
        .http
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "probes stay open");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_whose_header_claims_too_many_pixels_is_refused_with_413() {
    let app = TestApp::serve().await;
    let bomb = jpeg_claiming(65500, 65500);
    let response = app.upload_bytes(bomb, "bomb.jpg").await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("image_too_large")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("65500x65500") && message.contains("MAX_IMAGE_PIXELS"),
        "{message}"
    );
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_fails_an_image_over_its_pixel_limit_at_once_naming_the_size() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    // A worker with a lower limit than the API's (a job from another
    // producer, say): it must fail the job for good before decoding it.
    let mut strict = settings;
    strict.ocr.engine.max_image_pixels = 10_000;
    let _worker = TestApp::spawn(Role::Worker, strict).await;

    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Failed, "job: {job:?}");
    let reason = job.failed_reason.unwrap_or_default();
    assert!(reason.contains("MAX_IMAGE_PIXELS"), "reason: {reason}");
    let attempts = api.job_hash(&job_id).await.get("atm").cloned();
    assert_eq!(attempts.as_deref(), Some("1"), "no retries");
}
