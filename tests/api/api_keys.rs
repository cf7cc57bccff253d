//! Named API keys: a receipt and its job belong to the key that uploaded
//! them; another key is told they do not exist (REST and GraphQL, reads,
//! listing, cancel and retry); an admin key sees everything and alone may
//! pause the queue.

use receipt_ocr::config::ApiKeys;
use receipt_ocr::jobs::UploadAccepted;
use receipt_ocr::startup::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, isolated_settings, wait_for};
use crate::support::receipt_image::corner_market_png;

const SHOP: &str = "shop-secret";
const CAFE: &str = "cafe-secret";
const ADMIN: &str = "ops-secret";

async fn app_with_named_keys() -> TestApp {
    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::new(
        vec![
            ("shop".into(), SHOP.into(), false),
            ("cafe".into(), CAFE.into(), false),
            ("ops".into(), ADMIN.into(), true),
        ],
        true,
    );
    TestApp::spawn(Role::Api, settings).await
}

async fn upload_as(app: &TestApp, key: &str) -> UploadAccepted {
    upload_with_fields_as(app, key, &[]).await
}

/// Upload a receipt with `key`, with extra form fields.
async fn upload_with_fields_as(
    app: &TestApp,
    key: &str,
    fields: &[(&'static str, &'static str)],
) -> UploadAccepted {
    let part = reqwest::multipart::Part::bytes(corner_market_png()).file_name("r.png");
    let form = (fields.iter()).fold(
        reqwest::multipart::Form::new().part("file", part),
        |form, (name, value)| form.text(*name, *value),
    );
    let response = app
        .http
        .post(format!("{}/api/upload", app.address))
        .header("x-api-key", key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str, key: &str) -> (u16, Value) {
    let response = app
        .http
        .request(method, format!("{}{path}", app.address))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn graphql_as(app: &TestApp, key: &str, query: &str) -> Value {
    app.http
        .post(format!("{}/graphql", app.address))
        .header("x-api-key", key)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn listed_job_ids(page: &Value) -> Vec<String> {
    let rows = page["receipts"].as_array().cloned().unwrap_or_default();
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["jobId"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_cannot_see_or_touch_another_keys_receipt_over_rest() {
    let app = app_with_named_keys().await;
    let mine = upload_as(&app, SHOP).await;
    let theirs = upload_as(&app, CAFE).await;
    let get = reqwest::Method::GET;

    assert_eq!(
        call(
            &app,
            get.clone(),
            &format!("/api/job/{}", mine.job_id),
            SHOP
        )
        .await
        .0,
        200
    );
    let receipt = format!("/api/receipt/{}", mine.receipt_id);
    assert_eq!(call(&app, get.clone(), &receipt, SHOP).await.0, 200);
    for (method, path) in [
        (get.clone(), format!("/api/job/{}", theirs.job_id)),
        (get.clone(), format!("/api/receipt/{}", theirs.receipt_id)),
        (
            reqwest::Method::DELETE,
            format!("/api/job/{}", theirs.job_id),
        ),
        (
            reqwest::Method::POST,
            format!("/api/job/{}/retry", theirs.job_id),
        ),
    ] {
        let (status, body) = call(&app, method.clone(), &path, SHOP).await;
        assert_eq!(
            (status, &body["error"]),
            (404, &json!("not_found")),
            "{method} {path}"
        );
    }
    let (_, page) = call(&app, get.clone(), "/api/receipts", SHOP).await;
    assert_eq!(listed_job_ids(&page), [mine.job_id.as_str()]);
    // The other key's job was left alone by the refused cancel.
    let (status, job) = call(
        &app,
        get.clone(),
        &format!("/api/job/{}", theirs.job_id),
        CAFE,
    )
    .await;
    assert_eq!((status, &job["state"]), (200, &json!("waiting")), "{job}");

    // The admin key sees both.
    for upload in [&mine, &theirs] {
        let path = format!("/api/receipt/{}", upload.receipt_id);
        assert_eq!(call(&app, get.clone(), &path, ADMIN).await.0, 200);
    }
    let (_, page) = call(&app, get, "/api/receipts", ADMIN).await;
    let mut both = vec![mine.job_id.clone(), theirs.job_id.clone()];
    both.sort();
    assert_eq!(listed_job_ids(&page), both);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_cannot_see_another_keys_receipt_over_graphql() {
    let app = app_with_named_keys().await;
    let mine = upload_as(&app, SHOP).await;
    let theirs = upload_as(&app, CAFE).await;
    let code = |answer: &Value| answer["errors"][0]["extensions"]["code"].clone();

    let job = |id: &str| format!("{{ jobStatus(jobId: \"{id}\") {{ id state }} }}");
    let receipt = |id: &str| format!("{{ receipt(id: \"{id}\") {{ id }} }}");
    let answer = graphql_as(&app, SHOP, &job(&mine.job_id)).await;
    assert_eq!(
        answer["data"]["jobStatus"]["id"],
        json!(mine.job_id),
        "{answer}"
    );
    for query in [
        job(&theirs.job_id),
        receipt(&theirs.receipt_id.to_string()),
        format!(
            "mutation {{ cancelJob(jobId: \"{}\") {{ state }} }}",
            theirs.job_id
        ),
        format!(
            "mutation {{ retryJob(jobId: \"{}\") {{ state }} }}",
            theirs.job_id
        ),
    ] {
        let answer = graphql_as(&app, SHOP, &query).await;
        assert_eq!(code(&answer), json!("not_found"), "{query}: {answer}");
    }
    let listing = "{ receipts { receipts { jobId } } }";
    let answer = graphql_as(&app, SHOP, listing).await;
    assert_eq!(
        listed_job_ids(&answer["data"]["receipts"]),
        [mine.job_id.as_str()]
    );

    let answer = graphql_as(&app, ADMIN, &receipt(&theirs.receipt_id.to_string())).await;
    assert_eq!(
        answer["data"]["receipt"]["id"],
        json!(theirs.receipt_id.to_string())
    );
    let answer = graphql_as(&app, ADMIN, listing).await;
    assert_eq!(
        listed_job_ids(&answer["data"]["receipts"]).len(),
        2,
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_key_sees_a_deployment_webhook_target_as_its_origin_only() {
    use receipt_ocr::config::WebhookUrls;
    use receipt_ocr::webhooks::WebhookUrl;

    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::new(
        vec![
            ("shop".into(), SHOP.into(), false),
            ("ops".into(), ADMIN.into(), true),
        ],
        true,
    );
    settings.webhooks.allow_private = true;
    // Nothing listens on port 9: the attempt fails, and its error names
    // where it went too.
    let secret_target = "http://127.0.0.1:9/hooks/T0KEN?sig=abc";
    settings.webhooks.urls = WebhookUrls(vec![WebhookUrl::parse(secret_target).unwrap()]);
    let app = TestApp::spawn(Role::Serve, settings).await;

    // The shop's own job, delayed then cancelled: a delivery to the
    // deployment's target.
    let job_id = upload_with_fields_as(&app, SHOP, &[("delay", "60000")])
        .await
        .job_id;
    let cancel = format!("/api/job/{job_id}");
    let (status, _) = call(&app, reqwest::Method::DELETE, &cancel, SHOP).await;
    assert_eq!(status, 200);
    let path = format!("/api/job/{job_id}/deliveries");
    let shop = wait_for(|| async {
        let (status, shop) = call(&app, reqwest::Method::GET, &path, SHOP).await;
        assert_eq!(status, 200, "{shop}");
        let attempts = shop["deliveries"][0]["attempts"].as_array()?;
        (!attempts.is_empty()).then_some(shop)
    })
    .await;
    assert_eq!(
        shop["deliveries"][0]["url"], "http://127.0.0.1:9/…",
        "{shop}"
    );
    let error = shop["deliveries"][0]["attempts"][0]["error"].to_string();
    assert!(
        error.contains("127.0.0.1:9") && !error.contains("T0KEN"),
        "{error}"
    );
    let query = format!(r#"{{ webhookDeliveries(jobId: "{job_id}") {{ deliveries {{ url }} }} }}"#);
    let graphql = graphql_as(&app, SHOP, &query).await;
    let url = &graphql["data"]["webhookDeliveries"]["deliveries"][0]["url"];
    assert_eq!(url, "http://127.0.0.1:9/…", "{graphql}");
    let (_, ops) = call(&app, reqwest::Method::GET, &path, ADMIN).await;
    assert_eq!(ops["deliveries"][0]["url"], secret_target, "{ops}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_named_keys_only_an_admin_key_pauses_the_queue() {
    let app = app_with_named_keys().await;
    let post = reqwest::Method::POST;
    let (status, body) = call(&app, post.clone(), "/api/queue/pause", SHOP).await;
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("forbidden")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("admin")
    );
    let answer = graphql_as(&app, SHOP, "mutation { pauseQueue { paused } }").await;
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        json!("forbidden")
    );
    let (_, queue) = call(&app, reqwest::Method::GET, "/api/queue", SHOP).await;
    assert_eq!(
        queue["paused"],
        json!(false),
        "a refused pause changes nothing"
    );

    let (status, queue) = call(&app, post.clone(), "/api/queue/pause", ADMIN).await;
    assert_eq!((status, &queue["paused"]), (200, &json!(true)));
    let (status, _) = call(&app, post, "/api/queue/resume", ADMIN).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_uploading_keys_name_is_stored_as_the_receipts_owner() {
    let app = app_with_named_keys().await;
    let upload = upload_as(&app, CAFE).await;
    let owner = app.db.owner_of_job(&upload.job_id).await.unwrap();
    assert_eq!(owner, Some(Some("cafe".to_string())));
}
