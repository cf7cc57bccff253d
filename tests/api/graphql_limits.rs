//! What one GraphQL request may cost: each limit refuses with its own
//! `extensions.code` and a message naming the setting, before any lookup
//! runs; the standard introspection query fits the defaults, and
//! introspection can be turned off.

use receipt_ocr::config::Settings;
use receipt_ocr::startup::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, isolated_settings};

async fn app_with(limits: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = isolated_settings();
    limits(&mut settings);
    TestApp::spawn(Role::Api, settings).await
}

async fn post(app: &TestApp, body: Value) -> Value {
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The first error's code and message, or a test failure naming the answer.
fn refusal(answer: &Value) -> (String, String) {
    let error = &answer["errors"][0];
    let code = error["extensions"]["code"].as_str();
    let message = error["message"].as_str();
    match (code, message) {
        (Some(code), Some(message)) => (code.to_string(), message.to_string()),
        _ => panic!("expected a refusal, got {answer}"),
    }
}

fn aliases_of_receipt(count: usize) -> String {
    let fields: String = (0..count)
        .map(|i| format!("r{i}: receipt(id: \"00000000-0000-0000-0000-{i:012}\") {{ id }} "))
        .collect();
    format!("{{ {fields}}}")
}

#[tokio::test(flavor = "multi_thread")]
async fn each_graphql_limit_refuses_with_its_code_and_setting() {
    let app = app_with(|s| {
        s.http.graphql.max_depth = 3;
        s.http.graphql.max_complexity = 60;
        s.http.graphql.max_aliases = 3;
        s.http.graphql.max_query_bytes = 2_000;
        s.http.graphql.max_batch = 2;
    })
    .await;
    let deep = "{ jobStatus(jobId: \"ocr-1-x\") { result { items { name } } } }";
    let costly = "{ receipts(limit: 50) { receipts { id jobId } } }";
    let cases = [
        (deep.to_string(), "query_too_deep", "GRAPHQL_MAX_DEPTH"),
        (
            costly.to_string(),
            "query_too_complex",
            "GRAPHQL_MAX_COMPLEXITY",
        ),
        (
            aliases_of_receipt(4),
            "too_many_aliases",
            "GRAPHQL_MAX_ALIASES",
        ),
        (
            aliases_of_receipt(40),
            "query_too_large",
            "GRAPHQL_MAX_QUERY_BYTES",
        ),
    ];
    for (query, code, setting) in cases {
        let answer = post(&app, json!({ "query": query })).await;
        let (got, message) = refusal(&answer);
        assert_eq!(got, code, "{answer}");
        assert!(message.contains(setting), "{message}");
        assert!(answer["data"].is_null(), "nothing ran: {answer}");
    }
    // Within every limit, the same shapes run.
    let fits = post(&app, json!({ "query": aliases_of_receipt(3) })).await;
    assert_eq!(
        fits["errors"][0]["extensions"]["code"], "not_found",
        "{fits}"
    );

    let one = json!({ "query": "{ __typename }" });
    let answer = post(&app, json!([one, one, one])).await;
    let (code, message) = refusal(&answer);
    assert_eq!(code, "batch_too_large");
    assert!(message.contains("GRAPHQL_MAX_BATCH"), "{message}");
    let answer = post(&app, json!([one, one])).await;
    let typename = json!({ "data": { "__typename": "QueryRoot" } });
    assert_eq!(answer, json!([typename, typename]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_issues_alias_flood_is_refused_with_the_default_limits() {
    let app = app_with(|_| {}).await;
    // 20 000 aliased lookups (about 1.3 MB) as in the issue, then a flood
    // small enough to pass the size limit: refused by the alias count.
    let answer = post(&app, json!({ "query": aliases_of_receipt(20_000) })).await;
    assert_eq!(refusal(&answer).0, "query_too_large");
    let answer = post(&app, json!({ "query": aliases_of_receipt(200) })).await;
    assert_eq!(refusal(&answer).0, "too_many_aliases");
    let batch: Vec<Value> = (0..1_000)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let answer = post(&app, Value::Array(batch)).await;
    assert_eq!(refusal(&answer).0, "batch_too_large");
}

/// The introspection query GraphQL tools send (GraphiQL's, Schemathesis's).
const INTROSPECTION: &str = "query IntrospectionQuery { __schema {
  queryType { name } mutationType { name } subscriptionType { name }
  types { ...FullType }
  directives { name description locations args { ...InputValue } } } }
fragment FullType on __Type { kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue } interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef } }
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }";

