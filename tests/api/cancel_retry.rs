//! Cancelling and retrying jobs: waiting, delayed and active (in another
//! worker process) jobs end `cancelled` in Redis and PostgreSQL; failed
//! and cancelled jobs run again on retry; other states get 409.

use receipt_ocr::config::Settings;
use receipt_ocr::job::{JobState, new_job_id};
use receipt_ocr::jobs::JobStatusView;
use receipt_ocr::startup::Role;
use receipt_ocr::store::Notify;
use receipt_ocr::store::models::NewReceipt;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, queue_for, wait_for};
use crate::support::receipt_image::corner_market_png;

impl TestApp {
    /// DELETE /api/job/{id} (or POST …/retry): the status code and body.
    async fn control(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let url = format!("{}/api/job/{path}", self.address);
        let response = self
            .http
            .request(method, url)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    async fn cancel(&self, job_id: &str) -> (u16, Value) {
        self.control(reqwest::Method::DELETE, job_id).await
    }

    async fn retry(&self, job_id: &str) -> (u16, Value) {
        self.control(reqwest::Method::POST, &format!("{job_id}/retry"))
            .await
    }

    async fn receipt_status(&self, job_id: &str) -> (String, bool) {
        let stored = self.db.receipt_by_job_id(job_id).await.expect("query");
        let row = stored.expect("a receipt row").row;
        (row.status, row.cancelled_at.is_some())
    }

    /// Set the request a cancelling process leaves for the worker, and
    /// nothing else (no row write): as a cancel whose process stopped
    /// before its row write, or one racing a save.
    async fn request_cancel_only(&self, job_id: &str) {
        let flag = format!(
            "{}:{}:receipt-ocr:cancel:{job_id}",
            self.settings.queue.prefix, self.settings.queue.name
        );
        let _: () = redis::cmd("SET")
            .arg(flag)
            .arg(1)
            .arg("EX")
            .arg(600)
            .query_async(&mut self.redis().await)
            .await
            .expect("SET");
    }
}

fn state(body: &Value) -> JobState {
    let view: JobStatusView = serde_json::from_value(body.clone()).expect("a job status");
    view.state
}

/// An API process, a separate `worker` process with one OCR worker whose
/// first read is held for 3 s (long enough to act on the job while it is
/// active, whatever the machine's speed), and a job uploaded and seen
/// active there, its read under way. The worker's settings come back for
/// its port.
async fn a_job_held_active_in_another_worker() -> (TestApp, Settings, Process, String) {
    let mut settings = isolated_settings();
    settings.ocr.concurrency = 1.try_into().expect("non-zero");
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let mut separate = settings;
    separate.http.port = free_port();
    let worker = Process::start_with("worker", &separate, &[("OCR_INJECT_HOLD_MS", "3000")]);
    let job_id = api.upload_ok(corner_market_png()).await;
    // Active in BullMQ and its row `processing`: the read (held) is under
    // way, past the worker's own look at the row.
    wait_for(|| async {
        let active = api.job_view(&job_id).await.state == JobState::Active;
        (active && api.receipt_status(&job_id).await.0 == "processing").then_some(())
    })
    .await;
    (api, separate, worker, job_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_job_is_cancelled_at_once_and_cancelling_again_changes_nothing() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let (status, body) = app.cancel(&job_id).await;
    assert_eq!((status, state(&body)), (200, JobState::Cancelled), "{body}");
    assert!(app.job_hash(&job_id).await.is_empty(), "the job left Redis");
    assert_eq!(
        app.receipt_status(&job_id).await,
        ("cancelled".into(), true)
    );
    assert_eq!(app.blob_files().len(), 1, "the image is kept");

    let (again, body) = app.cancel(&job_id).await;
    assert_eq!((again, state(&body)), (200, JobState::Cancelled));
    assert_eq!(app.cancel("ocr-1-nosuchjob").await.0, 404);

    let mutation = format!(r#"mutation {{ cancelJob(jobId: "{job_id}") {{ state }} }}"#);
    let graphql = app.graphql(&mutation).await;
    assert_eq!(
        graphql["data"]["cancelJob"]["state"], "cancelled",
        "{graphql}"
    );
    let retried = app
        .graphql(&format!(
            r#"mutation {{ retryJob(jobId: "{job_id}") {{ state }} }}"#
        ))
        .await;
    assert_ne!(
        retried["data"]["retryJob"]["state"], "cancelled",
        "{retried}"
    );
    assert_eq!(app.receipt_status(&job_id).await, ("queued".into(), false));
}

/// Retries at once: one wins and queues the job; the others answer 409 and
/// leave that job be (a stale one used to remove it again, leaving the
/// receipt `queued` with no job until the reconciler came).
#[tokio::test(flavor = "multi_thread")]
async fn retries_at_once_queue_the_job_once_and_leave_it_waiting() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let job_id = app.upload_ok(corner_market_png()).await;
    assert_eq!(app.cancel(&job_id).await.0, 200);

    let retries = (0..8).map(|_| app.retry(&job_id));
    let mut statuses: Vec<_> = futures::future::join_all(retries)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(app.job_view(&job_id).await.state, JobState::Waiting);
    assert_eq!(app.receipt_status(&job_id).await, ("queued".into(), false));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_job_is_cancelled_and_never_runs_until_retried() {
    let app = TestApp::serve().await;
    let file = Part::bytes(corner_market_png()).file_name("receipt.png");
    let form = Form::new().part("file", file).text("delay", "60000");
    let body: Value = app.upload_form(form).await.json().await.expect("JSON");
    let job_id = body["jobId"].as_str().expect("jobId").to_string();
    assert_eq!(app.job_view(&job_id).await.state, JobState::Delayed);

    let (status, body) = app.cancel(&job_id).await;
    assert_eq!((status, state(&body)), (200, JobState::Cancelled), "{body}");
    assert_eq!(app.receipt_status(&job_id).await.0, "cancelled");

    let (status, body) = app.retry(&job_id).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(state(&body), JobState::Cancelled, "{body}");
    let (row, cancelled_at) = app.receipt_status(&job_id).await;
    assert!(row != "cancelled" && !cancelled_at, "{row}");
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_active_job_in_another_worker_process_is_stopped_and_the_worker_goes_on() {
    let (api, separate, _worker, job_id) = a_job_held_active_in_another_worker().await;
    let (status, body) = api.cancel(&job_id).await;
    assert_eq!((status, state(&body)), (200, JobState::Cancelled), "{body}");

    // The worker stops the job: BullMQ fails it with our reason.
    let hash = api.finished_job_hash(&job_id).await;
    assert_eq!(
        hash.get("failedReason").map(String::as_str),
        Some("cancelled by a client")
    );
    assert_eq!(api.job_view(&job_id).await.state, JobState::Cancelled);
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("cancelled".into(), true)
    );

    let next = api.upload_ok(corner_market_png()).await;
    let job = api.wait_for_final(&next).await;
    assert_eq!(
        job.state,
        JobState::Completed,
        "the worker goes on: {job:?}"
    );
    assert_eq!(
        api.receipt_status(&job_id).await.0,
        "cancelled",
        "never overwritten"
    );
    // The worker process counted one attempt of each outcome.
    let metrics = format!("http://127.0.0.1:{}/metrics", separate.http.port);
    let text = api.get_text(&metrics).await;
    for outcome in ["cancelled", "completed"] {
        let series = format!(r#"receipt_ocr_jobs_processed_total{{outcome="{outcome}"}} 1"#);
        assert!(text.contains(&series), "{series} in:\n{text}");
    }
}

/// The worker's failed event can record a stopped job before the process
/// that asked writes the row (or that process dies in between): the row
/// still ends `cancelled`, not `failed`. Here the request reaches only
/// the worker, as the flag a cancelling process sets before its row write.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_stopped_by_a_cancel_ends_cancelled_whoever_records_it() {
    let (api, _, _worker, job_id) = a_job_held_active_in_another_worker().await;
    api.request_cancel_only(&job_id).await;

    let row = wait_for(|| async {
        let row = api.receipt_status(&job_id).await;
        (row.0 != "processing" && row.0 != "queued").then_some(row)
    })
    .await;
    assert_eq!(row, ("cancelled".into(), true));
    assert_eq!(api.job_view(&job_id).await.state, JobState::Cancelled);
}

/// A cancel that comes while a retry is under way, after the retry claimed
/// the row (`queued` again) and before it replaced the job Redis still
/// shows cancelled: the row is cancelled again, so the retried job stops
/// as it starts (the cancel used to answer 200 from Redis and write
/// nothing, and the retried job ran).
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_between_a_retrys_claim_and_its_new_job_still_cancels() {
    let (api, _, _worker, job_id) = a_job_held_active_in_another_worker().await;
    assert_eq!(api.cancel(&job_id).await.0, 200);
    api.finished_job_hash(&job_id).await;
    assert_eq!(api.job_view(&job_id).await.state, JobState::Cancelled);
    // The retry's first step, as it takes it.
    assert_eq!(
        api.db.requeue_receipt(&job_id).await.expect("claim"),
        Some(1)
    );
    assert_eq!(api.receipt_status(&job_id).await, ("queued".into(), false));

    let (status, body) = api.cancel(&job_id).await;
    assert_eq!((status, state(&body)), (200, JobState::Cancelled), "{body}");
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("cancelled".into(), true)
    );
}

/// A retry sent right after a cancel, while the worker still holds the job
/// (it looks for cancels every 250 ms), answers 409 (try again in a moment)
/// instead of a 200 whose fresh job Redis would refuse as a duplicate; once
/// the worker has let go, the retry runs the receipt to completion. The
/// row is written `cancelled` here without the flag the worker looks for,
/// so that it holds the job for the whole read: no race decides the test.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_while_a_worker_still_holds_the_job_answers_409_and_is_never_lost() {
    let (api, _, _worker, job_id) = a_job_held_active_in_another_worker().await;
    let cancelled = api.db.cancel_receipt(&job_id, Notify::Nobody).await;
    assert!(
        cancelled.expect("a query").is_some(),
        "the row was unfinished"
    );

    let (status, body) = api.retry(&job_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("try again in a moment"), "{message}");
    // The receipt untouched: the worker's save must find it cancelled.
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("cancelled".into(), true)
    );

