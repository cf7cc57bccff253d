//! Bull Board (the pinned app in `bullboard/`) on our queue: started against
//! a test queue, its API lists our completed job, read-only.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::helpers::{TestApp, free_port, wait_for};
use crate::support::receipt_image::corner_market_png;

struct Board(Child);

impl Drop for Board {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bull_board_lists_our_job_in_its_state() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corner_market_png()).await;
    app.wait_for_final(&job_id).await;

    let port = free_port();
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("bullboard/server.js");
    let _board = Board(
        Command::new("node")
            .arg(server)
            .env("REDIS_URL", &app.settings.queue.redis_url)
            .env("QUEUE_PREFIX", &app.settings.queue.prefix)
            .env("QUEUE_NAMES", &app.settings.queue.name)
            .env("BULLBOARD_PORT", port.to_string())
            .env("BULLBOARD_HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .spawn()
            .expect("node runs (scripts/test.sh installs bullboard/'s packages)"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let url = format!(
        "{base}/api/queues?activeQueue={}&status=completed&page=1",
        app.settings.queue.name
    );
    let queue = wait_for(|| async {
        let response = app.http.get(&url).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        body["queues"].as_array()?.first().cloned()
    })
    .await;
    assert_eq!(queue["name"], app.settings.queue.name.as_str(), "{queue}");
    assert_eq!(queue["counts"]["completed"], 1, "{queue}");
    assert_eq!(queue["readOnlyMode"], true, "{queue}");
    let jobs = queue["jobs"].as_array().expect("jobs");
    assert!(
        jobs.iter().any(|job| job["id"] == job_id.as_str()),
        "our job among {jobs:?}"
    );
    // Its UI page is served too.
    let page = app.get_text(&format!("{base}/")).await;
    assert!(
        page.contains("<html") || page.contains("<!DOCTYPE"),
        "{page}"
    );
}
