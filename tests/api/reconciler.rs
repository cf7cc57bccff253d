//! The reconciler: a job removed from Redis by another BullMQ client never
//! leaves its receipt `queued` — it is added again while the image is
//! stored, and fails with a reason that says so once the image is gone. A
//! row that missed its job's final failure is marked failed from Redis. A
//! reconciler that panics is restarted and goes on.

use std::time::Duration;

use image::ImageFormat;

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::startup::Role;

use crate::helpers::{TestApp, isolated_settings, wait_for};
use crate::node_interop::node;
use crate::support::receipt_image::{
    CORNER_MARKET, HARBOR_CAFE, corner_market_png, corrupt_png, encode, render,
};
use reqwest::multipart::{Form, Part};

/// Settings whose reconciler looks every 200 ms at rows untouched for 0 ms.
fn eager_reconciler() -> Settings {
    let mut settings = isolated_settings();
    settings.reconcile.interval = Duration::from_millis(200);
    settings.reconcile.after = Duration::ZERO;
    settings
}

/// Upload through an API-only process and remove the job with BullMQ's
/// Node client before any worker sees it.
async fn upload_and_lose_the_job(api: &TestApp) -> String {
    let job_id = api.upload_ok(corner_market_png()).await;
    let removed = node(api, &["remove", &api.settings.queue.name, &job_id]);
    assert_eq!(removed["removed"], 1, "{removed}");
    assert!(api.job_hash(&job_id).await.is_empty(), "the job left Redis");
    job_id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_removed_by_another_client_is_added_again_and_completes() {
    let settings = eager_reconciler();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = upload_and_lose_the_job(&api).await;
    assert_eq!(api.job_view(&job_id).await.state, JobState::Unknown);

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    // Added again on a new run: a late write for the lost one is ignored.
    let stored = api.db.receipt_by_job_id(&job_id).await.unwrap();
    assert_eq!(stored.expect("its row").row.run, 1);
    let hash = api.job_hash(&job_id).await;
    assert!(hash["data"].contains(r#""run":1"#), "{hash:?}");
}

/// A pass looks at 100 rows: a hundred receipts scheduled for later (older,
/// healthy, unfinished for an hour) must not hide a lost job behind them.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_job_behind_a_hundred_scheduled_ones_is_still_found() {
    let settings = eager_reconciler();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let image = corner_market_png();
    for _ in 0..100 {
        let file = Part::bytes(image.clone()).file_name("receipt.png");
        let form = Form::new().part("file", file).text("delay", "3600000");
        assert_eq!(api.upload_form(form).await.status(), 200);
    }
    let job_id = upload_and_lose_the_job(&api).await;

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_job_whose_image_is_gone_fails_with_a_reason_that_says_so() {
    let settings = eager_reconciler();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = upload_and_lose_the_job(&api).await;
    for file in api.blob_files() {
        std::fs::remove_file(file).expect("remove the image");
    }

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let job = wait_for(|| async {
        let job = api.job_view(&job_id).await;
        job.state.is_final().then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let reason = job.failed_reason.unwrap_or_default();
    assert!(reason.contains("disappeared from the queue"), "{reason}");
    assert!(reason.contains("upload the receipt again"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_that_missed_its_jobs_final_failure_is_marked_failed_from_redis() {
    let mut settings = eager_reconciler();
    settings.queue.attempts = 1.try_into().expect("non-zero");
    let app = TestApp::spawn(Role::Serve, settings.clone()).await;
    // A corrupt image: the job fails for good.
    let job_id = app.upload_ok(corrupt_png(CORNER_MARKET.lines)).await;
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");

    // As if the worker had died (or PostgreSQL had been down) before it
    // wrote the failure: the row still says processing.
    let sql = format!(
        "update receipts set status = 'processing', failed_reason = null where job_id = '{job_id}'"
    );
    let status = std::process::Command::new("psql")
        .args([settings.database.url.as_str(), "-qc", &sql])
        .status()
        .expect("psql is installed (scripts/deps.sh)");
    assert!(status.success());

    let row = app.wait_for_row(&job_id, "failed").await;
    assert_eq!(row.failed_reason, job.failed_reason, "Redis's reason");
}

/// A reconciler that panics is restarted by the supervisor (counted in
/// `receipt_ocr_worker_restarts_total{worker="actor"}`) and goes on
/// mending: the lost job is added again and completes.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_reconciler_is_restarted_and_goes_on_mending() {
    let settings = eager_reconciler();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = upload_and_lose_the_job(&api).await;

    let mut crashing = settings;
    crashing.reconcile.inject_panics = 1;
    let worker = TestApp::spawn(Role::Worker, crashing).await;
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(worker.supervisor_stats().await.restarts, 1);

    // The test binary's apps share one registry: at least this restart.
    let text = worker
        .get_text(&format!("{}/metrics", worker.address))
        .await;
    let series = r#"receipt_ocr_worker_restarts_total{worker="actor"} "#;
    let line = text.lines().find(|l| l.starts_with(series));
    let restarts: f64 = line
        .unwrap_or_else(|| panic!("{series} in {text}"))
        .trim_start_matches(series)
        .parse()
        .expect("a number");
    assert!(restarts >= 1.0, "{restarts}");
}

/// IMAGE_KEEP_DAYS: the images of receipts settled longer ago are removed
/// (their fields stay, the image answers 410, a retry is refused); a newer
/// receipt's image and an unfinished one's stay.
#[tokio::test(flavor = "multi_thread")]
async fn images_of_receipts_settled_past_image_keep_days_are_removed() {
    use diesel::sql_types::{Array, Text};
    use diesel_async::RunQueryDsl;

    let mut settings = eager_reconciler();
    settings.inputs.dedup_window = Duration::from_secs(600);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let reader = TestApp::spawn(Role::Worker, settings.clone()).await;
    let harbor = render(HARBOR_CAFE);
    let completed = api.upload_ok(corner_market_png()).await;
    let failed = api.upload_ok(corrupt_png(CORNER_MARKET.lines)).await;
    let recent = api.upload_ok(encode(&harbor, ImageFormat::Png)).await;
    for job_id in [&completed, &failed, &recent] {
        api.wait_for_final(job_id).await;
    }
    // A failure reaches its row an instant after Redis has it: backdated
    // before, the row would be written anew after.
    api.wait_for_row(&failed, "failed").await;
    drop(reader);
    let file = Part::bytes(encode(&harbor, ImageFormat::Jpeg)).file_name("receipt.jpg");
    let form = Form::new().part("file", file).text("delay", "3600000");
    let response = api.upload_form(form).await;
    let body: serde_json::Value = response.json().await.expect("JSON");
    let scheduled = body["jobId"].as_str().expect("a job id").to_string();
    // Settled (or queued) ten days ago, but for `recent`.
    let old = vec![completed.clone(), failed.clone(), scheduled.clone()];
    let mut conn = api.db.conn().await.expect("a connection");
    diesel::sql_query(
        "UPDATE receipts SET updated_at = now() - interval '10 days' WHERE job_id = ANY($1)",
    )
    .bind::<Array<Text>, _>(&old)
    .execute(&mut conn)
    .await
    .expect("backdated");

    let receipt_of = |job_id: String| {
        let db = api.db.clone();
        async move {
            let stored = db.receipt_by_job_id(&job_id).await.expect("PostgreSQL");
            stored.expect("the receipt").row
        }
    };
    // A pass cut short after removing a blob but before recording it
    // leaves the receipt due: the next removes nothing more, records it.
    let cut_short = receipt_of(failed.clone()).await.blob_key;
    std::fs::remove_file(std::path::Path::new(&settings.blobs.location).join(cut_short))
        .expect("remove the failed receipt's image");

    let mut keeping = settings.clone();
    keeping.blobs.keep_days = 7;
    let _pruner = TestApp::spawn(Role::Worker, keeping).await;
    wait_for(|| async {
        let (a, b) = (
            receipt_of(completed.clone()).await,
            receipt_of(failed.clone()).await,
        );
        (a.image_removed_at.is_some() && b.image_removed_at.is_some()).then_some(())
    })
    .await;

    let image_status = |job_id: String| async {
        let row = receipt_of(job_id).await;
        let url = format!("{}/api/receipt/{}/image", api.address, row.id);
        let response = api.http.get(url).send().await.expect("image");
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().await.ok())
    };
    let (status, body) = image_status(completed.clone()).await;
    assert_eq!(status, 410, "{body:?}");
    let body = body.expect("a JSON error");
    assert_eq!(body["error"], "image_removed", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("IMAGE_KEEP_DAYS"))
    );
    assert_eq!(image_status(recent.clone()).await.0, 200);
    assert_eq!(image_status(scheduled.clone()).await.0, 200);
    assert_eq!(api.blob_files().len(), 2, "the two kept images alone");
    // The fields read stay.
    let row = receipt_of(completed.clone()).await;
    let receipt = api
        .get_json(&format!("{}/api/receipt/{}", api.address, row.id))
        .await;
    assert_eq!(receipt["storeName"], CORNER_MARKET.store, "{receipt}");
    assert!(receipt["imageRemovedAt"].is_string(), "{receipt}");
    let query = format!(
        r#"{{ receipt(id: "{}") {{ imageRemovedAt storeName }} }}"#,
        row.id
    );
    let graphql = api.graphql(&query).await;
    assert_eq!(
        graphql["data"]["receipt"]["imageRemovedAt"], receipt["imageRemovedAt"],
        "{graphql}"
    );
    let kept = receipt_of(recent.clone()).await;
    let kept = api
        .get_json(&format!("{}/api/receipt/{}", api.address, kept.id))
        .await;
    assert!(kept["imageRemovedAt"].is_null(), "{kept}");

    // Nothing to read again: a retry is refused, and changes nothing.
    let retry = format!("{}/api/job/{failed}/retry", api.address);
    let response = api.http.post(retry).send().await.expect("retry");
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("upload the file again")),
        "{body}"
    );
    assert_eq!(receipt_of(failed.clone()).await.status, "failed");

    // The same bytes again within DEDUP_WINDOW: not handed the receipt
    // that has no image any more, but stored and read anew.
    let again = api.upload_ok(corner_market_png()).await;
    assert_ne!(again, completed);
    assert_eq!(api.blob_files().len(), 3);
}