    // The read ends, finds its row cancelled and is thrown away; then the
    // worker lets go and the retry is taken.
    wait_for(|| async {
        let (status, body) = api.retry(&job_id).await;
        match status {
            200 => Some(()),
            409 => None,
            other => panic!("{other}: {body}"),
        }
    })
    .await;
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("completed".into(), false)
    );
}

/// A cancel that arrives once the reading is committed is late: it answers
/// 409, and the job completes (its worker does not throw away a save that
/// happened, even when it sees a cancel request), the row `completed`. The
/// worker holds each attempt 5 s after its save, as a slow answer from
/// PostgreSQL would.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_after_the_save_committed_is_late_and_the_job_completes() {
    let mut settings = isolated_settings();
    settings.ocr.concurrency = 1.try_into().expect("non-zero");
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let mut separate = settings;
    separate.http.port = free_port();
    let _worker = Process::start_with("worker", &separate, &[("OCR_INJECT_SAVED_HOLD_MS", "5000")]);

    let job_id = api.upload_ok(corner_market_png()).await;
    wait_for(|| async { (api.receipt_status(&job_id).await.0 == "completed").then_some(()) }).await;
    assert_eq!(api.job_view(&job_id).await.state, JobState::Active);
    let (status, body) = api.cancel(&job_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict", "{body}");
    assert_eq!(api.job_view(&job_id).await.state, JobState::Active);

    // A request the worker sees while its save is answered (one from a
    // process that looked before the save committed) lets it finish too.
    api.request_cancel_only(&job_id).await;
    api.finished_job_hash(&job_id).await;
    let job = api.job_view(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("completed".into(), false)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_runs_again_on_retry_and_a_completed_one_answers_409() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    // Take the image away so the job fails for good, then put it back.
    let (blob, image) = api.remove_the_image();
    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let failed = api.wait_for_final(&job_id).await;
    assert_eq!(failed.state, JobState::Failed, "{failed:?}");
    assert_eq!(
        api.cancel(&job_id).await.0,
        409,
        "a failed job is not cancelled"
    );

    std::fs::write(&blob, image).expect("restore the image");
    let (status, body) = api.retry(&job_id).await;
    assert_eq!(status, 200, "{body}");
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(api.receipt_status(&job_id).await.0, "completed");

    let (status, body) = api.retry(&job_id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("completed")),
        "{body}"
    );
    assert_eq!(api.cancel(&job_id).await.0, 409);
}

