//! Webhooks: signed, retried with growing delays, recorded attempt by
//! attempt, durable across a restart, sent only to public http(s) targets
//! unless allowed, and never following a redirect.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use receipt_ocr::config::{OptionalSecret, Settings, WebhookUrls};
use receipt_ocr::job::{JobState, new_job_id};
use receipt_ocr::startup::Role;
use receipt_ocr::store::Notify;
use receipt_ocr::store::models::NewReceipt;
use receipt_ocr::webhooks::{WebhookSecret, WebhookUrl};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, wait_for};
use crate::private_servers::PrivateRedis;
use crate::receiver::{Answer, Receiver, SECRET, gaps};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png, corrupt_png};

/// Settings whose webhooks may reach the test's receiver on 127.0.0.1.
fn hook_settings(backoff_ms: u64) -> Settings {
    let mut settings = isolated_settings();
    settings.webhooks.allow_private = true;
    settings.webhooks.backoff = Duration::from_millis(backoff_ms);
    settings.webhooks.secret = OptionalSecret(Some(WebhookSecret::parse(SECRET).unwrap()));
    settings
}

fn receipt_form(image: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(image).file_name("receipt.png"))
}

/// Upload with `callbackUrl`; answer the job id.
async fn upload_with_callback(app: &TestApp, form: Form, callback: &str) -> String {
    let response = app
        .upload_form(form.text("callbackUrl", callback.to_string()))
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "upload refused: {body}");
    body["jobId"].as_str().expect("a job id").to_string()
}

