//! Live events: the SSE endpoint and the GraphQL subscription, both fed by
//! the queue's events stream, see every progress step of a job read in a
//! separate worker process, in order, and end after its final state; the
//! WebSocket takes the API key from `connection_init`.

use futures::{SinkExt, StreamExt};
use receipt_ocr::config::ApiKeys;
use receipt_ocr::startup::Role;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{PATIENCE, Process, TestApp, free_port, isolated_settings};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

/// One update as a client saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub state: String,
    pub progress: i64,
    pub body: Value,
    /// The SSE `id` field, when there was one.
    pub id: Option<String>,
}

/// Open `GET /api/job/{id}/events`; updates arrive on the channel, which
/// closes when the server ends the stream.
pub async fn follow_sse(
    app: &TestApp,
    job_id: &str,
    key: Option<&str>,
) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let mut request = app
        .http
        .get(format!("{}/api/job/{job_id}/events", app.address));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let mut response = request.send().await.expect("the events request");
    let (tx, rx) = mpsc::unbounded_channel();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, rx);
    }
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(seen) = parse_sse(&block) {
                    let _ = tx.send(seen);
                }
            }
        }
    });
    (status, rx)
}

fn parse_sse(block: &str) -> Option<Seen> {
    let field = |name: &str| {
        block
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|v| v.trim_start().to_string())
    };
    let body: Value = serde_json::from_str(&field("data:")?).expect("JSON data");
    Some(Seen {
        state: body["state"].as_str().unwrap_or("?").to_string(),
        progress: body["progress"].as_i64().unwrap_or(-1),
        id: field("id:"),
        body,
    })
}

/// A GraphQL WebSocket client's connection.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws connection to `app`, not yet initialised.
async fn ws_open(app: &TestApp) -> Socket {
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the WebSocket upgrade");
    socket
}

/// A graphql-transport-ws connection to `app`, initialised (no key) and
/// acknowledged.
pub async fn ws_connect(app: &TestApp) -> Socket {
    let mut socket = ws_open(app).await;
    ws_send(
        &mut socket,
        json!({"type": "connection_init", "payload": {}}),
    )
    .await;
    let ack = ws_frame(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub async fn ws_send(socket: &mut Socket, frame: Value) {
    let text = Message::Text(frame.to_string().into());
    socket.send(text).await.expect("sent");
}

/// The next JSON frame, within PATIENCE.
pub async fn ws_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time")
            .expect("the socket open")
            .expect("a frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

/// The next `next` frame: an update, or a refusal in `payload.errors`.
pub async fn ws_next(socket: &mut Socket) -> Value {
    loop {
        let frame = ws_frame(socket).await;
        if frame["type"] == "next" {
            return frame;
        }
    }
}

/// What a GraphQL WebSocket client got.
#[derive(Debug)]
pub enum WsFrame {
    Update(Seen),
    /// The server closed the connection or refused the handshake.
    Refused(String),
}

/// Subscribe to `jobStatus` over graphql-transport-ws, sending
/// `init_payload` in `connection_init`; frames arrive on the channel, which
/// closes when the subscription completes.
pub async fn follow_ws(
    app: &TestApp,
    job_id: &str,
    init_payload: Value,
) -> mpsc::UnboundedReceiver<WsFrame> {
    let mut socket = ws_open(app).await;
    let send = |v: Value| Message::Text(v.to_string().into());
    let init = json!({"type": "connection_init", "payload": init_payload});
    socket.send(send(init)).await.unwrap();
    let query = format!(
        r#"subscription {{ jobStatus(jobId: "{job_id}") {{ state progress result {{ storeName }} }} }}"#
    );
    let subscribe = json!({"type": "subscribe", "id": "1", "payload": {"query": query}});
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut acked = false;
        while let Some(Ok(message)) = socket.next().await {
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    let _ = tx.send(WsFrame::Refused(reason));
                    return;
                }
                _ => continue,
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("connection_ack") if !acked => {
                    acked = true;
                    socket.send(send(subscribe.clone())).await.unwrap();
                }
                Some("next") => {
                    let body = frame["payload"]["data"]["jobStatus"].clone();
                    let _ = tx.send(WsFrame::Update(Seen {
                        state: body["state"].as_str().unwrap_or("?").to_string(),
                        progress: body["progress"].as_i64().unwrap_or(-1),
                        id: None,
                        body,
                    }));
                }
                Some("complete") => return,
                Some("error") => panic!("subscription error: {frame}"),
                _ => {}
            }
        }
    });
    rx
}

