//! A Redis outage: uploads are refused with 503 (naming the URL and how to
//! check it) and leave nothing behind, readiness fails, and the service
//! recovers by itself when Redis is back. A Redis that stalls past the
//! upload's deadline and then answers leaves no job either. The tests run
//! their own Redis, so stopping it disturbs no other test.

use diesel_async::SimpleAsyncConnection;
use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, free_port, isolated_settings, wait_for};
use crate::private_servers::PrivateRedis;
use crate::support::receipt_image::{HARBOR_CAFE, corner_market_png, encode, render};
use image::ImageFormat;
use receipt_ocr::job::JobState;

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
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"], "not_ready", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");

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

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_refused_because_redis_stalled_leaves_no_job_when_redis_comes_back() {
    let redis = PrivateRedis::start(free_port()).await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = redis.url();
    // A worker runs too: a job that landed late would be read and fail.
    let app = TestApp::spawn(Role::Serve, settings).await;

    // One upload first, as a running service has had: Redis then knows
    // BullMQ's scripts, and the add is one command.
    let first = app.upload_ok(corner_market_png()).await;
    assert_eq!(app.wait_for_final(&first).await.state, JobState::Completed);

    // Redis holds every write (the add among them) until unpaused: the
    // upload's 5 s deadline passes first.
    let mut conn = hold_writes(&redis).await;
    let response = app.upload_bytes(corner_market_png(), "receipt.png").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "redis_unavailable", "{body}");
    release_writes(&mut conn).await;

    // Redis now runs the add it held (a second `added` event in the
    // stream); the upload's undo takes that job back.
    let prefix = format!("{}:{}", app.settings.queue.prefix, app.settings.queue.name);
    wait_for(|| async {
        let events: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(format!("{prefix}:events"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn.clone())
            .await
            .ok()?;
        let added = events.iter().filter(|(_, f)| f[..2] == ["event", "added"]);
        (added.count() == 2 && job_ids(&app).await? == [first.clone()]).then_some(())
    })
    .await;
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        1,
        "the first receipt's row only"
    );
    assert_eq!(app.blob_files().len(), 1, "the first receipt's file only");
}

/// With DEDUP_WINDOW on, the same bytes uploaded again while the first
/// upload is still being queued (Redis holding writes) are not handed the
/// first upload's job: that upload fails when its deadline passes and
/// takes its row and job back, and the job id would lead nowhere. Both
/// get 503, and nothing is left once Redis answers again.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_of_an_upload_still_being_queued_gets_no_job_that_vanishes() {
    let redis = PrivateRedis::start(free_port()).await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = redis.url();
    settings.inputs.dedup_window = std::time::Duration::from_secs(600);
    let app = TestApp::spawn(Role::Api, settings).await;
    // Redis learns BullMQ's scripts on a first upload (of other bytes).
    let other = encode(&render(HARBOR_CAFE), ImageFormat::Png);
    let first = app.upload_ok(other).await;

    let mut conn = hold_writes(&redis).await;
    let image = corner_market_png();
    let queuing = upload_in_background(&app, image.clone());
    // Its row is written before its job is added.
    wait_for(|| async { (app.db.count_receipts().await.ok()? == 2).then_some(()) }).await;

    let again = app.upload_bytes(image, "again.png").await;
    let status = again.status();
    let body: Value = again.json().await.unwrap();
    assert_eq!(status, 503, "not the queuing upload's job: {body}");
    assert_eq!(queuing.await.unwrap().status(), 503);
    release_writes(&mut conn).await;

    wait_for(|| async { (job_ids(&app).await? == [first.clone()]).then_some(()) }).await;
    assert_eq!(
        app.db.count_receipts().await.unwrap(),
        1,
        "the first row only"
    );
}

