//! Several processes sharing one Redis, PostgreSQL and blob store: an `api`
//! process enqueues, separate `worker` processes read, and the global rate
//! limit holds across all of them.

use std::time::Duration;

use receipt_ocr::config::Settings;
use receipt_ocr::startup::Role;

use image::ImageFormat;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png, encode, render};
use receipt_ocr::job::JobState;

fn worker_settings(base: &Settings, name: &str) -> Settings {
    let mut settings = base.clone();
    settings.queue.worker_name = Some(name.to_string());
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_uploaded_to_the_api_process_is_read_by_a_worker_process() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    assert_eq!(
        api.job(&job_id).await.1["state"],
        "waiting",
        "the api process runs no worker"
    );

    let mut separate = worker_settings(&settings, "separate-worker");
    separate.http.port = free_port();
    // A limit far above what the test needs, to see it reported.
    separate.queue.rate_limit.max = 100;
    let _worker = Process::start("worker", &separate);
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "job: {job:?}");
    assert_eq!(
        job.result.as_ref().and_then(|r| r.store_name.as_deref()),
        Some(CORNER_MARKET.store)
    );
    let hash = api.job_hash(&job_id).await;
    // BullMQ records the worker name in `pb` (processedBy).
    assert_eq!(hash.get("pb").map(String::as_str), Some("separate-worker"));

    // The worker process serves its own probes and metrics.
    let health = format!("http://127.0.0.1:{}/health/ready", separate.http.port);
    let ready = api.get_json(&health).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(
        ready["ocrWorkers"],
        separate.ocr.concurrency.get(),
        "{ready}"
    );
    assert_eq!(ready["rateLimit"]["max"], 100, "{ready}");
    assert_eq!(
        ready["rateLimit"]["durationMs"],
        separate.queue.rate_limit.window.as_millis() as u64,
        "{ready}"
    );
    let metrics = format!("http://127.0.0.1:{}/metrics", separate.http.port);
    let text = api.get_text(&metrics).await;
    // Its own series (the queue-wide ones come from one process at a time).
    let completed = r#"receipt_ocr_jobs_processed_total{outcome="completed"} 1"#;
    assert!(text.contains(completed), "{text}");
}

/// Group start times into BullMQ's fixed windows: a window opens at the
/// first start after the previous one closed and lasts `duration_ms`.
fn windows(mut starts: Vec<u64>, duration_ms: u64) -> Vec<Vec<u64>> {
    starts.sort_unstable();
    let mut windows: Vec<Vec<u64>> = Vec::new();
    for start in starts {
        match windows.last_mut() {
            Some(window) if start < window[0] + duration_ms => window.push(start),
            _ => windows.push(vec![start]),
        }
    }
    windows
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_holds_across_two_worker_processes() {
    let mut settings = isolated_settings();
    settings.queue.rate_limit.max = 2;
    settings.queue.rate_limit.window = Duration::from_millis(2_000);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let _first = Process::start("worker", &worker_settings(&settings, "limited-1"));
    let _second = Process::start("worker", &worker_settings(&settings, "limited-2"));

    let mut job_ids = Vec::new();
    for _ in 0..6 {
        job_ids.push(api.upload_ok(corner_market_png()).await);
    }
    let mut starts = Vec::new();
    for job_id in &job_ids {
        let job = api.wait_for_final(job_id).await;
        assert_eq!(job.state, JobState::Completed, "job: {job:?}");
        let hash = api.job_hash(job_id).await;
        starts.push(hash["processedOn"].parse::<u64>().expect("processedOn"));
    }
    let windows = windows(starts, settings.queue.rate_limit.window.as_millis() as u64);
    assert!(
        windows.len() >= 3,
        "6 jobs at 2 per window need 3 windows: {windows:?}"
    );
    for window in &windows {
        assert!(
            window.len() <= 2,
            "a window started more than the limit: {windows:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_worker_process_crashes_is_read_by_another_worker() {
    let mut settings = isolated_settings();
    // A short lock, so the orphaned job is noticed quickly.
    settings.queue.lock = Duration::from_millis(2_000);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(long_receipt_png()).await;

    let doomed = Process::start("worker", &worker_settings(&settings, "doomed"));
    wait_for(|| async { (api.job(&job_id).await.1["state"] == "active").then_some(()) }).await;
    doomed.crash();

    let _rescuer = Process::start("worker", &worker_settings(&settings, "rescuer"));
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "job: {job:?}");
    assert_eq!(
        job.result.as_ref().and_then(|r| r.store_name.as_deref()),
        Some(CORNER_MARKET.store)
    );
    let hash = api.job_hash(&job_id).await;
    assert_eq!(
        hash.get("pb").map(String::as_str),
        Some("rescuer"),
        "{hash:?}"
    );
}

/// The known receipt with many more lines, so reading it takes long enough
/// to be caught in the middle.
fn long_receipt_png() -> Vec<u8> {
    let mut lines: Vec<&str> = CORNER_MARKET.lines[..6].to_vec();
    lines.extend(std::iter::repeat_n("Note: thank you for shopping", 40));
    lines.extend(&CORNER_MARKET.lines[6..]);
    encode(&render(&lines), ImageFormat::Png)
}
