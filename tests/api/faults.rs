//! The fault suite: the service under load while its parts are killed,
//! stopped and restarted. Each test reports jobs accepted / completed /
//! failed / lost and receipt rows stuck, and asserts lost = 0 and
//! stuck = 0. `FAULT_JOBS` sets the load (8 by default; `bench/faults.sh`
//! runs the suite with more and prints the reports).
//!
//! SIGTERM during long reads is in `shutdown.rs`; image bombs refused at
//! upload are in `bad_input.rs`, and here the ones that reach a worker
//! anyway (a Node producer's job) fail at once beside a normal read.

use std::fs::File;
use std::time::{Duration, Instant};

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::jobs::JobStatusView;
use receipt_ocr::startup::Role;
use receipt_ocr::store::Db;

use serde_json::Value;

use crate::helpers::{PATIENCE, Process, TestApp, free_port, isolated_settings, wait_for};
use crate::private_servers::{PrivatePostgres, PrivateRedis};
use crate::support::receipt_image::corner_market_png;

fn load() -> usize {
    std::env::var("FAULT_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8)
}

/// What became of the accepted jobs, from the receipt rows.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    accepted: usize,
    completed: usize,
    failed: usize,
    /// Accepted, but no row at all.
    lost: usize,
    /// Rows still `queued` or `processing` when the test gave up waiting.
    stuck: usize,
}