/// The other order: the add lands late, the duplicate sees the job in
/// Redis, and only then does the first upload, its deadline passed, undo
/// its row (held up here by a lock the test takes on the row). The
/// duplicate claims the row before it answers; the undo, which removes
/// only unclaimed rows, runs first here, so the duplicate gets a job of
/// its own rather than the one the undo takes back. Before the claim, the
/// duplicate was answered at once with a job id that then led nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_is_not_handed_a_job_its_first_upload_then_takes_back() {
    let redis = PrivateRedis::start(free_port()).await;
    let app = dedup_app(&redis).await;
    let row_lock = "BEGIN; SELECT 1 FROM receipts WHERE status = 'queued' FOR UPDATE";
    let late = an_upload_whose_add_lands_late(&app, &redis, row_lock).await;

    // The duplicate, answered at once or waiting for the row in turn.
    let again = upload_in_background(&app, late.image);
    wait_for(|| async {
        let claiming = waiting_on_a_lock(&app, r#"UPDATE "receipts" SET "shared"%"#).await;
        (again.is_finished() || claiming.is_some()).then_some(())
    })
    .await;
    let mut lock = late.lock;
    lock.batch_execute("COMMIT").await.expect("the row let go");

    assert_eq!(
        late.upload.await.unwrap().status(),
        503,
        "its add timed out"
    );
    let again: Value = again.await.unwrap().json().await.unwrap();
    let job_id = again["jobId"].as_str().expect("a job id");
    assert!(again.get("duplicate").is_none(), "{again}");
    assert_eq!(app.wait_for_final(job_id).await.state, JobState::Completed);
}

/// And when the duplicate claims the row before the undo comes (held up
/// here before it touches any row, by a trigger waiting for a lock the
/// test holds): the undo keeps the row, image and job, and the first
/// upload answers 200 with the job both hold, which completes.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_whose_late_add_a_duplicate_holds_keeps_it_and_answers_200() {
    let redis = PrivateRedis::start(free_port()).await;
    let app = dedup_app(&redis).await;
    let mut setup = app.db.conn().await.expect("a connection");
    setup
        .batch_execute(
            "CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_advisory_xact_lock(7); RETURN NULL; END $$; \
             CREATE TRIGGER undo_waits BEFORE DELETE ON receipts \
             FOR EACH STATEMENT EXECUTE FUNCTION wait_for_test();",
        )
        .await
        .expect("the trigger");
    let advisory_lock = "BEGIN; SELECT pg_advisory_xact_lock(7)";
    let late = an_upload_whose_add_lands_late(&app, &redis, advisory_lock).await;

    let again = upload_in_background(&app, late.image).await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true, "{again}");
    let mut lock = late.lock;
    lock.batch_execute("COMMIT").await.expect("the undo let go");

    let first = late.upload.await.unwrap();
    assert_eq!(
        first.status(),
        200,
        "its add landed, and a duplicate holds it"
    );
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["jobId"], again["jobId"], "{first} {again}");
    let job_id = again["jobId"].as_str().expect("a job id");
    assert_eq!(app.wait_for_final(job_id).await.state, JobState::Completed);
    assert_eq!(app.db.count_receipts().await.unwrap(), 2, "{first}");
}

/// An API and worker process on `redis` with DEDUP_WINDOW on, one upload
/// (of other bytes) already completed: Redis knows BullMQ's scripts.
async fn dedup_app(redis: &PrivateRedis) -> TestApp {
    let mut settings = isolated_settings();
    settings.queue.redis_url = redis.url();
    settings.inputs.dedup_window = std::time::Duration::from_secs(600);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let other = encode(&render(HARBOR_CAFE), ImageFormat::Png);
    let first = app.upload_ok(other).await;
    assert_eq!(app.wait_for_final(&first).await.state, JobState::Completed);
    app
}

/// An upload whose add Redis holds past its deadline, and whose undo then
/// waits for the test's `lock` (SQL run in a transaction the test keeps
/// open); then Redis runs the add. The upload's request, the test's
/// connection, and the image it sent.
struct LateAdd {
    upload: tokio::task::JoinHandle<reqwest::Response>,
    lock: diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>,
    image: Vec<u8>,
}