async fn deliveries(app: &TestApp, job_id: &str) -> (u16, Value) {
    let url = format!("{}/api/job/{job_id}/deliveries", app.address);
    let response = app.http.get(url).send().await.expect("deliveries");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Wait until the job's only delivery is no longer `pending`.
async fn settled_delivery(app: &TestApp, job_id: &str) -> Value {
    wait_for(|| async {
        let (status, body) = deliveries(app, job_id).await;
        assert_eq!(status, 200, "{body}");
        let delivery = body["deliveries"].get(0)?.clone();
        (delivery["state"] != "pending").then_some(delivery)
    })
    .await
}

fn statuses(delivery: &Value) -> Vec<i64> {
    delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap_or(-1))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_webhook_is_retried_with_growing_delays_until_it_is_taken() {
    let receiver = Receiver::start(vec![Answer::Status(500), Answer::Status(500)]).await;
    let app = TestApp::spawn(Role::Serve, hook_settings(400)).await;
    let callback = format!("{}/hooks/receipts", receiver.base);
    let job_id = upload_with_callback(&app, receipt_form(corner_market_png()), &callback).await;

    let delivery = settled_delivery(&app, &job_id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert_eq!(delivery["event"], "receipt.completed");
    assert_eq!(statuses(&delivery), [500, 500, 200], "{delivery}");
    let requests = receiver.received();
    assert_eq!(requests.len(), 3, "one request per attempt");
    let gaps = gaps(&requests.iter().map(|r| r.at).collect::<Vec<_>>());
    assert!(
        gaps[0] >= Duration::from_millis(400) && gaps[1] >= Duration::from_millis(800),
        "backoff of 400 ms doubling: {gaps:?}"
    );
    assert!(gaps[1] > gaps[0], "delays grow: {gaps:?}");

    let now = chrono::Utc::now().timestamp();
    for request in &requests {
        assert_eq!(request.path, "/hooks/receipts");
        assert!(request.signed_with(SECRET), "bad signature: {request:?}");
        assert_eq!(
            request.header("webhook-id"),
            delivery["id"].as_str().unwrap()
        );
        let sent_at: i64 = request.header("webhook-timestamp").parse().unwrap();
        assert!((now - sent_at).abs() < 300, "timestamp {sent_at} vs {now}");
        assert_eq!(
            request.body, requests[0].body,
            "every attempt sends the same body"
        );
    }
    assert!(!requests[0].signed_with("whsec_b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk="));
    let body = requests[2].json();
    assert_eq!(body["type"], "receipt.completed", "{body}");
    assert_eq!(body["data"]["jobId"], job_id.as_str());
    assert_eq!(body["data"]["state"], "completed");
    assert_eq!(body["data"]["result"]["storeName"], CORNER_MARKET.store);
    assert_eq!(
        body["data"]["result"]["totalAmount"].as_f64(),
        Some(CORNER_MARKET.total)
    );
    assert_eq!(
        body["data"]["receiptId"],
        body["data"]["result"]["receiptId"]
    );
    assert!(body["data"]["failedReason"].is_null());
    assert!(
        body["timestamp"]
            .as_str()
            .is_some_and(|t| t.parse::<chrono::DateTime<chrono::Utc>>().is_ok())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_urls_hear_of_every_receipt_and_a_410_stops_the_delivery() {
    let receiver = Receiver::start(vec![Answer::Status(410)]).await;
    let mut settings = hook_settings(100);
    let target = WebhookUrl::parse(&format!("{}/all", receiver.base)).unwrap();
    settings.webhooks.urls = WebhookUrls(vec![target]);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let corrupt = corrupt_png(CORNER_MARKET.lines);
    // Also its own callbackUrl: the same target is sent to once.
    let same = format!("{}/all", receiver.base);
    let job_id = upload_with_callback(&app, receipt_form(corrupt), &same).await;

    let delivery = settled_delivery(&app, &job_id).await;
    let listed = deliveries(&app, &job_id).await.1;
    assert_eq!(
        listed["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(delivery["state"], "gone", "{delivery}");
    assert_eq!(statuses(&delivery), [410], "no attempt after a 410");
    let body = receiver.received()[0].json();
    assert_eq!(body["type"], "receipt.failed", "{body}");
    assert_eq!(body["data"]["state"], "failed");
    assert!(body["data"]["result"].is_null());
    let reason = body["data"]["failedReason"].as_str().unwrap_or_default();
    assert_eq!(
        Some(reason),
        app.job_view(&job_id).await.failed_reason.as_deref()
    );
    assert!(!reason.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_job_is_announced_and_its_event_can_be_sent_again() {
    let receiver = Receiver::start(Vec::new()).await;
    let app = TestApp::spawn(Role::Serve, hook_settings(100)).await;
    let form = receipt_form(corner_market_png()).text("delay", "60000");
    let job_id = upload_with_callback(&app, form, &format!("{}/hook", receiver.base)).await;
    let cancel = format!("{}/api/job/{job_id}", app.address);
    assert_eq!(app.http.delete(cancel).send().await.unwrap().status(), 200);

    let first = receiver.wait_for_requests(1).await;
    assert_eq!(first[0].json()["type"], "receipt.cancelled");
    assert_eq!(first[0].json()["data"]["state"], "cancelled");
    settled_delivery(&app, &job_id).await;
    let redeliver = format!("{}/api/job/{job_id}/deliveries/redeliver", app.address);
    let response = app.http.post(&redeliver).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let both = receiver.wait_for_requests(2).await;
    assert_eq!(both[1].header("webhook-id"), first[0].header("webhook-id"));
    assert_eq!(both[1].body, first[0].body);
    let delivery = wait_for(|| async {
        let delivery = deliveries(&app, &job_id).await.1["deliveries"][0].clone();
        (statuses(&delivery).len() == 2 && delivery["state"] == "delivered").then_some(delivery)
    })
    .await;
    assert_eq!(statuses(&delivery), [200, 200], "{delivery}");

    // A job that has no deliveries cannot be redelivered; an unknown one is 404.
    let quiet = app.upload_ok(corner_market_png()).await;
    app.wait_for_final(&quiet).await;
    let url = format!("{}/api/job/{quiet}/deliveries/redeliver", app.address);
    let response = app.http.post(url).send().await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "conflict", "{body}");
    assert_eq!(
        deliveries(&app, &quiet).await.1["deliveries"],
        serde_json::json!([])
    );
    assert_eq!(deliveries(&app, "ocr-1-unknown").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pending_delivery_is_sent_by_a_new_process_after_a_restart() {
    let receiver = Receiver::start(vec![Answer::Status(500)]).await;
    // A retry far enough off to stop the first worker before it comes.
    let settings = hook_settings(5_000);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let callback = format!("{}/hook", receiver.base);
    let job_id = upload_with_callback(&api, receipt_form(corner_market_png()), &callback).await;

    let mut first = settings.clone();
    first.queue.worker_name = Some("first-worker".into());
    first.http.port = free_port();
    let first = Process::start("worker", &first);
    receiver.wait_for_requests(1).await;
    wait_for(|| async {
        let delivery = deliveries(&api, &job_id).await.1["deliveries"][0].clone();
        (statuses(&delivery) == [500]).then_some(())
    })
    .await;
    first.crash();

    let mut second = settings.clone();
    second.queue.worker_name = Some("second-worker".into());
    second.http.port = free_port();
    let _second = Process::start("worker", &second);
    let delivery = settled_delivery(&api, &job_id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert_eq!(statuses(&delivery), [500, 200]);
    let requests = receiver.received();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    // The delivery's BullMQ job records which worker finished it.
    let key = format!(
        "{}:{}-webhooks:whk-{}",
        settings.queue.prefix,
        settings.queue.name,
        delivery["id"].as_str().unwrap()
    );
    let processed_by: Option<String> = redis::cmd("HGET")
        .arg(key)
        .arg("pb")
        .query_async(&mut api.redis().await)
        .await
        .unwrap();
    assert_eq!(processed_by.as_deref(), Some("second-worker"));
}

/// A receipt whose cancellation was committed with one delivery to
/// `callback`, by a process that then died before queuing it: the row and
/// the delivery exist, Redis has no job for it. Its job id and delivery.
async fn a_delivery_left_unqueued(api: &TestApp, callback: String) -> (String, uuid::Uuid) {
    let job_id = new_job_id();
    let receipt = NewReceipt::queued(
        uuid::Uuid::new_v4(),
        job_id.clone(),
        "receipts/gone.png".into(),
        "image/png".into(),
    )
    .with_callback(Some(callback));
    api.db.insert_receipt(&receipt).await.unwrap();
    let cancelled = api.db.cancel_receipt(&job_id, Notify::Targets(&[])).await;
    let deliveries = cancelled.unwrap().expect("cancelled").deliveries;
    assert_eq!(deliveries.len(), 1);
    (job_id, deliveries[0])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_committed_but_never_queued_is_queued_by_the_sweep() {
    let receiver = Receiver::start(Vec::new()).await;
    let settings = hook_settings(100);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let (job_id, _) = a_delivery_left_unqueued(&api, format!("{}/late", receiver.base)).await;
    let mut conn = api.db.conn().await.unwrap();
    diesel::sql_query("UPDATE webhook_deliveries SET created_at = created_at - interval '1 hour'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(receiver.received().is_empty());

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let request = receiver.wait_for_requests(1).await;
    assert_eq!(request[0].json()["type"], "receipt.cancelled");
    assert_eq!(request[0].json()["data"]["jobId"], job_id.as_str());
    let delivery = settled_delivery(&api, &job_id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_urls_that_are_not_public_http_urls_are_refused_at_upload() {
    let app = TestApp::serve().await;
    for callback in [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://10.1.2.3/hook",
        "http://[::ffff:192.168.0.1]/",
        "not a url",
        "ftp://hooks.example/x",
        "javascript:alert(1)",
    ] {
        let form = receipt_form(corner_market_png()).text("callbackUrl", callback);
        let response = app.upload_form(form).await;
        assert_eq!(response.status(), 400, "{callback}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_field", "{callback}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("callbackUrl"), "{callback}: {message}");
        // What a name resolves to on the server is not told.
        if callback.contains("localhost") {
            assert!(!message.contains("127.0.0.1"), "{message}");
        }
    }
    app.assert_nothing_left().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_receiver_is_not_followed() {
    let redirect = || Answer::Redirect("/elsewhere".into());
    let receiver = Receiver::start(vec![redirect(), redirect()]).await;
    let mut settings = hook_settings(100);
    settings.webhooks.attempts = 2.try_into().unwrap();
    let app = TestApp::spawn(Role::Serve, settings).await;
    let callback = format!("{}/hook", receiver.base);
    let job_id = upload_with_callback(&app, receipt_form(corner_market_png()), &callback).await;

    let delivery = settled_delivery(&app, &job_id).await;
    assert_eq!(delivery["state"], "failed", "{delivery}");
    assert_eq!(statuses(&delivery), [302, 302]);
    for attempt in delivery["attempts"].as_array().unwrap() {
        let error = attempt["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("/elsewhere") && error.contains("not followed"),
            "{error}"
        );
    }
    let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/hook", "/hook"], "the redirect was never followed");
    assert_eq!(app.job_view(&job_id).await.state, JobState::Completed);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_answer_is_read_no_further_than_64_kib() {
    let receiver = Receiver::start(vec![Answer::Endless]).await;
    let app = TestApp::spawn(Role::Serve, hook_settings(100)).await;
    let callback = format!("{}/hook", receiver.base);
    let job_id = upload_with_callback(&app, receipt_form(corner_market_png()), &callback).await;

    let delivery = settled_delivery(&app, &job_id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
    assert_eq!(statuses(&delivery), [200]);
    assert!(delivery["attempts"][0]["error"].is_null(), "{delivery}");
    // Reading it all would have pulled gigabytes before the 10 s timeout;
    // what the receiver got out is the 64 KiB read plus socket buffers.
    let sent = receiver.endless_bytes();
    assert!(sent < 32 << 20, "the receiver sent {sent} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_url_on_a_private_address_is_refused_where_it_connects() {
    let receiver = Receiver::start(Vec::new()).await;
    let port = receiver.base.rsplit(':').next().unwrap();
    let mut settings = isolated_settings();
    // Not checked at start-up or upload: a name can resolve elsewhere
    // later, so the sender checks the address it is about to dial.
    settings.webhooks.urls = WebhookUrls(vec![
        WebhookUrl::parse(&format!("http://localhost:{port}/by-name")).unwrap(),
        WebhookUrl::parse(&format!("http://127.0.0.1:{port}/by-address")).unwrap(),
    ]);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let all_settled = wait_for(|| async {
        let listed = deliveries(&app, &job_id).await.1["deliveries"].clone();
        let settled = listed.as_array()?.iter().all(|d| d["state"] != "pending");
        (listed.as_array()?.len() == 2 && settled).then_some(listed)
    })
    .await;
    for delivery in all_settled.as_array().unwrap() {
        assert_eq!(delivery["state"], "failed", "{delivery}");
        assert_eq!(
            statuses(delivery),
            [-1],
            "one attempt, no answer: {delivery}"
        );
        let error = delivery["attempts"][0]["error"]
            .as_str()
            .unwrap_or_default();
        assert!(
            error.contains("loopback") && error.contains("WEBHOOK_ALLOW_PRIVATE"),
            "{error}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_ignore_proxy_settings() {
    let receiver = Receiver::start(Vec::new()).await;
    let proxy = Receiver::start(Vec::new()).await;
    let mut settings = hook_settings(100);
    settings.http.port = free_port();
    let proxy_env = [
        ("HTTP_PROXY", proxy.base.as_str()),
        ("http_proxy", proxy.base.as_str()),
        ("ALL_PROXY", proxy.base.as_str()),
        ("NO_PROXY", ""),
        ("WEBHOOK_SECRET", SECRET),
    ];
    let _serve = Process::start_with("serve", &settings, &proxy_env);
    let http = reqwest::Client::new();
    let upload = format!("http://127.0.0.1:{}/api/upload", settings.http.port);
    // Retried until the process answers.
    let job_id = wait_for(|| async {
        let callback = format!("{}/direct", receiver.base);
        let form = receipt_form(corner_market_png()).text("callbackUrl", callback);
        let response = http.post(&upload).multipart(form).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        body["jobId"].as_str().map(String::from)
    })
    .await;
    let reached = || async {
        let reached = receiver.received().len() + proxy.received().len();
        (reached > 0).then_some(())
    };
    wait_for(reached).await;
    let through_proxy = proxy.received();
    assert!(through_proxy.is_empty(), "the proxy saw {through_proxy:?}");
    let request = receiver.received();
    assert_eq!(request[0].json()["data"]["jobId"], job_id.as_str());
    assert!(request[0].signed_with(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_deliveries_events_and_the_callback_field() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let text = app.get_text(&format!("{}/openapi.json", app.address)).await;
    let spec: Value = serde_json::from_str(&text).expect("JSON");
    let paths = &spec["paths"];
    for (path, method, statuses) in [
        (
            "/api/job/{job_id}/deliveries",
            "get",
            &["200", "401", "404", "503"][..],
        ),
        (
            "/api/job/{job_id}/deliveries/redeliver",
            "post",
            &["200", "401", "404", "409", "503"][..],
        ),
        (
            "/api/job/{job_id}/events",
            "get",
            &["200", "401", "404", "503"][..],
        ),
    ] {
        let responses = &paths[path][method]["responses"];
        for status in statuses {
            assert!(
                responses.get(status).is_some(),
                "{method} {path} {status}: {responses}"
            );
        }
    }
    let events =
        paths["/api/job/{job_id}/events"]["get"]["responses"]["200"]["content"].to_string();
    assert!(events.contains("text/event-stream"), "{events}");
    let upload = paths["/api/upload"]["post"].to_string();
    assert!(upload.contains("callbackUrl"), "{upload}");
}

/// A pending delivery whose job Redis lost (a failover, a flush) is queued
/// again once it has gone untouched for longer than any wait between its
/// attempts, and is sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_delivery_whose_job_redis_lost_is_queued_again_and_sent() {
    let receiver = Receiver::start(Vec::new()).await;
    let settings = hook_settings(100);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let (job_id, delivery) =
        a_delivery_left_unqueued(&api, format!("{}/lost", receiver.base)).await;
    // Queued an hour ago, then its job vanished from Redis: the row still
    // says pending, and nothing would send it.
    api.db.mark_deliveries_queued(&[delivery]).await.unwrap();
    let mut conn = api.db.conn().await.unwrap();
    diesel::sql_query("UPDATE webhook_deliveries SET updated_at = now() - interval '1 hour'")
        .execute(&mut conn)
        .await
        .unwrap();

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let request = receiver.wait_for_requests(1).await;
    assert_eq!(request[0].path, "/lost");
    assert_eq!(request[0].json()["data"]["jobId"], job_id.as_str());
    let delivery = settled_delivery(&api, &job_id).await;
    assert_eq!(delivery["state"], "delivered", "{delivery}");
}

/// A redelivery Redis cannot queue leaves its deliveries as they were, so
/// that the same request once Redis is back sends them.
#[tokio::test(flavor = "multi_thread")]
async fn a_redelivery_redis_refuses_leaves_the_delivery_as_it_was_for_the_next_request() {
    let mut redis = PrivateRedis::persistent().await;
    let receiver = Receiver::start(Vec::new()).await;
    let mut settings = hook_settings(100);
    settings.queue.redis_url = redis.url();
    let app = TestApp::spawn(Role::Serve, settings).await;
    let form = receipt_form(corner_market_png()).text("delay", "60000");
    let job_id = upload_with_callback(&app, form, &format!("{}/hook", receiver.base)).await;
    let cancel = format!("{}/api/job/{job_id}", app.address);
    assert_eq!(app.http.delete(cancel).send().await.unwrap().status(), 200);
    receiver.wait_for_requests(1).await;
    assert_eq!(settled_delivery(&app, &job_id).await["state"], "delivered");

    // Redis is down as the redelivery is queued: 503, and the delivery is
    // as it was (not left `pending` with no run to send it).
    redis.kill();
    let redeliver = format!("{}/api/job/{job_id}/deliveries/redeliver", app.address);
    let response = app.http.post(&redeliver).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let (status, listed) = deliveries(&app, &job_id).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deliveries"][0]["state"], "delivered", "{listed}");

    // So once Redis is back, asking again sends it again.
    redis.restart().await;
    wait_for(|| async {
        let response = app.http.post(&redeliver).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    let both = receiver.wait_for_requests(2).await;
    assert_eq!(both[1].body, both[0].body);
}

/// A delivery still being tried cannot be sent again beside its run: 409,
/// and nothing else is sent.
#[tokio::test(flavor = "multi_thread")]
async fn redelivering_a_delivery_still_pending_is_refused() {
    let receiver = Receiver::start(vec![Answer::Status(500)]).await;
    // The retry after the first 500 waits a minute: pending meanwhile.
    let app = TestApp::spawn(Role::Serve, hook_settings(60_000)).await;
    let form = receipt_form(corner_market_png());
    let job_id = upload_with_callback(&app, form, &format!("{}/hook", receiver.base)).await;
    receiver.wait_for_requests(1).await;
    let delivery = wait_for(|| async {
        let delivery = deliveries(&app, &job_id).await.1["deliveries"][0].clone();
        (statuses(&delivery) == [500]).then_some(delivery)
    })
    .await;
    assert_eq!(delivery["state"], "pending", "{delivery}");

    let redeliver = format!("{}/api/job/{job_id}/deliveries/redeliver", app.address);
    let response = app.http.post(&redeliver).send().await.unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("pending"),
        "{body}"
    );
    let delivery = deliveries(&app, &job_id).await.1["deliveries"][0].clone();
    assert_eq!(statuses(&delivery), [500], "{delivery}");
    assert_eq!(receiver.received().len(), 1);
}

/// Redelivering sends again the deliveries that are settled and leaves one
/// still pending to its run.
#[tokio::test(flavor = "multi_thread")]
async fn redelivering_skips_a_delivery_still_pending_and_sends_the_others() {
    let slow = Receiver::start(vec![Answer::Status(500)]).await;
    let taken = Receiver::start(Vec::new()).await;
    let mut settings = hook_settings(60_000);
    let everything = WebhookUrl::parse(&format!("{}/all", taken.base)).unwrap();
    settings.webhooks.urls = WebhookUrls(vec![everything]);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let form = receipt_form(corner_market_png());
    let job_id = upload_with_callback(&app, form, &format!("{}/hook", slow.base)).await;
    let by_url = || async {
        let listed = deliveries(&app, &job_id).await.1["deliveries"].clone();
        let find = |base: &str| {
            let found = listed.as_array().into_iter().flatten();
            found
                .clone()
                .find(|d| d["url"].as_str().is_some_and(|u| u.starts_with(base)))
                .cloned()
        };
        (find(&slow.base), find(&taken.base))
    };
    wait_for(|| async {
        match by_url().await {
            (Some(slow), Some(taken))
                if statuses(&slow) == [500] && taken["state"] == "delivered" =>
            {
                Some(())
            }
            _ => None,
        }
    })
    .await;

    let redeliver = format!("{}/api/job/{job_id}/deliveries/redeliver", app.address);
    let response = app.http.post(&redeliver).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let again = taken.wait_for_requests(2).await;
    assert_eq!(again[1].header("webhook-id"), again[0].header("webhook-id"));
    let (slow_delivery, _) = by_url().await;
    let slow_delivery = slow_delivery.expect("the callback's delivery");
    assert_eq!(slow_delivery["state"], "pending", "{slow_delivery}");
    assert_eq!(statuses(&slow_delivery), [500], "{slow_delivery}");
}

/// Redelivery requests at once reopen (and queue) a settled delivery once:
/// the others are refused as if they came while it was pending.
#[tokio::test(flavor = "multi_thread")]
async fn redelivery_requests_at_once_queue_the_delivery_once() {
    // The redelivery's attempt fails and its next is a minute away: it
    // stays pending while the requests come (one delivered at once would
    // let a later request reopen it, rightly).
    let receiver = Receiver::start(vec![Answer::Status(200), Answer::Status(500)]).await;
    let settings = hook_settings(60_000);
    let app = TestApp::spawn(Role::Serve, settings.clone()).await;
    let form = receipt_form(corner_market_png()).text("delay", "60000");
    let job_id = upload_with_callback(&app, form, &format!("{}/hook", receiver.base)).await;
    let cancel = format!("{}/api/job/{job_id}", app.address);
    assert_eq!(app.http.delete(cancel).send().await.unwrap().status(), 200);
    let delivery = settled_delivery(&app, &job_id).await;

    let redeliver = format!("{}/api/job/{job_id}/deliveries/redeliver", app.address);
    let requests = (0..8).map(|_| async {
        let response = app.http.post(&redeliver).send().await.unwrap();
        response.status().as_u16()
    });
    let mut answers = futures::future::join_all(requests).await;
    answers.sort_unstable();
    assert_eq!(answers, [200, 409, 409, 409, 409, 409, 409, 409]);

    // One run queued beside the first (`whk-<delivery>`): its own job hash.
    let runs = format!(
        "{}:{}-webhooks:whk-{}-*",
        settings.queue.prefix,
        settings.queue.name,
        delivery["id"].as_str().expect("a delivery id")
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&runs)
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    let is_job = |key: &&String| {
        key.rsplit(':')
            .next()
            .is_some_and(|l| l.starts_with("whk-"))
    };
    let runs: Vec<&String> = keys.iter().filter(is_job).collect();
    assert_eq!(runs.len(), 1, "{keys:?}");
    receiver.wait_for_requests(2).await;
}

/// A run of a delivery that is settled already (queued again by a sweep
/// whose first note failed, or left beside a redelivery) sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_a_delivery_already_settled_sends_nothing() {
    let receiver = Receiver::start(Vec::new()).await;
    let settings = hook_settings(100);
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let (_, delivery) = a_delivery_left_unqueued(&api, format!("{}/twice", receiver.base)).await;
    let mut conn = api.db.conn().await.unwrap();
    diesel::sql_query("UPDATE webhook_deliveries SET state = 'delivered'")
        .execute(&mut conn)
        .await
        .unwrap();
    let queue = crate::helpers::queue_for(&settings).await;
    queue.enqueue_delivery(delivery).await.expect("queued");

    let _worker = TestApp::spawn(Role::Worker, settings.clone()).await;
    let key = format!(
        "{}:{}-webhooks:whk-{delivery}",
        settings.queue.prefix, settings.queue.name
    );
    wait_for(|| async {
        let finished: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("finishedOn")
            .query_async(&mut api.redis().await)
            .await
            .ok()?;
        finished
    })
    .await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
}

/// The sweep's look for overdue deliveries, its pruning of settled ones
/// and the cascade from a removed receipt each have their index.
#[tokio::test(flavor = "multi_thread")]
async fn the_deliveries_table_has_the_sweeps_and_the_cascades_indexes() {
    #[derive(diesel::QueryableByName)]
    struct IndexDef {
        #[diesel(sql_type = diesel::sql_types::Text)]
        def: String,
    }
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let mut conn = app.db.conn().await.unwrap();
    let defs: Vec<IndexDef> = diesel::sql_query(
        "SELECT indexdef AS def FROM pg_indexes WHERE tablename = 'webhook_deliveries' \
         ORDER BY indexname",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let defs: Vec<String> = defs.into_iter().map(|d| d.def).collect();
    let has = |part: &str| defs.iter().any(|def| def.contains(part));
    assert!(
        has("webhook_deliveries_receipt_idx ON public.webhook_deliveries USING btree (receipt_id)"),
        "{defs:#?}"
    );
    assert!(
        has(
            "webhook_deliveries_overdue_idx ON public.webhook_deliveries USING btree (updated_at) WHERE ((state = 'pending'::text) AND (queued_at IS NOT NULL))"
        ),
        "{defs:#?}"
    );
    assert!(
        has(
            "webhook_deliveries_settled_idx ON public.webhook_deliveries USING btree (updated_at) WHERE (state <> 'pending'::text)"
        ),
        "{defs:#?}"
    );
}

/// With WEBHOOK_KEEP_DAYS, a worker removes settled deliveries older than
/// that, with their attempts; newer ones stay.
#[tokio::test(flavor = "multi_thread")]
async fn settled_deliveries_past_webhook_keep_days_are_removed() {
    let receiver = Receiver::start(Vec::new()).await;
    let mut settings = hook_settings(100);
    settings.webhooks.keep_days = 30;
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let callback = || format!("{}/kept", receiver.base);
    let (old_job, old) = a_delivery_left_unqueued(&api, callback()).await;
    let (recent_job, recent) = a_delivery_left_unqueued(&api, callback()).await;
    api.db.mark_deliveries_queued(&[old, recent]).await.unwrap();
    let mut conn = api.db.conn().await.unwrap();
    let settle = format!(
        "UPDATE webhook_deliveries SET state = 'delivered', \
         updated_at = CASE WHEN id = '{old}' THEN now() - interval '40 days' ELSE now() END"
    );
    diesel::sql_query(settle).execute(&mut conn).await.unwrap();

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    wait_for(|| async {
        let listed = deliveries(&api, &old_job).await.1["deliveries"].clone();
        (listed == serde_json::json!([])).then_some(())
    })
    .await;
    let kept = deliveries(&api, &recent_job).await.1["deliveries"].clone();
    assert_eq!(kept.as_array().map(Vec::len), Some(1), "{kept}");
    assert!(receiver.received().is_empty(), "settled: nothing sent");
}