pub async fn next_update<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Option<T> {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("an update in time")
}

pub async fn rest<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Vec<T> {
    let mut all = Vec::new();
    while let Some(item) = next_update(rx).await {
        all.push(item);
    }
    all
}

/// The progress values an active job showed, in order.
fn active_progress(updates: &[Seen]) -> Vec<i64> {
    updates
        .iter()
        .filter(|u| u.state == "active")
        .map(|u| u.progress)
        .collect()
}

fn updates_of(frames: Vec<WsFrame>) -> Vec<Seen> {
    frames
        .into_iter()
        .map(|f| match f {
            WsFrame::Update(seen) => seen,
            WsFrame::Refused(reason) => panic!("refused: {reason}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_and_the_subscription_see_every_step_of_a_job_read_by_a_worker_process() {
    let settings = isolated_settings();
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = api.upload_ok(corner_market_png()).await;
    let (status, mut sse) = follow_sse(&api, &job_id, None).await;
    assert_eq!(status, 200);
    let mut ws = follow_ws(&api, &job_id, json!({})).await;
    let first_sse = next_update(&mut sse).await.expect("the status now");
    let Some(WsFrame::Update(first_ws)) = next_update(&mut ws).await else {
        panic!("the subscription was refused");
    };
    assert_eq!(
        (first_sse.state.as_str(), first_sse.progress),
        ("waiting", 0)
    );
    assert_eq!(
        first_sse.id, None,
        "the status read at subscription has no event id"
    );
    assert_eq!(first_ws.state, "waiting");

    let mut worker = settings.clone();
    worker.http.port = free_port();
    let _worker = Process::start("worker", &worker);
    let sse = rest(&mut sse).await;
    let ws = updates_of(rest(&mut ws).await);
    for (client, updates) in [("SSE", &sse), ("subscription", &ws)] {
        let states: Vec<&str> = updates.iter().map(|u| u.state.as_str()).collect();
        assert_eq!(
            active_progress(updates),
            [0, 10, 30, 80, 90],
            "{client}: {states:?}"
        );
        let last = updates.last().expect("a final update");
        assert_eq!(last.state, "completed", "{client}: {states:?}");
        assert_eq!(last.progress, 100);
        assert_eq!(last.body["result"]["storeName"], CORNER_MARKET.store);
    }
    // Every SSE update after the first names its stream entry, in order.
    let ids: Vec<String> = sse
        .iter()
        .skip(1)
        .map(|u| u.id.clone().expect("an event id"))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|id| stream_order(id));
    assert_eq!(ids, sorted);
}

fn stream_order(id: &str) -> (u64, u64) {
    let (ms, n) = id.split_once('-').expect("<ms>-<n>");
    (ms.parse().unwrap(), n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_following_a_finished_job_gets_its_final_state_and_the_end() {
    let app = TestApp::serve().await;
    let job_id = app.upload_ok(corner_market_png()).await;
    app.wait_for_final(&job_id).await;

    let (status, mut sse) = follow_sse(&app, &job_id, None).await;
    assert_eq!(status, 200);
    let updates = rest(&mut sse).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].state, "completed");
    assert_eq!(updates[0].body["result"]["storeName"], CORNER_MARKET.store);
    let ws = updates_of(rest(&mut follow_ws(&app, &job_id, json!({})).await).await);
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0].state, "completed");

    let unknown = app
        .http
        .get(format!("{}/api/job/ocr-1-nosuchjob/events", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "not_found", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_websocket_takes_the_api_key_from_connection_init() {
    let mut settings = isolated_settings();
    settings.http.api_keys = ApiKeys::plain(&["browser-key"]);
    let app = TestApp::spawn(Role::Serve, settings).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(corner_market_png()).file_name("r.png"),
    );
    let upload = app
        .http
        .post(format!("{}/api/upload", app.address))
        .header("x-api-key", "browser-key")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let job_id = upload.json::<Value>().await.unwrap()["jobId"]
        .as_str()
        .expect("a job id")
        .to_string();

    let mut refused = follow_ws(&app, &job_id, json!({"apiKey": "wrong"})).await;
    match next_update(&mut refused).await {
        Some(WsFrame::Refused(reason)) => assert!(reason.contains("apiKey"), "{reason}"),
        other => panic!("a wrong key must be refused: {other:?}"),
    }
    let mut none = follow_ws(&app, &job_id, json!({})).await;
    assert!(matches!(
        next_update(&mut none).await,
        Some(WsFrame::Refused(_))
    ));

    let updates = updates_of(
        rest(&mut follow_ws(&app, &job_id, json!({"apiKey": "browser-key"})).await).await,
    );
    assert_eq!(
        updates.last().map(|u| u.state.as_str()),
        Some("completed"),
        "{updates:?}"
    );

    // SSE takes the header only.
    assert_eq!(follow_sse(&app, &job_id, None).await.0, 401);
    let (status, mut sse) = follow_sse(&app, &job_id, Some("browser-key")).await;
    assert_eq!(status, 200);
    assert_eq!(
        rest(&mut sse)
            .await
            .last()
            .map(|u| u.state.clone())
            .as_deref(),
        Some("completed")
    );
}

/// A followed job that is removed and whose receipt is gone ends its
/// stream: the final read answers "not found", and the stream is not left
/// open with nothing more to come.
#[tokio::test(flavor = "multi_thread")]
async fn a_followed_job_removed_with_its_receipt_ends_the_stream() {
    let app = TestApp::spawn(Role::Api, isolated_settings()).await;
    let job_id = app.upload_ok(corner_market_png()).await;
    let (status, mut sse) = follow_sse(&app, &job_id, None).await;
    assert_eq!(status, 200);
    let first = next_update(&mut sse).await.expect("the status now");
    assert_eq!(first.state, "waiting", "an api process runs no worker");

    let stored = app.db.receipt_by_job_id(&job_id).await.unwrap();
    app.db
        .delete_unshared_receipt(stored.expect("a row").row.id)
        .await
        .unwrap();
    let queue = crate::helpers::queue_for(&app.settings).await;
    assert!(queue.remove(&job_id).await.expect("removed"));
    assert!(
        rest(&mut sse).await.is_empty(),
        "nothing more, then the end"
    );
}

/// With KEEP_FAILED_COUNT=0 BullMQ removes a job as it fails it, before
/// its receipt says so: should the stream's read at BullMQ's `failed`
/// entry find the row still unfinished, the `receipt-failed` entry written
/// with the row brings the final state (the stream used to stay open).
/// Which of the two entries ends it depends on timing: that the entry is
/// written is checked in `faults.rs`, its meaning in `live.rs`.
#[tokio::test(flavor = "multi_thread")]
async fn a_followed_job_removed_as_it_fails_ends_its_stream_failed() {
    let mut settings = isolated_settings();
    settings.retention.failed_count = 0;
    let app = TestApp::spawn(Role::Api, settings.clone()).await;
    let job_id = app.upload_ok(corner_market_png()).await;
    app.remove_the_image();
    let (status, mut sse) = follow_sse(&app, &job_id, None).await;
    assert_eq!(status, 200);
    assert_eq!(next_update(&mut sse).await.expect("now").state, "waiting");

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let updates = rest(&mut sse).await;
    let last = updates.last().expect("updates");
    assert_eq!(last.state, "failed", "{:?}", last.body);
}
