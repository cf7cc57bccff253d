//! BullMQ compatibility, checked with BullMQ's own Node client: a job a Node
//! producer adds is read by our workers, and BullMQ's `getJobCounts`,
//! `getWorkers` and `getJob` see our queue as their own.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::TestApp;
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};
use receipt_ocr::job::JobState;

/// Run `tests/node/interop.js` (its packages installed by scripts/test.sh).
pub fn node(app: &TestApp, args: &[&str]) -> Value {
    node_for(&app.settings, args)
}

/// The same, for the Redis and queue prefix of `settings`.
pub fn node_for(settings: &receipt_ocr::config::Settings, args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/interop.js");
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .env("REDIS_URL", &settings.queue.redis_url)
        .env("QUEUE_PREFIX", &settings.queue.prefix)
        .output()
        .expect("node runs (scripts/test.sh installs it and the test's packages)");
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("node prints JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_from_a_node_bullmq_producer_is_read_and_bullmq_sees_it_completed() {
    let app = TestApp::serve().await;
    // A Node producer shares the blob store: it writes the image there.
    let receipt_id = uuid::Uuid::new_v4().to_string();
    let blob_key = format!("receipts/{receipt_id}.png");
    let path = Path::new(&app.settings.blobs.location).join(&blob_key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, corner_market_png()).unwrap();

    let queue = app.settings.queue.name.clone();
    let added = node(&app, &["add", &queue, &receipt_id, &blob_key]);
    let job_id = added["jobId"].as_str().unwrap().to_string();

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "job: {job:?}");
    assert_eq!(
        job.result.as_ref().and_then(|r| r.store_name.as_deref()),
        Some(CORNER_MARKET.store)
    );
    let stored = app
        .db
        .receipt_by_job_id(&job_id)
        .await
        .unwrap()
        .expect("the worker records the receipt");
    assert_eq!(stored.row.id.to_string(), receipt_id);
    assert_eq!(stored.row.status, "completed");

    let seen = node(&app, &["inspect", &queue, &job_id]);
    assert_eq!(seen["state"], "completed", "{seen}");
    assert_eq!(seen["counts"]["completed"], 1, "{seen}");
    // BullMQ keeps the last step the worker reported; our API shows a
    // completed job as 100 from its state (no extra write per job).
    assert_eq!(seen["progress"], 90, "{seen}");
    assert_eq!(
        seen["returnvalue"]["storeName"], CORNER_MARKET.store,
        "{seen}"
    );
    // Named as BullMQ names workers: `<prefix>:<base64 of queue>:w:<name>`.
    let worker_suffix = format!(":w:{}", app.settings.queue.worker_name());
    let workers = seen["workers"].as_array().unwrap();
    assert!(
        workers
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.ends_with(&worker_suffix))),
        "{seen}"
    );
}