/// A cancel that came too late withdraws its own request only: one another
/// client made since (after a retry, on the job's next run) still stops
/// the job; a retry's requeue drops every request.
#[tokio::test(flavor = "multi_thread")]
async fn a_late_cancel_withdraws_its_own_request_and_no_other() {
    let settings = isolated_settings();
    let queue = queue_for(&settings).await;
    let job_id = new_job_id();
    let late = queue.request_cancel(&job_id).await.expect("SET");
    let newer = queue.request_cancel(&job_id).await.expect("SET");
    assert_ne!(late, newer);

    queue
        .withdraw_cancel_request(&job_id, &late)
        .await
        .expect("script");
    assert!(queue.cancel_requested(&job_id).await.expect("EXISTS"));
    queue
        .withdraw_cancel_request(&job_id, &newer)
        .await
        .expect("script");
    assert!(!queue.cancel_requested(&job_id).await.expect("EXISTS"));

    queue.request_cancel(&job_id).await.expect("SET");
    queue.withdraw_cancel(&job_id).await.expect("DEL");
    assert!(!queue.cancel_requested(&job_id).await.expect("EXISTS"));
}

/// BullMQ has failed a job for good and its worker has not yet written the
/// row (it does so an instant later, or PostgreSQL was down then): a retry
/// records the failure itself, on the run that failed, and goes ahead,
/// rather than answer 409 to a client that saw `failed`. A failure written
/// late for that run, after the retry, changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_before_the_row_says_failed_goes_ahead_and_a_late_write_is_ignored() {
    let api = TestApp::spawn(Role::Api, isolated_settings()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    // What BullMQ's failing script leaves, its worker's row write not yet
    // made: the job in the failed set with its reason.
    fail_in_redis(&api, &job_id, "the OCR worker crashed").await;
    assert_eq!(api.job_view(&job_id).await.state, JobState::Failed);
    assert_eq!(api.receipt_status(&job_id).await.0, "queued");

    let (status, body) = api.retry(&job_id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(state(&body), JobState::Waiting, "{body}");
    let stored = api.db.receipt_by_job_id(&job_id).await.unwrap();
    let row = stored.expect("its row").row;
    assert_eq!((row.status.as_str(), row.run), ("queued", 1));

    // The worker's write for the run that failed, coming now.
    let late = api
        .db
        .mark_job_failed(&job_id, "the OCR worker crashed", 0, Notify::Nobody)
        .await
        .expect("PostgreSQL");
    assert!(late.is_none(), "a retried run is not failed again");
    assert_eq!(api.receipt_status(&job_id).await.0, "queued");
}

/// A cancel that comes after a job's last attempt failed but before BullMQ
/// was told (held there for 10 s by OCR_INJECT_FINAL_FAILURE_HOLD_MS) wins:
/// the job reads cancelled and ends cancelled in Redis as its receipt
/// does, rather than `failed` beside a receipt the cancel marked
/// cancelled.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_as_the_last_attempt_fails_ends_the_job_cancelled_everywhere() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    // Its image is away: the attempt fails for good.
    api.remove_the_image();
    let mut separate = settings;
    separate.http.port = free_port();
    let hold = [("OCR_INJECT_FINAL_FAILURE_HOLD_MS", "10000")];
    let (_worker, log) = Process::start_watched("worker", &separate, &hold);
    log.wait_for_line("holding a final failure").await;

    let (status, body) = api.cancel(&job_id).await;
    assert_eq!((status, state(&body)), (200, JobState::Cancelled), "{body}");
    // BullMQ fails the job once the hold is over, with the image's reason:
    // it reads cancelled all the same (its receipt says so), and the
    // worker's failed event then makes the job's reason the cancel.
    api.finished_job_hash(&job_id).await;
    let job = api.job_view(&job_id).await;
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    wait_for(|| async {
        let hash = api.job_hash(&job_id).await;
        let reason = hash.get("failedReason").map(String::as_str);
        (reason == Some(receipt_ocr::job::CANCELLED_REASON)).then_some(())
    })
    .await;
    assert_eq!(
        api.receipt_status(&job_id).await,
        ("cancelled".into(), true)
    );
}

