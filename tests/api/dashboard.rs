//! The built-in dashboard, driven in real headless Chromium
//! (`tests/node/dashboard.js`, playwright-core with Debian's `chromium`):
//! a dropped receipt's bar fills from live events, its page shows the
//! image, store and total, a delayed job is cancelled, the queue paused
//! and resumed, and with API keys on the page asks for a key once. Every
//! request the page makes must go to the service itself. Screenshots of
//! each step are kept under Cargo's target tmp dir (`dashboard-shots`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};
use receipt_ocr::config::ApiKeys;
use receipt_ocr::job::JobState;
use receipt_ocr::startup::Role;

const ADMIN_KEY: &str = "dashboard-admin-secret";

/// Where the screenshots go: kept after the run, never committed.
fn shots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-shots")
}

/// Run one scenario of the browser script; each step's JSON by its name.
async fn browser(app: &TestApp, scenario: &str, extra: &[&str]) -> HashMap<String, Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/dashboard.js");
    let shots = shots_dir();
    let output = tokio::process::Command::new("node")
        .arg(script)
        .args(["--url", &app.address, "--scenario", scenario])
        .args(["--shots", &shots.display().to_string()])
        .args(extra)
        .output()
        .await
        .expect("node runs (scripts/test.sh installs it, Chromium and playwright-core)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser scenario `{scenario}` failed after:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line per step"))
        .map(|step| (step["step"].as_str().unwrap_or_default().to_string(), step))
        .collect()
}

