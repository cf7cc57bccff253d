//! The queue as a whole: its overview against raw Redis, pause and resume
//! across two worker processes, and job statuses that say why a job waits.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::jobs::QueueView;
use receipt_ocr::startup::Role;

use crate::helpers::{Process, TestApp, isolated_settings, wait_for};
use crate::support::receipt_image::corner_market_png;

impl TestApp {
    pub async fn queue_view(&self) -> QueueView {
        let url = format!("{}/api/queue", self.address);
        let response = self.http.get(url).send().await.expect("queue request");
        assert_eq!(response.status(), 200, "GET /api/queue");
        response.json().await.expect("a QueueView")
    }

    /// `POST /api/queue/pause` or `/resume`.
    pub async fn steer_queue(&self, action: &str) -> QueueView {
        let url = format!("{}/api/queue/{action}", self.address);
        let response = self.http.post(url).send().await.expect("queue request");
        assert_eq!(response.status(), 200, "POST /api/queue/{action}");
        response.json().await.expect("a QueueView")
    }

    /// The size of one of this queue's BullMQ lists or sorted sets.
    async fn redis_size(&self, command: &str, list: &str) -> u64 {
        let key = format!(
            "{}:{}:{list}",
            self.settings.queue.prefix, self.settings.queue.name
        );
        redis::cmd(command)
            .arg(key)
            .query_async(&mut self.redis().await)
            .await
            .expect("a size")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_queue_overview_counts_what_redis_holds() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    for _ in 0..3 {
        app.upload_ok(corner_market_png()).await;
    }
    let queue = app.queue_view().await;
    assert_eq!(queue.counts.waiting, app.redis_size("LLEN", "wait").await);
    assert_eq!(queue.counts.waiting, 3, "{queue:?}");
    assert_eq!(queue.counts.active, app.redis_size("LLEN", "active").await);
    for (count, set) in [
        (queue.counts.delayed, "delayed"),
        (queue.counts.prioritized, "prioritized"),
        (queue.counts.completed, "completed"),
        (queue.counts.failed, "failed"),
    ] {
        assert_eq!(count, app.redis_size("ZCARD", set).await, "{set}");
    }
    assert!(!queue.paused);
    assert!(queue.workers.is_empty(), "the api process runs no worker");

    // BullMQ 5 pauses with a flag in the queue's meta hash; the jobs stay
    // in `wait` (the old `paused` list is kept empty).
    let paused = app.steer_queue("pause").await;
    assert!(paused.paused);
    assert_eq!(paused.counts.paused, app.redis_size("LLEN", "paused").await);
    assert_eq!(paused.counts.waiting, app.redis_size("LLEN", "wait").await);
    assert_eq!(paused.counts.waiting, 3, "{paused:?}");

    let graphql = app.graphql("{ queue { paused counts { waiting } } }").await;
    assert_eq!(graphql["data"]["queue"]["paused"], true, "{graphql}");
    assert_eq!(
        graphql["data"]["queue"]["counts"]["waiting"], 3,
        "{graphql}"
    );
    let resumed = app.graphql("mutation { resumeQueue { paused } }").await;
    assert_eq!(resumed["data"]["resumeQueue"]["paused"], false, "{resumed}");
    assert_eq!(app.queue_view().await.counts.waiting, 3);
}

fn worker_settings(base: &Settings, name: &str) -> Settings {
    let mut settings = base.clone();
    settings.queue.worker_name = Some(name.to_string());
    settings
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.expect("a clock after 1970").as_millis() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queue_starts_nothing_in_two_worker_processes_until_resumed() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let _first = Process::start("worker", &worker_settings(&settings, "pausable-1"));
    let _second = Process::start("worker", &worker_settings(&settings, "pausable-2"));
    let workers = wait_for(|| async {
        let queue = api.queue_view().await;
        (queue.workers.len() >= 2).then_some(queue.workers)
    })
    .await;
    let mut names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["pausable-1", "pausable-2"], "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|w| w.started_at.is_some() && !w.address.is_empty())
    );
    // The workers take jobs before the pause.
    let warm_up = api.upload_ok(corner_market_png()).await;
    assert_eq!(
        api.wait_for_final(&warm_up).await.state,
        JobState::Completed
    );