/// The job a worker starts sets its receipt's run: Redis holds one job per
/// id, so a job retried outside our API (Bull Board) after a client's
/// retry claimed the row, and ran instead of the client's, has its
/// failure recorded rather than left to a run nobody runs.
#[tokio::test(flavor = "multi_thread")]
async fn the_job_a_worker_starts_sets_its_receipts_run() {
    let api = TestApp::spawn(Role::Api, isolated_settings()).await;
    let accepted = api.upload_accepted(corner_market_png()).await;
    let job_id = accepted.job_id;
    let receipt = NewReceipt::queued(
        accepted.receipt_id,
        job_id.clone(),
        "receipts/any.png".into(),
        "image/png".into(),
    );
    // Failed on run 0, claimed by a retry (run 1), then a run-0 job starts.
    api.db
        .mark_job_failed(&job_id, "the first run failed", 0, Notify::Nobody)
        .await
        .expect("PostgreSQL");
    assert_eq!(
        api.db.requeue_receipt(&job_id).await.expect("claim"),
        Some(1)
    );
    let proceed = api.db.begin_processing(&receipt.processing(0)).await;
    assert!(proceed.expect("PostgreSQL"), "not cancelled");
    let failed = api
        .db
        .mark_job_failed(&job_id, "the run-0 job failed", 0, Notify::Nobody)
        .await
        .expect("PostgreSQL");
    assert!(failed.is_some(), "recorded on the run that ran");
    assert_eq!(api.receipt_status(&job_id).await.0, "failed");
}

