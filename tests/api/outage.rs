//! A Redis outage: uploads are refused with 503 (naming the URL and how to
//! check it) and leave nothing behind, readiness fails, and the service
//! recovers by itself when Redis is back. The test runs its own Redis, so
//! stopping it disturbs no other test.

use std::process::{Child, Command, Stdio};

use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::corner_market_png;
use receipt_ocr::job::JobState;

/// A private `redis-server` on `port`, stopped when dropped.
struct PrivateRedis(Child);

impl PrivateRedis {
    async fn start(port: u16) -> PrivateRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/deps.sh)");
        let url = format!("redis://127.0.0.1:{port}");
        wait_for(|| async {
            let client = redis::Client::open(url.as_str()).ok()?;
            client
                .get_multiplexed_async_connection()
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        PrivateRedis(child)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_get_503_while_redis_is_down_and_work_again_when_it_is_back() {
    let port = free_port();
    let redis = PrivateRedis::start(port).await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn(Role::Serve, settings).await;
    drop(redis);

    let response = app.upload_bytes(corner_market_png(), "receipt.png").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "redis_unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("redis-cli"),
        "{message}"
    );
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        0,
        "no receipt row left behind"
    );
    assert!(app.blob_files().is_empty(), "no stored file left behind");
    let ready = app
        .http
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    let _redis = PrivateRedis::start(port).await;
    let job_id = wait_for(|| async {
        let response = app.upload_bytes(corner_market_png(), "receipt.png").await;
        if response.status() != 200 {
            return None;
        }
        let body: Value = response.json().await.ok()?;
        body["jobId"].as_str().map(String::from)
    })
    .await;
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "job: {job:?}");
}
