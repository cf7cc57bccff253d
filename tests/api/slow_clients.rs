//! Slow and greedy clients cannot starve the others: connections that
//! dribble their headers are closed after the header timeout, and beyond
//! the connection cap they make room for new ones; idle connections are
//! closed; body bytes in flight are capped (503 with Retry-After); an
//! overlong request line gets a JSON 414, too many or too large headers a
//! JSON 431.

use std::sync::Arc;
use std::time::{Duration, Instant};

use receipt_ocr::config::Settings;
use receipt_ocr::startup::Role;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::helpers::{TestApp, isolated_settings, wait_for};
use crate::support::receipt_image::corner_market_png;

async fn api_with(limits: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = isolated_settings();
    limits(&mut settings);
    TestApp::spawn(Role::Api, settings).await
}

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// When each slow connection opened and (once the server closed it) closed.
type Lifetimes = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

/// A client that sends a request's headers one byte every `pace`, for ever.
async fn open_slow_connection(address: &str, lifetimes: &Lifetimes, pace: Duration) {
    let stream = TcpStream::connect(address).await.expect("connect");
    let index = {
        let mut all = lifetimes.lock().await;
        all.push((Instant::now(), None));
        all.len() - 1
    };
    let (mut reader, mut writer) = stream.into_split();
    let lifetimes = lifetimes.clone();
    tokio::spawn(async move {
        let headers = b"GET /health/live HTTP/1.1\r\nHost: slow\r\n";
        let filler = b"X-Slow: 1\r\n";
        let bytes = headers.iter().chain(filler.iter().cycle());
        let dribble = async {
            for byte in bytes {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(pace).await;
            }
        };
        let mut scratch = [0u8; 1024];
        let closed = async { while let Ok(1..) = reader.read(&mut scratch).await {} };
        tokio::select! { () = dribble => {}, () = closed => {} }
        lifetimes.lock().await[index].1 = Some(Instant::now());
    });
}