/// Move waiting job `job_id` to BullMQ's failed set with `reason`, as its
/// failing script leaves it, and nothing else.
async fn fail_in_redis(api: &TestApp, job_id: &str, reason: &str) {
    let prefix = format!("{}:{}", api.settings.queue.prefix, api.settings.queue.name);
    let now = chrono::Utc::now().timestamp_millis();
    let _: () = redis::pipe()
        .atomic()
        .cmd("LREM")
        .arg(format!("{prefix}:wait"))
        .arg(0)
        .arg(job_id)
        .cmd("ZADD")
        .arg(format!("{prefix}:failed"))
        .arg(now)
        .arg(job_id)
        .cmd("HSET")
        .arg(format!("{prefix}:{job_id}"))
        .arg("failedReason")
        .arg(reason)
        .arg("finishedOn")
        .arg(now)
        .arg("atm")
        .arg(1)
        .query_async(&mut api.redis().await)
        .await
        .expect("the job failed in Redis");
}

/// A cancel that came as the last attempt failed marked the receipt
/// cancelled (answered 200, announced), and the failed event could not
/// make the job's reason in Redis say so (Redis down, or its process
/// died): the job still reads cancelled, as its receipt does.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_whose_receipt_a_cancel_ended_reads_cancelled() {
    let api = TestApp::spawn(Role::Api, isolated_settings()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    let cancelled = api.db.cancel_receipt(&job_id, Notify::Nobody).await;
    assert!(cancelled.expect("PostgreSQL").is_some());
    fail_in_redis(&api, &job_id, "the image could not be decoded").await;
    let job = api.job_view(&job_id).await;
    assert_eq!(job.state, JobState::Cancelled, "{job:?}");
    assert_eq!(
        job.failed_reason.as_deref(),
        Some(receipt_ocr::job::CANCELLED_REASON)
    );
}

/// The failed event's look for a cancel that came after the worker's own:
/// a failed job with a standing cancel request gets our reason (in one
/// step); one a retry has put back (out of the failed set), or one with no
/// request, keeps its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_is_made_a_cancel_only_while_failed_with_a_request_standing() {
    let api = TestApp::spawn(Role::Api, isolated_settings()).await;
    let queue = queue_for(&api.settings).await;
    let waiting = api.upload_ok(corner_market_png()).await;
    api.request_cancel_only(&waiting).await;
    assert!(!queue.fail_as_cancelled(&waiting).await.expect("Redis"));

    let failed = api.upload_ok(corner_market_png()).await;
    fail_in_redis(&api, &failed, "the OCR worker crashed").await;
    assert!(!queue.fail_as_cancelled(&failed).await.expect("Redis"));
    api.request_cancel_only(&failed).await;
    assert!(queue.fail_as_cancelled(&failed).await.expect("Redis"));
    let hash = api.job_hash(&failed).await;
    let reason = hash.get("failedReason").map(String::as_str);
    assert_eq!(reason, Some(receipt_ocr::job::CANCELLED_REASON));
    assert_eq!(api.job_hash(&waiting).await.get("failedReason"), None);
}
