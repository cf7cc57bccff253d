//! The supervision tree: a worker that panics is replaced, and the job it
//! was reading is retried and completes.

use receipt_ocr::startup::Role;

use crate::helpers::{TestApp, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_ocr_worker_is_restarted_and_its_job_retried() {
    let mut settings = isolated_settings();
    settings.inject_panics = 1;
    let app = TestApp::spawn(Role::Serve, settings).await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job["state"], "completed", "job: {job}");
    assert_eq!(
        job["result"]["storeName"], CORNER_MARKET.store,
        "job: {job}"
    );
    let hash = app.job_hash(&job_id).await;
    // BullMQ counts both attempts: the one that crashed and the one that completed.
    assert_eq!(
        hash.get("atm").map(String::as_str),
        Some("2"),
        "the crash cost one attempt: {hash:?}"
    );

    let stats = wait_for(|| async {
        let stats = app.supervisor_stats().await;
        (stats.ocr_workers == app.settings.ocr_concurrency).then_some(stats)
    })
    .await;
    assert_eq!(stats.restarts, 1);
}
