//! Subscribing to a job over GraphQL (graphql-transport-ws): the client sees
//! its states as they change, ending with `completed`.

use serde_json::{Value, json};

use crate::events::{ws_connect, ws_frame, ws_send};
use crate::helpers::TestApp;
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

#[tokio::test(flavor = "multi_thread")]
async fn a_subscribed_client_sees_the_job_through_to_completed() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let mut socket = ws_connect(&app).await;
    let query = format!(
        r#"subscription {{ jobStatus(jobId: "{job_id}") {{ state progress result {{ storeName totalAmount }} }} }}"#
    );
    let subscribe = json!({"type": "subscribe", "id": "1", "payload": {"query": query}});
    ws_send(&mut socket, subscribe).await;

    let mut states = Vec::new();
    let mut last = Value::Null;
    loop {
        let frame = ws_frame(&mut socket).await;
        match frame["type"].as_str() {
            Some("next") => {
                last = frame["payload"]["data"]["jobStatus"].clone();
                states.push(last["state"].as_str().unwrap_or("?").to_string());
            }
            Some("complete") => break,
            Some("error") => panic!("subscription error: {frame}"),
            _ => {}
        }
    }
    assert_eq!(
        states.last().map(String::as_str),
        Some("completed"),
        "states: {states:?}"
    );
    assert_eq!(last["progress"], 100);
    assert_eq!(last["result"]["storeName"], CORNER_MARKET.store);
    assert_eq!(
        last["result"]["totalAmount"].as_f64(),
        Some(CORNER_MARKET.total)
    );
}
