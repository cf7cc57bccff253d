//! The happy path: a generated receipt goes through upload, queue, OCR and
//! PostgreSQL, and reads the same over REST and GraphQL.

use receipt_ocr::startup::Role;
use serde_json::Value;

use receipt_ocr::job::{JobState, ReceiptResult};

use crate::helpers::{TestApp, isolated_settings};
use image::ImageFormat;

use crate::support::receipt_image::{
    CORNER_MARKET, HARBOR_CAFE, corner_market_png, encode, line_band, render,
};

fn assert_known_receipt(result: &Value) {
    assert_eq!(result["storeName"], CORNER_MARKET.store);
    assert_eq!(result["totalAmount"].as_f64(), Some(CORNER_MARKET.total));
    let items = result["items"].as_array().expect("items");
    assert_eq!(items.len(), CORNER_MARKET.items.len(), "items: {items:?}");
    for (item, (name, quantity, price)) in items.iter().zip(CORNER_MARKET.items) {
        assert_eq!(item["name"], *name);
        assert_eq!(item["quantity"].as_f64(), Some(*quantity));
        assert_eq!(item["price"].as_f64(), Some(*price));
    }
}

fn assert_known_result(result: &ReceiptResult) {
    assert_eq!(result.store_name.as_deref(), Some(CORNER_MARKET.store));
    assert_eq!(result.total_amount, Some(CORNER_MARKET.total));
    let read: Vec<_> = result
        .items
        .iter()
        .map(|i| (i.name.as_str(), i.quantity, i.price))
        .collect();
    assert_eq!(read, CORNER_MARKET.items);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_receipt_is_read_and_reported_over_rest_graphql_and_postgres() {
    let app = TestApp::serve().await;
    let response = app.upload_bytes(corner_market_png(), "receipt.png").await;
    assert_eq!(response.status(), 200);
    let accepted: Value = response.json().await.unwrap();
    let job_id = accepted["jobId"].as_str().unwrap().to_string();
    let receipt_id = accepted["receiptId"].as_str().unwrap().to_string();
    assert!(job_id.starts_with("ocr-"), "job id {job_id}");
    assert!(
        job_id.rsplit('-').next().unwrap().len() >= 12,
        "random part of {job_id}"
    );
    assert_eq!(accepted["status"], "processing");
    assert_eq!(
        accepted["message"],
        "File uploaded successfully. OCR processing started in background."
    );
    assert_eq!(accepted["receipt"]["id"], receipt_id.as_str());
    assert_eq!(accepted["receipt"]["storeName"], Value::Null);
    assert_eq!(accepted["receipt"]["totalAmount"], Value::Null);
    assert_eq!(accepted["receipt"]["items"], serde_json::json!([]));

    app.wait_for_final(&job_id).await;
    let (_, job) = app.job(&job_id).await;
    assert_eq!(job["state"], "completed", "job: {job}");
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["progress"], 100);
    assert_eq!(job["failedReason"], Value::Null);
    assert_eq!(job["result"]["receiptId"], receipt_id.as_str());
    assert_known_receipt(&job["result"]);
    assert_eq!(job["result"]["date"], "2024-03-14");

    let query = format!(
        r#"query {{ jobStatus(jobId: "{job_id}") {{ id state progress
             result {{ receiptId storeName totalAmount items {{ name quantity price }} }}
             failedReason }} }}"#
    );
    let graphql = app.graphql(&query).await;
    let status = &graphql["data"]["jobStatus"];
    assert_eq!(status["state"], "completed", "graphql: {graphql}");
    assert_eq!(status["progress"], 100);
    assert_eq!(status["result"]["receiptId"], receipt_id.as_str());
    assert_known_receipt(&status["result"]);

    let stored = app
        .db
        .receipt_by_job_id(&job_id)
        .await
        .unwrap()
        .expect("receipt row");
    assert_eq!(stored.row.status, "completed");
    assert_eq!(stored.row.id.to_string(), receipt_id);
    assert_eq!(stored.row.store_name.as_deref(), Some(CORNER_MARKET.store));
    assert_eq!(
        stored
            .row
            .total_amount
            .as_ref()
            .map(|d| d.to_string())
            .as_deref(),
        Some("17.47")
    );
    assert!(
        stored
            .row
            .raw_text
            .as_deref()
            .unwrap_or("")
            .contains("CORNER MARKET")
    );
    assert_eq!(stored.row.content_type, "image/png");
    assert_eq!(stored.items.len(), 3);
    assert_eq!(stored.items[2].line_total.to_string(), "6.99");

    let by_id = app
        .graphql(&format!(
            r#"query {{ receipt(id: "{receipt_id}") {{ storeName status items {{ name }} }} }}"#
        ))
        .await;
    assert_eq!(
        by_id["data"]["receipt"]["storeName"], CORNER_MARKET.store,
        "{by_id}"
    );
    assert_eq!(by_id["data"]["receipt"]["status"], "completed");
}

