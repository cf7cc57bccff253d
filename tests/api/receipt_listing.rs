//! Listing receipts: newest first, pages that stay put while uploads
//! arrive, each filter, and a 400 that names each bad parameter.

use diesel_async::RunQueryDsl;
use receipt_ocr::jobs::ReceiptPage;
use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};
use crate::support::receipt_image::corner_market_png;

impl TestApp {
    /// `GET /api/receipts?{query}` with its status and JSON body.
    async fn receipts(&self, query: &str) -> (u16, Value) {
        let url = format!("{}/api/receipts?{query}", self.address);
        let response = self.http.get(url).send().await.expect("listing request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    async fn receipt_page(&self, query: &str) -> ReceiptPage {
        let (status, body) = self.receipts(query).await;
        assert_eq!(status, 200, "GET /api/receipts?{query}: {body}");
        serde_json::from_value(body).expect("a ReceiptPage")
    }

    /// Upload `n` receipts; their job ids, oldest first.
    async fn upload_many(&self, n: usize) -> Vec<String> {
        let mut job_ids = Vec::new();
        for _ in 0..n {
            job_ids.push(self.upload_ok(corner_market_png()).await);
        }
        job_ids
    }

    /// Set columns of the receipt of `job_id` directly, as OCR would.
    async fn set_row(&self, job_id: &str, assignments: &str) {
        let mut conn = self.db.conn().await.expect("a connection");
        diesel::sql_query(format!(
            "UPDATE receipts SET {assignments} WHERE job_id = $1"
        ))
        .bind::<diesel::sql_types::Text, _>(job_id)
        .execute(&mut conn)
        .await
        .expect("the update");
    }
}

fn job_ids(page: &ReceiptPage) -> Vec<String> {
    page.receipts.iter().map(|r| r.job_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_stay_stable_while_new_uploads_arrive() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let mut first_five = app.upload_many(5).await;
    first_five.reverse();

    let page = app.receipt_page("limit=2").await;
    assert_eq!(job_ids(&page), first_five[..2]);
    assert!(page.receipts.iter().all(|r| r.status == "queued"));
    assert!(page.receipts[0].created_at >= page.receipts[1].created_at);
    let newer = app.upload_many(3).await;

    let cursor = page.next_cursor.expect("a next page");
    let second = app.receipt_page(&format!("limit=2&cursor={cursor}")).await;
    assert_eq!(job_ids(&second), first_five[2..4]);
    let cursor = second.next_cursor.expect("a third page");
    let last = app.receipt_page(&format!("limit=2&cursor={cursor}")).await;
    assert_eq!(job_ids(&last), first_five[4..]);
    assert_eq!(last.next_cursor, None);

    let top = app.receipt_page("limit=3").await;
    assert_eq!(job_ids(&top), newer.into_iter().rev().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_listing_filter_selects_its_receipts() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let ids = app.upload_many(4).await;
    app.set_row(&ids[0], "store_name = 'Corner Market', purchase_date = '2026-03-10', created_at = '2026-03-10T12:00:00Z'").await;
    app.set_row(
        &ids[1],
        "store_name = 'The Supermarket', purchase_date = '2026-05-01', status = 'completed'",
    )
    .await;
    app.set_row(
        &ids[2],
        "store_name = 'Bakery 50%', status = 'failed', failed_reason = 'unreadable'",
    )
    .await;

    let only = |page: ReceiptPage| {
        let mut found = job_ids(&page);
        found.sort();
        found
    };
    let sorted = |picked: &[&String]| {
        let mut ids: Vec<String> = picked.iter().map(|s| s.to_string()).collect();
        ids.sort();
        ids
    };
    let by_status = app.receipt_page("status=failed").await;
    assert_eq!(only(by_status.clone()), sorted(&[&ids[2]]));
    assert_eq!(
        by_status.receipts[0].failed_reason.as_deref(),
        Some("unreadable")
    );
    assert_eq!(
        only(app.receipt_page("status=queued").await),
        sorted(&[&ids[0], &ids[3]])
    );
    assert_eq!(
        only(app.receipt_page("q=MARKET").await),
        sorted(&[&ids[0], &ids[1]])
    );
    assert_eq!(only(app.receipt_page("q=50%25").await), sorted(&[&ids[2]]));
    assert_eq!(
        only(app.receipt_page("q=market&status=completed").await),
        sorted(&[&ids[1]])
    );
    assert_eq!(
        only(app.receipt_page("to=2026-03-10").await),
        sorted(&[&ids[0]])
    );
    assert_eq!(
        only(app.receipt_page("from=2026-03-11T00:00:00Z").await),
        sorted(&[&ids[1], &ids[2], &ids[3]])
    );
    assert_eq!(
        only(
            app.receipt_page("purchasedFrom=2026-04-01&purchasedTo=2026-05-01")
                .await
        ),
        sorted(&[&ids[1]])
    );

    let query = r#"{ receipts(q: "market", purchasedTo: "2026-03-31") { receipts { jobId storeName createdAt updatedAt } nextCursor } }"#;
    let graphql = app.graphql(query).await;
    let listed = &graphql["data"]["receipts"]["receipts"];
    assert_eq!(listed[0]["jobId"], ids[0].as_str(), "{graphql}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{graphql}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_listing_parameters_get_400_naming_the_parameter() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    // A cursor of this API's form whose time is past the year 9999.
    let far_cursor = format!(
        "cursor={}",
        hex::encode(format!("{}:{}", i64::MAX / 4, uuid::Uuid::new_v4()))
    );
    for (query, parameter) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        // Dates chrono reads but PostgreSQL (or the next day) cannot hold:
        // once a dropped connection and a 503, now a 400 like the others.
        ("to=%2B262142-12-31", "to"),
        ("from=-200000-01-01", "from"),
        ("purchasedTo=12345-01-01", "purchasedTo"),
        ("q=a%00b", "q"),
        (far_cursor.as_str(), "cursor"),
        ("purchasedFrom=2026-13-01", "purchasedFrom"),
        (
            "purchasedFrom=2026-05-02&purchasedTo=2026-05-01",
            "purchasedTo",
        ),
    ] {
        let (status, body) = app.receipts(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "bad_request", "{query}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("`{parameter}`")),
            "{query}: {message}"
        );
    }
    // Past 32 bits too, as REST answers `limit=5000000000`.
    for limit in ["500", "5000000000"] {
        let query = format!("{{ receipts(limit: {limit}) {{ nextCursor }} }}");
        let graphql = app.graphql(&query).await;
        assert_eq!(
            graphql["errors"][0]["extensions"]["code"], "bad_request",
            "{graphql}"
        );
    }
}
