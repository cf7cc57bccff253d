//! Subscribing to a job over GraphQL (graphql-transport-ws): the client sees
//! its states as they change, ending with `completed`.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{PATIENCE, TestApp};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

#[tokio::test(flavor = "multi_thread")]
async fn a_subscribed_client_sees_the_job_through_to_completed() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corner_market_png()).await;

    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({"type": "connection_init"})))
        .await
        .unwrap();
    let query = format!(
        r#"subscription {{ jobStatus(jobId: "{job_id}") {{ state progress result {{ storeName totalAmount }} }} }}"#
    );
    socket
        .send(send(
            json!({"type": "subscribe", "id": "1", "payload": {"query": query}}),
        ))
        .await
        .unwrap();

    let mut states = Vec::new();
    let mut last = Value::Null;
    let read_all = async {
        while let Some(message) = socket.next().await {
            let Message::Text(text) = message.expect("a frame") else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
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
    };
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .expect("the subscription completes");
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