async fn an_upload_whose_add_lands_late(
    app: &TestApp,
    redis: &PrivateRedis,
    lock: &str,
) -> LateAdd {
    let mut conn = hold_writes(redis).await;
    let image = corner_market_png();
    let upload = upload_in_background(app, image.clone());
    wait_for(|| async { (app.db.count_receipts().await.ok()? == 2).then_some(()) }).await;
    let mut held = app.db.conn().await.expect("a connection");
    held.batch_execute(lock).await.expect("the lock taken");
    // The deadline passes; the undo waits for the lock.
    wait_for(|| waiting_on_a_lock(app, "DELETE%")).await;
    release_writes(&mut conn).await;
    wait_for(|| async { (job_ids(app).await?.len() == 2).then_some(()) }).await;
    LateAdd {
        upload,
        lock: held,
        image,
    }
}

/// The ids of the jobs Redis holds for the app's queue (their hashes, not
/// the `…:lock` a worker keeps on one); `None` while Redis fails.
async fn job_ids(app: &TestApp) -> Option<Vec<String>> {
    let prefix = format!("{}:{}:", app.settings.queue.prefix, app.settings.queue.name);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}ocr-*"))
        .query_async(&mut app.redis().await)
        .await
        .ok()?;
    let ids = keys.iter().filter_map(|key| key.strip_prefix(&prefix));
    Some(
        ids.filter(|id| !id.contains(':'))
            .map(String::from)
            .collect(),
    )
}

/// Upload `image` in a task of its own: the test goes on meanwhile.
fn upload_in_background(
    app: &TestApp,
    image: Vec<u8>,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let (http, url) = (app.http.clone(), format!("{}/api/upload", app.address));
    let part = reqwest::multipart::Part::bytes(image).file_name("receipt.png");
    let form = reqwest::multipart::Form::new().part("file", part);
    tokio::spawn(async move { http.post(url).multipart(form).send().await.unwrap() })
}

/// Some when a statement matching `pattern` (SQL `LIKE`) waits for a lock
/// in the app's database.
async fn waiting_on_a_lock(app: &TestApp, pattern: &str) -> Option<()> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.conn().await.ok()?;
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query LIKE $1",
    )
    .bind::<diesel::sql_types::Text, _>(pattern)
    .get_result(&mut conn)
    .await
    .ok()?;
    (count.n > 0).then_some(())
}

/// Make `redis` hold every write (a BullMQ add among them) until
/// [`release_writes`], reads still answered; the connection that asked.
async fn hold_writes(redis: &PrivateRedis) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pause = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(60_000)
        .arg("WRITE")
        .clone();
    pause.query_async::<()>(&mut conn).await.unwrap();
    conn
}

async fn release_writes(conn: &mut redis::aio::MultiplexedConnection) {
    let unpause = redis::cmd("CLIENT").arg("UNPAUSE").clone();
    unpause.query_async::<()>(conn).await.unwrap();
}

/// A Redis that lost its data (here one without persistence, restarted)
/// lost the global rate limit with it; the reconciler writes it again.
#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_is_written_again_after_redis_lost_it() {
    let mut redis = PrivateRedis::start(free_port()).await;
    let mut settings = isolated_settings();
    settings.queue.redis_url = redis.url();
    settings.queue.rate_limit.max = 7;
    settings.reconcile.interval = std::time::Duration::from_millis(200);
    let _app = TestApp::spawn(Role::Worker, settings.clone()).await;
    let queue = crate::helpers::queue_for(&settings).await;
    assert_eq!(queue.rate_limit().await.expect("read").max, 7);

    redis.restart().await;
    wait_for(|| async {
        let limit = queue.rate_limit().await.ok()?;
        (limit.max == 7).then_some(())
    })
    .await;
}