fn no_request_left_the_service(steps: &HashMap<String, Value>) {
    let done = &steps["done"];
    assert_eq!(done["offsite"], serde_json::json!([]), "requests elsewhere");
    assert_eq!(
        done["errors"],
        serde_json::json!([]),
        "script errors in the page"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_receipt_fills_its_bar_opens_and_the_queue_is_steered_from_the_browser() {
    let app = TestApp::serve().await;
    let receipt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(receipt.path(), corner_market_png()).unwrap();
    let path = receipt.path().display().to_string();

    let steps = browser(&app, "main", &["--receipt", &path]).await;

    assert_eq!(steps["opened"]["bullBoard"], "http://127.0.0.1:3001/");

    // The bar only ever grew and ended full, fed by the events stream: the
    // page never polled the job.
    let progress = &steps["progress"];
    let seen: Vec<f64> = serde_json::from_value(progress["seen"].clone()).unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "seen: {seen:?}");
    assert_eq!(seen.last(), Some(&100.0), "seen: {seen:?}");
    assert_eq!(progress["jobPolls"], 0, "{progress}");
    assert!(progress["eventStreams"].as_u64() >= Some(1), "{progress}");

    // Its page: the image with boxes drawn on it, store and total read.
    let job_id = progress["jobId"].as_str().unwrap();
    let job = app.job_view(job_id).await;
    assert_eq!(job.state, JobState::Completed);
    let opened = &steps["receipt"];
    assert_eq!(opened["store"], CORNER_MARKET.store, "{opened}");
    assert_eq!(opened["title"], CORNER_MARKET.store, "{opened}");
    assert!(
        opened["total"].as_str().unwrap().contains("17.47"),
        "{opened}"
    );
    assert_eq!(opened["items"], CORNER_MARKET.items.len(), "{opened}");
    assert!(opened["boxes"].as_u64() > Some(0), "{opened}");
    assert!(opened["text"].as_u64() > Some(0), "{opened}");
    let worker = job.worker.expect("the job names its worker");
    assert!(
        opened["timeline"].as_str().unwrap().contains(&worker),
        "{opened}"
    );

    // The delayed job was cancelled from its page; the API agrees.
    let delayed = steps["cancelled"]["jobId"].as_str().unwrap();
    assert_eq!(app.job_view(delayed).await.state, JobState::Cancelled);
    assert_eq!(steps["cancelled"]["retryEnabled"], true);

    // Paused, then resumed, as the API saw it at each step.
    assert_eq!(steps["paused"]["paused"], true);
    assert_eq!(steps["resumed"]["paused"], false);
    assert_eq!(steps["filtered"]["rows"], 1);
    assert_eq!(steps["dark"]["background"], "rgb(22, 22, 21)");
    no_request_left_the_service(&steps);

    // The timeline's times, in order; once Redis has forgotten the job,
    // the row still knows when it was uploaded and finished.
    let (added, started, finished) = (job.created_at, job.started_at, job.finished_at);
    assert!(added <= started && started <= finished && added.is_some());
    app.forget_job(job_id).await;
    let from_row = app.job_view(job_id).await;
    assert!(from_row.created_at.is_some() && from_row.finished_at.is_some());
    assert_eq!((from_row.started_at, from_row.worker), (None, None));
    let stored = app.receipt_view(opened_receipt(&steps).as_str()).await;
    assert_eq!(stored.content_type.as_deref(), Some("image/png"));
    let text = stored.raw_text.unwrap_or_default();
    assert!(
        text.lines().count() >= CORNER_MARKET.lines.len() / 2,
        "{text}"
    );
}

/// The receipt id of the first upload, from its job.
fn opened_receipt(steps: &HashMap<String, Value>) -> String {
    steps["receipt"]["receiptId"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_api_keys_on_the_dashboard_asks_for_a_key_once_per_tab_and_the_graphql_page_uses_it() {
    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::new(vec![("ops".into(), ADMIN_KEY.into(), true)], true);
    let app = TestApp::spawn(Role::Serve, settings).await;

    let steps = browser(&app, "keys", &["--key", ADMIN_KEY]).await;

    for step in ["asked", "refused", "accepted", "reloaded"] {
        assert!(steps.contains_key(step), "no step `{step}`: {steps:?}");
    }
    assert_eq!(steps["reloaded"]["askedAgain"], false);
    let graphql = &steps["graphql"];
    assert_eq!(graphql["keyFilled"], true, "{graphql}");
    assert_eq!(
        graphql["answer"]["data"]["queue"]["paused"], false,
        "{graphql}"
    );
    assert!(graphql["schemaFields"].as_u64() > Some(20), "{graphql}");
    no_request_left_the_service(&steps);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_page_and_assets_are_served_with_a_same_origin_policy() {
    let app = TestApp::serve().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/dashboard", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response.headers()[name]
                .to_str()
                .unwrap_or_default()
                .to_string()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(header("content-security-policy").contains("default-src 'none'"));
        assert!(header("content-security-policy").contains("connect-src 'self'"));
    }
    let page = app.get_text(&format!("{}/", app.address)).await;
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let posted = app
        .http
        .post(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receipts_upload_is_served_back_with_its_media_type_to_its_own_key_only() {
    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::new(
        vec![
            ("shop".into(), "shop-secret".into(), false),
            ("cafe".into(), "cafe-secret".into(), false),
        ],
        true,
    );
    let app = TestApp::spawn(Role::Api, settings).await;
    let png = corner_market_png();
    let part = reqwest::multipart::Part::bytes(png.clone()).file_name("r.png");
    let accepted: Value = app
        .http
        .post(format!("{}/api/upload", app.address))
        .header("x-api-key", "shop-secret")
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let image_url = format!(
        "{}/api/receipt/{}/image",
        app.address,
        accepted["receiptId"].as_str().unwrap()
    );
    let get = |key: &'static str| app.http.get(&image_url).header("x-api-key", key).send();

    let own = get("shop-secret").await.unwrap();
    assert_eq!(own.status(), 200);
    assert_eq!(own.headers()["content-type"], "image/png");
    assert_eq!(own.headers()["x-content-type-options"], "nosniff");
    assert!(
        own.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    assert_eq!(own.bytes().await.unwrap().as_ref(), png.as_slice());

    let other = get("cafe-secret").await.unwrap();
    assert_eq!(other.status(), 404);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    // The image removed from the blob store by someone else (an S3
    // lifecycle rule, say; IMAGE_KEEP_DAYS would answer 410): 404 saying
    // so, the receipt itself still answers.
    for file in app.blob_files() {
        std::fs::remove_file(file).expect("remove the stored image");
    }
    let gone = get("shop-secret").await.unwrap();
    assert_eq!(gone.status(), 404);
    let body: Value = gone.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("no longer in the blob store"), "{body}");
    let receipt_url = image_url.trim_end_matches("/image").to_string();
    let receipt = app
        .http
        .get(&receipt_url)
        .header("x-api-key", "shop-secret")
        .send();
    assert_eq!(receipt.await.unwrap().status(), 200);

    let missing = app
        .http
        .get(format!(
            "{}/api/receipt/{}/image",
            app.address,
            uuid::Uuid::new_v4()
        ))
        .header("x-api-key", "shop-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