#[tokio::test(flavor = "multi_thread")]
async fn introspection_fits_the_default_limits_and_can_be_turned_off() {
    let app = app_with(|_| {}).await;
    let answer = post(&app, json!({ "query": INTROSPECTION })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    assert_eq!(answer["data"]["__schema"]["queryType"]["name"], "QueryRoot");

    let closed = app_with(|s| s.http.graphql.introspection = false).await;
    let answer = post(&closed, json!({ "query": INTROSPECTION })).await;
    // async-graphql answers a disabled introspection field with null.
    assert_eq!(answer["data"]["__schema"], Value::Null, "{answer}");
    let answer = post(&closed, json!({ "query": "{ queue { paused } }" })).await;
    assert_eq!(answer["data"]["queue"]["paused"], false, "{answer}");
}

/// One WebSocket holds at most GRAPHQL_MAX_SUBSCRIPTIONS subscriptions:
/// the next is refused with its code; one stopped, or ended by its job
/// ending, frees its slot.
#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_holds_at_most_graphql_max_subscriptions() {
    use crate::events::{ws_connect, ws_next, ws_send};

    let app = app_with(|s| s.http.graphql.max_subscriptions = 2).await;
    // Waiting for ever: an api process runs no worker.
    let job_id = app
        .upload_ok(crate::support::receipt_image::corner_market_png())
        .await;
    let mut socket = ws_connect(&app).await;
    let query = format!(r#"subscription {{ jobStatus(jobId: "{job_id}") {{ state }} }}"#);
    let subscribe = |id: &str| json!({"type": "subscribe", "id": id, "payload": {"query": query}});
    // One at a time, each seen open before the next is asked for.
    let open_one = async |socket: &mut crate::events::Socket, id: &str| -> Value {
        ws_send(socket, subscribe(id)).await;
        let frame = ws_next(socket).await;
        assert_eq!(frame["id"], id, "{frame}");
        frame
    };
    for id in ["1", "2"] {
        let frame = open_one(&mut socket, id).await;
        assert_eq!(
            frame["payload"]["data"]["jobStatus"]["state"], "waiting",
            "{frame}"
        );
    }
    let frame = open_one(&mut socket, "3").await;
    let refused = &frame["payload"]["errors"][0];
    assert_eq!(
        refused["extensions"]["code"], "too_many_subscriptions",
        "{frame}"
    );
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("GRAPHQL_MAX_SUBSCRIPTIONS"), "{message}");

    // Stopping one frees its slot for the next.
    ws_send(&mut socket, json!({"type": "complete", "id": "1"})).await;
    let frame = open_one(&mut socket, "4").await;
    assert_eq!(
        frame["payload"]["data"]["jobStatus"]["state"], "waiting",
        "{frame}"
    );

    // The job ends (cancelled): both open subscriptions end with it, and
    // their slots are free again.
    let cancel = format!("{}/api/job/{job_id}", app.address);
    assert_eq!(app.http.delete(cancel).send().await.unwrap().status(), 200);
    let mut ended = Vec::new();
    while ended.len() < 2 {
        let frame = crate::events::ws_frame(&mut socket).await;
        if frame["type"] == "complete" {
            ended.push(frame["id"].as_str().unwrap_or_default().to_string());
        }
    }
    ended.sort();
    assert_eq!(ended, ["2", "4"]);
    for id in ["5", "6"] {
        let frame = open_one(&mut socket, id).await;
        assert_eq!(
            frame["payload"]["data"]["jobStatus"]["state"], "cancelled",
            "{frame}"
        );
    }
}