    api.steer_queue("pause").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(api.upload_ok(corner_market_png()).await);
    }
    // Not a wait for a condition but the observation that none comes: two
    // idle workers would take these jobs within milliseconds.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        let queue = api.queue_view().await;
        assert_eq!(
            queue.counts.active, 0,
            "a job started while paused: {queue:?}"
        );
        assert_eq!(queue.counts.waiting, 4, "{queue:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = api.job_view(&held[0]).await;
    assert_eq!(job.state, JobState::Waiting);
    assert_eq!(job.waiting_reason.as_deref(), Some("queue paused"));

    let resumed_at = now_ms();
    assert!(!api.steer_queue("resume").await.paused);
    for job_id in &held {
        let job = api.wait_for_final(job_id).await;
        assert_eq!(job.state, JobState::Completed, "job: {job:?}");
        let hash = api.job_hash(job_id).await;
        let started: u64 = hash["processedOn"].parse().expect("processedOn");
        assert!(started >= resumed_at, "{job_id} started before the resume");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_status_says_a_paused_queue_holds_it() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    app.steer_queue("pause").await;
    let job_id = app.upload_ok(corner_market_png()).await;
    let job = app.job_view(&job_id).await;
    assert_eq!(job.state, JobState::Waiting);
    assert_eq!(job.attempts_made, 0);
    assert_eq!(job.priority, 0);
    assert_eq!(job.run_at, None);
    assert_eq!(job.waiting_reason.as_deref(), Some("queue paused"));
    let query =
        format!(r#"{{ jobStatus(jobId: "{job_id}") {{ attemptsMade priority waitingReason }} }}"#);
    let graphql = app.graphql(&query).await;
    assert_eq!(
        graphql["data"]["jobStatus"]["waitingReason"], "queue paused",
        "{graphql}"
    );
    app.graphql("mutation { resumeQueue { paused } }").await;
    assert_eq!(app.job_view(&job_id).await.waiting_reason, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_waiting_for_its_retry_shows_the_attempt_its_failure_and_when_it_runs() {
    let mut settings = isolated_settings();
    settings.ocr.inject_panics = 1;
    settings.queue.backoff = Duration::from_secs(30);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let uploaded_at = chrono::Utc::now();
    let job_id = app.upload_ok(corner_market_png()).await;
    let job = wait_for(|| async {
        let job = app.job_view(&job_id).await;
        // The reason is written just after the move to `delayed`.
        (job.state == JobState::Delayed && job.failed_reason.is_some()).then_some(job)
    })
    .await;
    assert_eq!(job.attempts_made, 1, "{job:?}");
    assert!(job.failed_reason.is_some(), "{job:?}");
    let run_at = job.run_at.expect("a delayed job's runAt");
    let wait = run_at - uploaded_at;
    assert!(
        (25..=35).contains(&wait.num_seconds()),
        "the retry is due one backoff after the failure: {run_at}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_held_by_the_rate_limit_says_for_how_long() {
    let mut settings = isolated_settings();
    settings.queue.rate_limit.max = 1;
    settings.queue.rate_limit.window = Duration::from_secs(60);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let first = app.upload_ok(corner_market_png()).await;
    assert_eq!(app.wait_for_final(&first).await.state, JobState::Completed);
    let second = app.upload_ok(corner_market_png()).await;
    let job = wait_for(|| async {
        let job = app.job_view(&second).await;
        job.waiting_reason.is_some().then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Waiting, "{job:?}");
    let reason = job.waiting_reason.expect("a reason");
    let seconds: u64 = reason
        .strip_prefix("rate limited for another ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected reason: {reason}"));
    assert!((1..=60).contains(&seconds), "{reason}");
    let queue = app.queue_view().await;
    assert_eq!(queue.rate_limit.max, 1, "{queue:?}");
    assert!(queue.rate_limit.wait_ms > 0, "{queue:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_the_queue_and_listing_endpoints_with_their_errors() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let text = app.get_text(&format!("{}/openapi.json", app.address)).await;
    let spec: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let paths = &spec["paths"];
    for (path, method, statuses) in [
        ("/api/queue", "get", &["200", "401", "503"][..]),
        ("/api/queue/pause", "post", &["200", "401", "503"][..]),
        ("/api/queue/resume", "post", &["200", "401", "503"][..]),
        ("/api/receipts", "get", &["200", "400", "401", "503"][..]),
    ] {
        let responses = &paths[path][method]["responses"];
        for status in statuses {
            assert!(
                responses.get(status).is_some(),
                "{method} {path} {status}: {responses}"
            );
        }
    }
    let parameters = paths["/api/receipts"]["get"]["parameters"].to_string();
    for name in [
        "status",
        "from",
        "to",
        "purchasedFrom",
        "purchasedTo",
        "q",
        "limit",
        "cursor",
    ] {
        assert!(
            parameters.contains(&format!("\"{name}\"")),
            "{name}: {parameters}"
        );
    }
}