async fn still_open(lifetimes: &Lifetimes) -> usize {
    let all = lifetimes.lock().await;
    all.iter().filter(|(_, closed)| closed.is_none()).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_beyond_the_connection_cap_leave_health_and_uploads_answering() {
    let header_timeout = Duration::from_secs(3);
    let app = api_with(|s| {
        s.http.limits.max_connections = 50;
        s.http.limits.header_timeout = header_timeout;
    })
    .await;
    let address = host_port(&app);
    let lifetimes: Lifetimes = Arc::default();
    for _ in 0..200 {
        open_slow_connection(&address, &lifetimes, Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        let health = app.http.get(format!("{}/health/live", app.address)).send();
        assert_eq!(health.await.expect("health answers").status(), 200);
    }
    app.upload_ok(corner_market_png()).await;
    // The server keeps at most its cap: older slow connections made room.
    wait_for(|| async { (still_open(&lifetimes).await <= 50).then_some(()) }).await;
    assert!(
        still_open(&lifetimes).await > 0,
        "the newest slow ones are still waiting"
    );

    // The rest are closed once their header time is up, not before.
    wait_for(|| async { (still_open(&lifetimes).await == 0).then_some(()) }).await;
    let all = lifetimes.lock().await;
    let survivors: Vec<Duration> = all
        .iter()
        .rev()
        .take(20)
        .filter_map(|(opened, closed)| Some(closed.as_ref()?.duration_since(*opened)))
        .collect();
    for lived in survivors {
        assert!(
            lived >= header_timeout - Duration::from_millis(200),
            "closed after {lived:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_slow_clients_leave_health_and_uploads_answering_at_the_default_cap() {
    // The case: ~1 000 connections sending a header byte a second
    // stopped health probes and uploads (the default open-files limit).
    // A long header timeout keeps every one of them open meanwhile.
    let app = api_with(|s| s.http.limits.header_timeout = Duration::from_secs(300)).await;
    let address = host_port(&app);
    let lifetimes: Lifetimes = Arc::default();
    for _ in 0..1_000 {
        open_slow_connection(&address, &lifetimes, Duration::from_secs(1)).await;
    }
    let health = app.http.get(format!("{}/health/live", app.address)).send();
    assert_eq!(health.await.expect("health answers").status(), 200);
    app.upload_ok(corner_market_png()).await;
    assert_eq!(
        still_open(&lifetimes).await,
        1_000,
        "none was closed meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(1);
    let app = api_with(|s| s.http.limits.idle_timeout = idle).await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: idle\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "the server closed it: {closed:?}"
    );
    assert!(answered.elapsed() >= idle - Duration::from_millis(100));
}

/// An upload declaring `length` body bytes whose handler has started (the
/// server asked for the body with `100 Continue`), with a first bit of it.
async fn start_upload(address: &str, length: usize) -> TcpStream {
    let (mut stream, status) = upload_head(address, length).await;
    assert_eq!(status, 100, "asked for the body");
    stream.write_all(b"--b\r\n").await.unwrap();
    stream
}

/// An upload's headers alone, declaring `length` bytes and expecting
/// 100-continue; the connection and the first answer's status: 100 when
/// the server asks for the body, else its refusal (503: no budget).
async fn upload_head(address: &str, length: usize) -> (TcpStream, u16) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The first answer's head, to its blank line (a 100 has nothing more).
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.get(9..12).and_then(|code| code.parse().ok());
    (
        stream,
        status.unwrap_or_else(|| panic!("a status line: {head}")),
    )
}

/// Send `request` on a new connection and read the answer until the server
/// closes the connection.
async fn raw_exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(read @ 1..) = stream.read(&mut chunk).await {
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {answer}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_beyond_the_bytes_in_flight_get_503_with_retry_after() {
    let budget = 1024 * 1024;
    let app = api_with(|s| s.http.limits.max_body_bytes_in_flight = budget).await;
    // A slow upload that holds the whole budget while it trickles in.
    let held = start_upload(&host_port(&app), budget).await;
    let refused = wait_for(|| async {
        let response = app.upload_bytes(corner_market_png(), "r.png").await;
        (response.status() == 503).then_some(response)
    })
    .await;
    let retry_after = refused.headers().get("retry-after").cloned();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "server_busy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_UPLOAD_BYTES_IN_FLIGHT")
    );
    assert!(retry_after.is_some_and(|v| v.to_str().unwrap().parse::<u64>().is_ok()));
    assert_eq!(app.db.count_receipts().await.unwrap(), 0, "nothing stored");

    drop(held);
    wait_for(|| async {
        let response = app.upload_bytes(corner_market_png(), "r.png").await;
        (response.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_with_every_connection_busy_a_new_one_gets_a_json_503() {
    let app = api_with(|s| s.http.limits.max_connections = 2).await;
    let address = host_port(&app);
    // Two uploads in progress: their headers are in, their bodies are not.
    let _busy = [
        start_upload(&address, 5000).await,
        start_upload(&address, 5000).await,
    ];
    let probe = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw_exchange(&address, probe).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert_eq!(json_body(&answer)["error"], "server_busy");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlong_request_line_gets_a_json_414_and_long_ids_are_not_echoed() {
    let app = api_with(|_| {}).await;
    for length in [100_000, 20_000] {
        let id = "a".repeat(length);
        let request = format!("GET /api/job/{id} HTTP/1.1\r\nHost: x\r\n\r\n");
        let answer = raw_exchange(&host_port(&app), request.as_bytes()).await;
        assert!(
            answer.starts_with("HTTP/1.1 414"),
            "id of {length}: {answer}"
        );
        assert_eq!(json_body(&answer)["error"], "uri_too_long");
    }
    let id = "b".repeat(10_000);
    let (status, body) = app.job(&id).await;
    assert_eq!(status, 404);
    let message = body["message"].as_str().unwrap();
    assert!(message.len() < 300, "the id is cut short: {message}");
    // The same connection pool still works after a 414 closed a connection.
    let health = app.http.get(format!("{}/health/live", app.address)).send();
    assert_eq!(health.await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_or_too_large_headers_get_a_json_431() {
    let app = api_with(|_| {}).await;
    let request = |headers: String| {
        format!("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
    };
    let extra = |count: usize| (0..count).map(|n| format!("x-{n}: 1\r\n")).collect();
    // 100 header lines in all are taken; 101 are not.
    let at_the_limit = raw_exchange(&host_port(&app), request(extra(98)).as_bytes()).await;
    assert!(at_the_limit.starts_with("HTTP/1.1 200"), "{at_the_limit}");
    let big_cookie = format!("Cookie: {}\r\n", "c".repeat(70_000));
    for headers in [extra(99), big_cookie] {
        let answer = raw_exchange(&host_port(&app), request(headers).as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        let body = json_body(&answer);
        assert_eq!(body["error"], "request_header_fields_too_large");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("fewer or smaller headers")
        );
    }
    let health = app.http.get(format!("{}/health/live", app.address)).send();
    assert_eq!(health.await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_does_not_arrive_in_time_gets_a_json_408_and_frees_its_budget() {
    let app = api_with(|s| {
        s.http.limits.body_timeout = Duration::from_secs(1);
        s.http.limits.max_body_bytes_in_flight = 1024 * 1024;
    })
    .await;
    let mut stalled = start_upload(&host_port(&app), 1024 * 1024).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(read @ 1..) = stalled.read(&mut chunk).await {
        answer.extend_from_slice(&chunk[..read]);
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = json_body(&answer);
    assert_eq!(body["error"], "request_timeout");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("HTTP_BODY_TIMEOUT_MS")
    );
    // Its share of the bytes in flight is free again.
    assert_eq!(
        app.upload_bytes(corner_market_png(), "r.png")
            .await
            .status(),
        200
    );
}

type H2Chunks =
    tokio::sync::mpsc::Sender<Result<hyper::body::Frame<hyper::body::Bytes>, std::io::Error>>;
type H2Answer = tokio::task::JoinHandle<hyper::Result<hyper::Response<hyper::body::Incoming>>>;

/// An upload over HTTP/2 that declares no length, its first bytes sent;
/// the rest of its body goes through the sender (dropping it ends the
/// body), and its answer comes through the handle.
async fn start_h2_upload(address: &str) -> (H2Chunks, H2Answer) {
    use http_body_util::StreamBody;
    use hyper::body::{Bytes, Frame};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let tcp = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let (chunks, body) = tokio::sync::mpsc::channel(1);
    let body = Box::pin(futures::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    }));
    let request = hyper::Request::post(format!("http://{address}/api/upload"))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(StreamBody::new(body))
        .unwrap();
    let answer = tokio::spawn(sender.send_request(request));
    let first = Frame::data(Bytes::from_static(b"--b\r\n"));
    chunks.send(Ok(first)).await.unwrap();
    (chunks, answer)
}

/// An HTTP/2 upload need not declare its length (HTTP/2 has no chunked
/// encoding): while its body arrives it holds the budget of the largest
/// upload, as a chunked HTTP/1.1 one does.
#[tokio::test(flavor = "multi_thread")]
async fn an_http2_upload_without_a_length_holds_the_budget_of_the_largest_upload() {
    let app = api_with(|s| {
        s.http.max_upload_bytes = 1_000_000;
        s.http.limits.max_body_bytes_in_flight = 1_500_000;
    })
    .await;
    let address = host_port(&app);
    // An upload of 600 kB more no longer fits beside it (asked with its
    // headers alone: 100 Continue when let in, 503 when not). A probe let
    // in sends its body and reads the answer, so its share is free again
    // before the next probe (a probe that only hung up held it a moment
    // longer: the next probe's 503 could be its doing, not the HTTP/2
    // upload's). An HTTP/2 upload that came while a probe held its share
    // is refused itself, and is sent again.
    let probe = async || {
        let (mut stream, status) = upload_head(&address, 600_000).await;
        if status == 100 {
            // Not a valid form: refused once read. Errors: it may be
            // refused before the whole body is read.
            let _ = stream.write_all(&vec![b'x'; 600_000]).await;
            let _ = stream.shutdown().await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
        }
        status
    };
    let (chunks, answer) = wait_for(|| async {
        let (chunks, answer) = start_h2_upload(&address).await;
        // Probes a while, then starts over (so a server that never holds
        // the budget fails the test at wait_for's limit).
        for _ in 0..100 {
            if answer.is_finished() {
                break;
            }
            if probe().await == 503 {
                return Some((chunks, answer));
            }
        }
        None
    })
    .await;

    // The body ends unfinished (400): its budget is free again.
    drop(chunks);
    let answered = answer.await.unwrap().expect("an answer");
    assert_eq!(answered.status(), 400);
    wait_for(|| async { (probe().await == 100).then_some(()) }).await;
    app.assert_nothing_left().await;
}
