//! The supervision tree: the pool starts full, a worker that panics is
//! replaced while the job it was reading is retried and completes, and one
//! stuck in a read past JOB_TIMEOUT_MS is replaced and its job fails; a
//! read while the whole pool is being restarted waits for the new one, and
//! one under way when the pool fails is sent to the new one.

use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_starts_with_one_ocr_worker_per_unit_of_concurrency() {
    let app = TestApp::serve().await;
    let stats = app.supervisor_stats().await;
    assert_eq!(stats.ocr_workers, app.settings.ocr.concurrency.get());
    assert_eq!(stats.restarts, 0);
}

/// Needs the `fault-injection` feature (scripts/test.sh turns it on).
#[cfg(feature = "fault-injection")]
mod injected_panics {
    use receipt_ocr::job::JobState;
    use receipt_ocr::startup::Role;

    use crate::helpers::{TestApp, isolated_settings, wait_for};
    use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_ocr_worker_is_restarted_and_its_job_retried() {
        let mut settings = isolated_settings();
        settings.ocr.inject_panics = 1;
        let app = TestApp::spawn(Role::Serve, settings).await;
        let job_id = app.upload_ok(corner_market_png()).await;

        let job = app.wait_for_final(&job_id).await;
        assert_eq!(job.state, JobState::Completed, "job: {job:?}");
        assert_eq!(
            job.result.as_ref().and_then(|r| r.store_name.as_deref()),
            Some(CORNER_MARKET.store),
            "job: {job:?}"
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
            (stats.ocr_workers == app.settings.ocr.concurrency.get()).then_some(stats)
        })
        .await;
        assert_eq!(stats.restarts, 1);

        // The same in /metrics (the test binary's apps share one registry,
        // so at least what this test caused).
        let text = app.get_text(&format!("{}/metrics", app.address)).await;
        let value = |series: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(series));
            let line = line.unwrap_or_else(|| panic!("{series} in {text}"));
            line[series.len()..].trim().parse().expect("a number")
        };
        assert!(value(r#"receipt_ocr_worker_restarts_total{worker="ocr"}"#) >= 1.0);
        let crashes = r#"receipt_ocr_job_failures_total{final="false",reason="worker_crash"}"#;
        assert!(value(crashes) >= 1.0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_stuck_past_job_timeout_fails_for_good_and_its_worker_is_replaced() {
        let mut settings = isolated_settings();
        settings.ocr.concurrency = 1.try_into().expect("non-zero");
        // Long enough for a real read of a small receipt on a loaded
        // machine (2 s was not: the next receipt's read timed out too).
        settings.ocr.read_timeout = std::time::Duration::from_secs(10);
        // The first read sleeps 30 s on its thread, as a stuck Tesseract.
        settings.ocr.inject_hold_ms = 30_000;
        let app = TestApp::spawn(Role::Serve, settings).await;
        let stuck = app.upload_ok(corner_market_png()).await;

        let job = app.wait_for_final(&stuck).await;
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        assert_eq!(job.attempts_made, 1, "no retry: {job:?}");
        let reason = job.failed_reason.unwrap_or_default();
        assert!(reason.contains("JOB_TIMEOUT_MS"), "{reason}");

        // A fresh worker reads the next receipt while the stuck thread
        // still sleeps.
        let next = app.upload_ok(corner_market_png()).await;
        let job = app.wait_for_final(&next).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        let stats = app.supervisor_stats().await;
        assert_eq!((stats.ocr_workers, stats.restarts), (1, 1), "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_while_the_ocr_pool_is_restarted_waits_for_it_and_costs_no_attempt() {
        use receipt_ocr::actors::supervisor::{Child, SupervisorMessage};

        let app = TestApp::serve().await;
        let supervisor = app.supervisor.clone().expect("a serve app");
        // The pool fails as a whole (its workers with it); the supervisor
        // starts the next one 3 s later.
        let pause = std::time::Duration::from_secs(3);
        supervisor
            .cast(SupervisorMessage::Crash(Child::OcrPool, pause))
            .expect("the supervisor takes messages");
        wait_for(|| async { (app.supervisor_stats().await.ocr_workers == 0).then_some(()) }).await;

        let job_id = app.upload_ok(corner_market_png()).await;
        let job = app.wait_for_final(&job_id).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        assert_eq!(
            job.attempts_made, 1,
            "no attempt lost to the restart: {job:?}"
        );
        let stats = app.supervisor_stats().await;
        assert_eq!(stats.ocr_workers, app.settings.ocr.concurrency.get());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_under_way_when_the_ocr_pool_fails_is_sent_to_the_next_pool_at_no_attempt() {
        use receipt_ocr::actors::supervisor::{Child, SupervisorMessage};

        let mut settings = isolated_settings();
        // The first read says progress 10, then holds its worker 20 s: the
        // pool fails under it long before that.
        settings.ocr.inject_hold_ms = 20_000;
        let app = TestApp::spawn(Role::Serve, settings).await;
        let supervisor = app.supervisor.clone().expect("a serve app");
        let job_id = app.upload_ok(corner_market_png()).await;
        wait_for(|| async { (app.job_view(&job_id).await.progress >= 10).then_some(()) }).await;

        let pause = std::time::Duration::from_millis(500);
        supervisor
            .cast(SupervisorMessage::Crash(Child::OcrPool, pause))
            .expect("the supervisor takes messages");
        let job = app.wait_for_final(&job_id).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        // Lost with the pool through no fault of the image: read again by
        // the next pool within the same attempt, not retried.
        assert_eq!(job.attempts_made, 1, "{job:?}");
    }
}
