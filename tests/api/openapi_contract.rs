//! The OpenAPI document says what the service answers: fields that can be
//! null are marked nullable, the upload's `file` is required (and a form
//! without it is a 400), a 405 says the allowed methods in `Allow`, and the
//! `X-Api-Key` scheme is declared when keys are on. (Schemathesis checks
//! every response against the document in scripts/schemathesis.sh.)

use receipt_ocr::config::ApiKeys;
use receipt_ocr::startup::Role;
use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};

async fn spec(app: &TestApp) -> Value {
    let url = format!("{}/openapi.json", app.address);
    app.http
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_optional_response_field_is_nullable_and_the_file_is_required() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let spec = spec(&app).await;
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if !required.contains(&field.as_str()) {
                assert_eq!(property["nullable"], true, "{name}.{field} can be null");
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "only {checked} optional fields seen");
    let form = &spec["paths"]["/api/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
        ["schema"];
    assert!(
        form["required"]
            .as_array()
            .unwrap()
            .contains(&"file".into()),
        "{form}"
    );

    let empty = reqwest::multipart::Form::new().text("priority", "1");
    let response = app.upload_form(empty).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "no_file", "{body}");
    assert_eq!(app.db.count_receipts().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_a_path_does_not_take_gets_405_with_allow() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    for (method, path, allow) in [
        (reqwest::Method::PUT, "/api/upload", "POST"),
        (
            reqwest::Method::PATCH,
            "/api/job/ocr-1-x",
            "DELETE, GET, HEAD",
        ),
        (reqwest::Method::DELETE, "/health/live", "GET, HEAD"),
        (reqwest::Method::PUT, "/graphql", "GET, HEAD, POST"),
    ] {
        let url = format!("{}{path}", app.address);
        let response = app.http.request(method.clone(), url).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allowed = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_scheme_is_declared_only_when_keys_are_on() {
    let open = TestApp::spawn(Role::Api, isolated_settings()).await;
    let spec_open = spec(&open).await;
    assert!(spec_open["components"].get("securitySchemes").is_none());
    assert!(
        spec_open["paths"]["/api/upload"]["post"]
            .get("security")
            .is_none()
    );

    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::plain(&["k"]);
    let keyed = TestApp::spawn(Role::Api, settings).await;
    let spec = spec(&keyed).await;
    let scheme = &spec["components"]["securitySchemes"]["ApiKey"];
    assert_eq!(
        (&scheme["type"], &scheme["in"], &scheme["name"]),
        (&"apiKey".into(), &"header".into(), &"X-Api-Key".into())
    );
    assert_eq!(
        spec["paths"]["/api/upload"]["post"]["security"][0]["ApiKey"],
        Value::Array(vec![])
    );
    assert!(
        spec["paths"]["/health/live"]["get"]
            .get("security")
            .is_none()
    );
    let docs = keyed.get_text(&format!("{}/docs/", keyed.address)).await;
    assert!(docs.contains("X-Api-Key"), "Swagger UI shows the scheme");
}