/// The number after the series named `series` in Prometheus text.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_jobs_by_state_and_completed_in_total() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corner_market_png()).await;
    app.wait_for_final(&job_id).await;
    let url = format!("{}/metrics", app.address);
    let text = app.get_text(&url).await;
    let queue = &app.settings.queue.name;
    let completed = format!("bullmq_job_count{{queue=\"{queue}\", state=\"completed\"}}");
    assert_eq!(metric(&text, &completed), Some(1.0), "{text}");
    let total = format!("bullmq_job_completed_total{{queue=\"{queue}\"}}");
    assert_eq!(metric(&text, &total), Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_trimmed_from_redis_is_still_answered_from_postgres() {
    let mut settings = isolated_settings();
    // Keep no completed job in Redis: BullMQ removes it as it completes.
    settings.retention.completed_count = 0;
    let app = TestApp::spawn(Role::Serve, settings).await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let job = app.wait_for_final(&job_id).await;
    assert!(
        app.job_hash(&job_id).await.is_empty(),
        "the job hash should be trimmed"
    );
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.progress, 100);
    assert_known_result(job.result.as_ref().expect("a result"));
}

#[tokio::test(flavor = "multi_thread")]
async fn confidence_is_the_same_from_the_job_the_receipt_and_after_redis_forgot_the_job() {
    let app = TestApp::serve().await;
    let accepted = app.upload_accepted(corner_market_png()).await;
    let from_queue = app.wait_for_final(&accepted.job_id).await;
    let confidence = from_queue.result.as_ref().and_then(|r| r.confidence);
    assert!(confidence.is_some(), "the job's result has a confidence");

    let receipt = app.receipt_view(&accepted.receipt_id.to_string()).await;
    assert_eq!(
        Some(receipt.read),
        from_queue.result.clone(),
        "GET /api/receipt"
    );

    app.forget_job(&accepted.job_id).await;
    let from_row = app.job_view(&accepted.job_id).await;
    assert_eq!(from_row.state, JobState::Completed);
    assert_eq!(
        from_row.result, from_queue.result,
        "the job answered from PostgreSQL"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subtotal_tax_payment_time_and_contact_are_read_with_their_boxes() {
    let app = TestApp::serve().await;
    let png = encode(&render(HARBOR_CAFE), ImageFormat::Png);
    let accepted = app.upload_accepted(png).await;
    let job = app.wait_for_final(&accepted.job_id).await;
    let result = job.result.expect("a completed job's result");
    assert_eq!(result.total_amount, Some(12.15), "{result:?}");
    assert_eq!(result.subtotal, Some(11.25), "{result:?}");
    assert_eq!(result.tax, Some(0.90), "{result:?}");
    assert_eq!(result.payment_method.as_deref(), Some("VISA"));
    assert_eq!(
        result.time.map(|t| t.to_string()).as_deref(),
        Some("14:35:00")
    );
    assert!(
        result
            .phone
            .as_deref()
            .is_some_and(|p| p.contains("555-0142")),
        "{result:?}"
    );
    assert!(
        result
            .address
            .as_deref()
            .is_some_and(|a| a.contains("Ocean")),
        "{result:?}"
    );
    assert!(!result.engines.is_empty(), "the engines are named");
    let confidence = result.confidence.expect("confidence");
    assert!(
        confidence.subtotal > 0.0 && confidence.tax > 0.0,
        "{confidence:?}"
    );

    let boxes = result.boxes.expect("field boxes");
    let total = boxes.total_amount.expect("the total's box");
    assert!(
        line_band(8).contains(&total.y),
        "total box {total:?} on line 8"
    );
    let subtotal = boxes.subtotal.expect("the subtotal's box");
    assert!(
        line_band(6).contains(&subtotal.y),
        "subtotal box {subtotal:?}"
    );
    let bagel = result
        .items
        .iter()
        .find(|i| i.name == "Bagel")
        .expect("Bagel");
    let bagel_box = bagel.bbox.expect("the item's box");
    assert!(
        line_band(5).contains(&bagel_box.y),
        "item box {bagel_box:?}"
    );

    let stored = app.receipt_view(&accepted.receipt_id.to_string()).await;
    assert_eq!(
        Some(stored.read),
        app.job_view(&accepted.job_id).await.result
    );
    let query = format!(
        r#"query {{ jobStatus(jobId: "{}") {{ result {{ subtotal tax tip paymentMethod time
             address phone engines boxes {{ totalAmount {{ x y width height }} }} }} }} }}"#,
        accepted.job_id
    );
    let graphql = app.graphql(&query).await;
    let read = &graphql["data"]["jobStatus"]["result"];
    assert_eq!(read["subtotal"], 11.25, "{graphql}");
    assert_eq!(read["paymentMethod"], "VISA", "{graphql}");
    assert_eq!(read["boxes"]["totalAmount"]["y"], total.y, "{graphql}");
}
