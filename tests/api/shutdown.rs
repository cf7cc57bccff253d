//! Stopping a worker process with SIGTERM: no job starts after the signal,
//! a read that ends within SHUTDOWN_GRACE_MS is saved, and one that does
//! not is handed back to the queue (no attempt spent) while the process
//! exits within the grace plus 5 s, even though the read's thread is still
//! busy.

use std::time::{Duration, Instant};

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::startup::Role;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

/// What the issue promises: the process is gone by the grace plus this.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

fn worker(settings: &Settings, grace: Duration, hold: Duration) -> Process {
    let mut own = settings.clone();
    own.http.port = free_port();
    own.ocr.concurrency = 1.try_into().expect("non-zero");
    let grace = grace.as_millis().to_string();
    let hold = hold.as_millis().to_string();
    Process::start_with(
        "worker",
        &own,
        &[
            ("SHUTDOWN_GRACE_MS", grace.as_str()),
            ("OCR_INJECT_HOLD_MS", hold.as_str()),
        ],
    )
}

async fn row_status(app: &TestApp, job_id: &str) -> String {
    let stored = app.db.receipt_by_job_id(job_id).await.expect("query");
    stored.expect("a receipt row").row.status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_longer_than_the_grace_goes_back_to_the_queue_unspent() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let grace = Duration::from_secs(1);
    // The read is held for 60 s on its blocking thread: far past the grace,
    // and nothing can interrupt it.
    let mut stopping = worker(&settings, grace, Duration::from_secs(60));
    let job_id = api.upload_ok(corner_market_png()).await;
    wait_for(|| async { (api.job_view(&job_id).await.state == JobState::Active).then_some(()) })
        .await;

    let signalled = Instant::now();
    stopping.terminate();
    let status = stopping.exited_within(grace + EXIT_MARGIN).await;
    let took = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(status.success(), "a clean exit: {status:?}");
    eprintln!("shutdown with a 60 s read in progress: {took:?} (grace {grace:?})");

    // Back in `waiting` at once (no lock left to expire), no attempt spent.
    let job = api.job_view(&job_id).await;
    assert_eq!(job.state, JobState::Waiting, "{job:?}");
    assert_eq!(job.attempts_made, 0, "{job:?}");
    assert_eq!(row_status(&api, &job_id).await, "queued");
    let hash = api.job_hash(&job_id).await;
    assert!(
        !hash.contains_key("failedReason") || hash["failedReason"].is_empty(),
        "{hash:?}"
    );

    // The next worker reads it on its first attempt.
    let _next = worker(&settings, grace, Duration::ZERO);
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(job.attempts_made, 1, "{job:?}");
    let store = job.result.as_ref().and_then(|r| r.store_name.as_deref());
    assert_eq!(store, Some(CORNER_MARKET.store));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_within_the_grace_is_saved_and_no_new_job_starts() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let grace = Duration::from_secs(60);
    // One OCR worker; its first read is held 2 s, well within the grace.
    let mut stopping = worker(&settings, grace, Duration::from_secs(2));
    let first = api.upload_ok(corner_market_png()).await;
    let second = api.upload_ok(corner_market_png()).await;
    wait_for(|| async { (api.job_view(&first).await.state == JobState::Active).then_some(()) })
        .await;

    stopping.terminate();
    let status = stopping.exited_within(grace + EXIT_MARGIN).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");

    let job = api.job_view(&first).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(row_status(&api, &first).await, "completed");
    // The second job was never started: BullMQ counts no start for it.
    let job = api.job_view(&second).await;
    assert_eq!(job.state, JobState::Waiting, "{job:?}");
    let hash = api.job_hash(&second).await;
    assert_eq!(hash.get("ats").map(String::as_str).unwrap_or("0"), "0");
    assert_eq!(row_status(&api, &second).await, "queued");
}