impl Tally {
    /// Wait (up to the test patience) until every accepted job's row is
    /// final, then count.
    async fn settle(db: &Db, job_ids: &[String]) -> Tally {
        let started = Instant::now();
        loop {
            let tally = Self::count(db, job_ids).await;
            if tally.stuck == 0 || started.elapsed() > PATIENCE {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn count(db: &Db, job_ids: &[String]) -> Tally {
        let mut tally = Tally {
            accepted: job_ids.len(),
            ..Tally::default()
        };
        for job_id in job_ids {
            // PostgreSQL may still be coming back: ask again.
            let stored = wait_for(|| async { db.receipt_by_job_id(job_id).await.ok() }).await;
            match stored.map(|s| s.row.status) {
                None => tally.lost += 1,
                Some(status) if status == "completed" => tally.completed += 1,
                Some(status) if status == "failed" => tally.failed += 1,
                Some(_) => tally.stuck += 1,
            }
        }
        tally
    }

    fn report(&self, fault: &str, recovery: Option<Duration>) {
        let recovery = recovery.map_or(String::new(), |d| format!(", recovered in {d:.1?}"));
        eprintln!(
            "fault {fault}: accepted {} completed {} failed {} lost {} stuck {}{recovery}",
            self.accepted, self.completed, self.failed, self.lost, self.stuck
        );
    }
}

async fn upload_many(app: &TestApp, count: usize) -> Vec<String> {
    let mut job_ids = Vec::with_capacity(count);
    for _ in 0..count {
        job_ids.push(app.upload_ok(corner_market_png()).await);
    }
    job_ids
}

/// Settings for a worker process: its own port, short locks so that a
/// killed worker's jobs come back within seconds.
fn worker_settings(base: &Settings) -> Settings {
    let mut settings = base.clone();
    settings.http.port = free_port();
    settings.queue.lock = Duration::from_millis(2000);
    settings
}

/// Wait until one of `job_ids` is being read, and return it. Any of them,
/// not the first: on a loaded machine the first can be read to the end
/// while the others are still being uploaded, and then never looks active.
async fn wait_until_one_is_active(app: &TestApp, job_ids: &[String]) -> String {
    wait_for(|| async {
        for job_id in job_ids {
            if app.job_view(job_id).await.state == JobState::Active {
                return Some(job_id.clone());
            }
        }
        None
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_processes_killed_under_load_lose_no_job() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_ids = upload_many(&api, load()).await;

    // Two workers that each take a job and hold its read for a minute,
    // then one that reads everything; the two are killed in turn and the
    // jobs they held complete in the third.
    let hold = [("OCR_INJECT_HOLD_MS", "60000")];
    let mut victims = Vec::new();
    for name in ["victim-0", "victim-1"] {
        let mut own = named(&settings, name);
        own.ocr.concurrency = 1.try_into().expect("non-zero");
        let process = Process::start_with("worker", &own, &hold);
        let held = wait_for(|| async {
            for job_id in &job_ids {
                let hash = api.job_hash(job_id).await;
                if hash.get("pb").map(String::as_str) == Some(name) {
                    return Some(job_id.clone());
                }
            }
            None
        })
        .await;
        victims.push((process, held));
    }
    let _survivor = Process::start("worker", &named(&settings, "survivor"));
    let mut recoveries = Vec::new();
    for (victim, held) in victims {
        victim.crash();
        let killed = Instant::now();
        let job = wait_final(&api, &held).await;
        recoveries.push(killed.elapsed());
        assert_eq!(job.state, JobState::Completed, "{job:?}");
    }

    let tally = Tally::settle(&api.db, &job_ids).await;
    let slowest = recoveries.iter().max().copied();
    tally.report("SIGKILL of a worker process (twice)", slowest);
    assert_eq!(
        (tally.lost, tally.stuck, tally.failed),
        (0, 0, 0),
        "{tally:?}"
    );
}

/// Wait for a job to be completed or failed, asking again while the
/// service answers 503 (Redis coming back).
async fn wait_final(app: &TestApp, job_id: &str) -> JobStatusView {
    wait_for(|| async {
        let (status, body) = app.job(job_id).await;
        let view: JobStatusView = serde_json::from_value(body).ok()?;
        (status == 200 && view.state.is_final()).then_some(view)
    })
    .await
}

/// A worker process's settings under its own name (BullMQ's `pb`).
fn named(base: &Settings, name: &str) -> Settings {
    let mut settings = worker_settings(base);
    settings.queue.worker_name = Some(name.to_string());
    settings
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_stalled_twice_fails_for_good_logged_and_recorded() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    let log_path = std::env::temp_dir().join(format!("stall-{}.log", settings.queue.name));
    stall_twice(&api, &settings, &job_id).await;
    // The third worker's stalled-jobs check finds the job stalled a second
    // time (BullMQ allows one): the job fails, and this worker logs the
    // stall its check found.
    let log = File::create(&log_path).expect("a log file");
    let reconcile = [("RECONCILE_INTERVAL_MS", "200")];
    let third = worker_settings(&settings);
    let _third = Process::start_logged("worker", &third, &reconcile, log);
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    let reason = job.failed_reason.clone().unwrap_or_default();
    assert!(reason.contains("stalled"), "{reason}");
    let row = api.wait_for_row(&job_id, "failed").await;
    assert!(row.failed_reason.unwrap_or_default().contains("stalled"));
    let logged = wait_for(|| async {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.contains("job stalled").then_some(text)
    })
    .await;
    assert!(logged.contains(&job_id), "{logged}");
    // Counted where it was logged.
    let health = format!("http://127.0.0.1:{}/health/ready", third.http.port);
    let ready = api.get_json(&health).await;
    // The second stall, and only it: the first was found and counted by
    // the check of the second worker, the only one alive then.
    let stalled = ready["stalledJobs"].as_u64().unwrap_or(0);
    assert_eq!(stalled, 1, "{ready}");
    let metrics = api
        .get_text(&format!("http://127.0.0.1:{}/metrics", third.http.port))
        .await;
    let line = format!("receipt_ocr_jobs_stalled_total {stalled}");
    assert!(metrics.contains(&line), "{line} in {metrics}");
    let _ = std::fs::remove_file(&log_path);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_killed_and_restarted_with_its_append_only_file_loses_no_job() {
    let mut redis = PrivateRedis::persistent().await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = redis.url();
    let app = TestApp::spawn(Role::Serve, settings).await;
    let job_ids = upload_many(&app, load()).await;
    wait_until_one_is_active(&app, &job_ids).await;
    // Followed live across the restart: the events reader goes on.
    let last = job_ids.last().expect("jobs");
    let (status, mut followed) = crate::events::follow_sse(&app, last, None).await;
    assert_eq!(status, 200);

    redis.kill();
    let killed = Instant::now();
    redis.restart().await;
    let job = wait_final(&app, last).await;
    let recovery = killed.elapsed();
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let updates = crate::events::rest(&mut followed).await;
    let seen_last = updates.last().map(|update| update.state.as_str());
    assert_eq!(seen_last, Some("completed"), "{updates:?}");

    let tally = Tally::settle(&app.db, &job_ids).await;
    tally.report("Redis SIGKILL and restart (AOF)", Some(recovery));
    assert_eq!(
        (tally.lost, tally.stuck, tally.failed),
        (0, 0, 0),
        "{tally:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_while_jobs_run_loses_nothing_and_leaves_no_row_stuck() {
    let postgres = PrivatePostgres::start().await;
    let mut settings = isolated_settings();
    settings.database.url = postgres.url("receipts");
    // One attempt: a read that cannot be saved fails the job for good, and
    // that failure must still reach the row.
    settings.queue.attempts = 1.try_into().expect("non-zero");
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let log_path = std::env::temp_dir().join(format!("pg-{}.log", settings.queue.name));
    let log = File::create(&log_path).expect("a log file");
    let hold = [("OCR_INJECT_HOLD_MS", "3000")];
    // One OCR worker: only one job is being read when it stops.
    let mut own = worker_settings(&settings);
    own.ocr.concurrency = 1.try_into().expect("non-zero");
    let _worker = Process::start_logged("worker", &own, &hold, log);
    let job_ids = upload_many(&api, load()).await;
    let held = wait_until_one_is_active(&api, &job_ids).await;

    // Down while that read is held: its save fails, and so does
    // recording the failure, until PostgreSQL is back.
    postgres.stop();
    let stopped = Instant::now();
    wait_for(|| async {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.contains("could not mark the receipt failed")
            .then_some(())
    })
    .await;
    postgres.start_again();

    let tally = Tally::settle(&api.db, &job_ids).await;
    tally.report("PostgreSQL stopped and started", Some(stopped.elapsed()));
    assert_eq!((tally.lost, tally.stuck), (0, 0), "{tally:?}");
    let held = api.db.receipt_by_job_id(&held).await.unwrap().unwrap();
    assert_eq!(
        held.row.status, "failed",
        "the read that could not be saved"
    );
    let _ = std::fs::remove_file(&log_path);
}

/// A 151 KB PNG of 30000 × 30000 one-bit pixels (900 MP decoded).
fn png_bomb() -> Vec<u8> {
    use std::io::Write;
    let side = 30_000u32;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().expect("a PNG header");
    let mut stream = writer.stream_writer().expect("a PNG stream");
    let row = vec![0u8; side.div_ceil(8) as usize];
    for _ in 0..side {
        stream.write_all(&row).expect("a row");
    }
    stream.finish().expect("the PNG's end");
    drop(writer);
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn image_bombs_from_a_producer_fail_at_once_beside_a_normal_read() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let worker = Process::start("worker", &worker_settings(&settings));
    let innocent = api.upload_ok(corner_market_png()).await;

    // A Node producer skips our upload checks: it writes the files to the
    // blob store and adds the jobs itself.
    let bombs = [
        (
            "jpg",
            crate::support::receipt_image::jpeg_claiming(65500, 65500),
        ),
        ("png", png_bomb()),
    ];
    let mut bomb_jobs = Vec::new();
    for (extension, bytes) in bombs {
        let receipt_id = uuid::Uuid::new_v4().to_string();
        let blob_key = format!("receipts/{receipt_id}.{extension}");
        let path = std::path::Path::new(&settings.blobs.location).join(&blob_key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let added =
            crate::node_interop::node(&api, &["add", &settings.queue.name, &receipt_id, &blob_key]);
        bomb_jobs.push(added["jobId"].as_str().expect("a job id").to_string());
    }

    for job_id in &bomb_jobs {
        let job = api.wait_for_final(job_id).await;
        assert_eq!(job.state, JobState::Failed, "{job:?}");
        assert_eq!(job.attempts_made, 1, "failed for good at once: {job:?}");
        let reason = job.failed_reason.unwrap_or_default();
        assert!(reason.contains("MAX_IMAGE_PIXELS"), "{reason}");
    }
    let job = api.wait_for_final(&innocent).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    eprintln!(
        "image bombs: worker peak RSS {} MiB (65500x65500 JPEG header, 30000x30000 1-bit PNG)",
        worker.peak_rss_kib() / 1024
    );
}

/// The last attempt of a job failed, and its worker process dies before
/// BullMQ is told: nothing may say the receipt failed, for the job runs
/// again once it stalls, here to completion (its image is back by then).
/// The worker used to mark the receipt failed, and queue its
/// `receipt.failed` webhook, before telling BullMQ: the receipt then
/// completed as well, announced twice with two different ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_dies_before_bullmq_fails_its_job_has_announced_nothing() {
    let mut settings = isolated_settings();
    settings.webhooks.allow_private = true;
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let part = reqwest::multipart::Part::bytes(corner_market_png()).file_name("r.png");
    let form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("callbackUrl", "http://127.0.0.1:9/hook");
    let accepted: Value = api.upload_form(form).await.json().await.unwrap();
    let job_id = accepted["jobId"].as_str().expect("a job id").to_string();
    // Its image is away while the first worker reads it: a permanent failure.
    let (blob, image) = api.remove_the_image();

    let hold = [("OCR_INJECT_FINAL_FAILURE_HOLD_MS", "600000")];
    let (first, log) = Process::start_watched("worker", &worker_settings(&settings), &hold);
    log.wait_for_line("holding a final failure").await;
    let stored = api.db.receipt_by_job_id(&job_id).await.unwrap();
    let status = stored.expect("its row").row.status;
    assert_ne!(status, "failed", "recorded once BullMQ has failed the job");
    assert_eq!(deliveries(&api, &job_id).await, Vec::<String>::new());

    std::fs::write(&blob, image).unwrap();
    first.crash();
    let _second = Process::start("worker", &worker_settings(&settings));
    let job = api.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    assert_eq!(deliveries(&api, &job_id).await, ["receipt.completed"]);
}

/// The events of a job's webhook deliveries, oldest first.
async fn deliveries(api: &TestApp, job_id: &str) -> Vec<String> {
    let url = format!("{}/api/job/{job_id}/deliveries", api.address);
    let body = api.get_json(&url).await;
    let deliveries = body["deliveries"].as_array().expect("deliveries").iter();
    let events = deliveries.map(|delivery| delivery["event"].as_str().unwrap_or_default());
    events.map(String::from).collect()
}

/// With KEEP_FAILED_COUNT=0 BullMQ removes a job as it fails it, so Redis
/// cannot say it failed: the worker, which remembers the jobs it failed
/// for good, records the failure on the receipt all the same, with its
/// own reason (not the reconciler's "disappeared", much later).
#[tokio::test(flavor = "multi_thread")]
async fn a_job_removed_as_it_fails_has_its_failure_recorded() {
    let mut settings = isolated_settings();
    settings.retention.failed_count = 0;
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    api.remove_the_image();
    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let row = api.wait_for_row(&job_id, "failed").await;
    let reason = row.failed_reason.unwrap_or_default();
    assert!(reason.contains("missing"), "{reason}");
    // Live subscribers are told, once the row says so.
    let prefix = format!("{}:{}", api.settings.queue.prefix, api.settings.queue.name);
    let told = ["event", "receipt-failed", "jobId", job_id.as_str()];
    wait_for(|| async {
        let events: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(format!("{prefix}:events"))
            .arg("-")
            .arg("+")
            .query_async(&mut api.redis().await)
            .await
            .ok()?;
        events
            .iter()
            .any(|(_, fields)| fields == &told)
            .then_some(())
    })
    .await;
    assert!(
        api.job_hash(&job_id).await.is_empty(),
        "removed as it failed"
    );
}

/// Two workers in turn take `job_id` and are killed while reading it
/// (each holds its first read for a minute).
async fn stall_twice(api: &TestApp, settings: &Settings, job_id: &str) {
    let hold = [("OCR_INJECT_HOLD_MS", "60000")];
    for attempt in 1..=2u32 {
        let first = Process::start_with("worker", &worker_settings(settings), &hold);
        wait_for(|| async {
            let hash = api.job_hash(job_id).await;
            let started = hash.get("ats").and_then(|a| a.parse::<u32>().ok());
            (started == Some(attempt) && api.job_view(job_id).await.state == JobState::Active)
                .then_some(())
        })
        .await;
        first.crash();
    }
}

/// With KEEP_FAILED_COUNT=0 a job stalled too often is failed by the
/// worker that next fetches it (it never reads it) and removed at once:
/// its receipt, still `processing`, is marked failed all the same (it
/// used to stay so, and the reconciler added the job again, for ever).
#[tokio::test(flavor = "multi_thread")]
async fn a_job_stalled_twice_and_removed_as_it_fails_is_recorded() {
    let mut settings = isolated_settings();
    settings.retention.failed_count = 0;
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    stall_twice(&api, &settings, &job_id).await;
    let _third = Process::start("worker", &worker_settings(&settings));
    let row = api.wait_for_row(&job_id, "failed").await;
    let reason = row.failed_reason.unwrap_or_default();
    assert!(reason.contains("stalled"), "{reason}");
    assert!(
        api.job_hash(&job_id).await.is_empty(),
        "removed as it failed"
    );
}
