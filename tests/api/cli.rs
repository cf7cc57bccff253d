//! The client commands as a user runs them: `upload --wait` with progress
//! bars on a terminal (a pseudo-terminal from `script`), `--json` lines,
//! exit codes for completed / failed / unreachable, a folder of files, the
//! job-control and listing commands, and a closed pipe without a panic.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use receipt_ocr::config::Settings;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png, corrupt_png};

const BIN: &str = env!("CARGO_BIN_EXE_receipt-ocr");

fn cli(app: &TestApp, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RECEIPT_OCR_URL", &app.address)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the receipt-ocr binary runs")
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir()
        .join("receipt-ocr-tests")
        .join(format!("cli-{}", uuid::Uuid::new_v4().simple()))
        .join(name);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("a file");
    path.display().to_string()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_wait_json_reads_a_folder_and_exits_by_the_worst_outcome() {
    let app = TestApp::serve().await;
    let dir = scratch("receipts");
    write(&dir, "a.png", &corner_market_png());
    write(&dir, "b.png", &corner_market_png());
    let folder = dir.display().to_string();

    let output = cli(&app, &["upload", "--wait", "--json", &folder]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        assert_eq!(line["state"], "completed", "{line}");
        assert_eq!(line["result"]["storeName"], CORNER_MARKET.store, "{line}");
        assert!(
            line["jobId"]
                .as_str()
                .is_some_and(|id| id.starts_with("ocr-"))
        );
    }
    // No bars with --json; each job's id said on stderr as it was accepted.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut said: Vec<&str> = stderr.lines().collect();
    let mut expected: Vec<String> = lines
        .iter()
        .map(|line| {
            let file = line["file"].as_str().unwrap();
            let job_id = line["jobId"].as_str().unwrap();
            format!("{file}: accepted as job {job_id}; waiting for it to finish")
        })
        .collect();
    said.sort_unstable();
    expected.sort_unstable();
    assert_eq!(said, expected, "{stderr}");

    // A corrupt image among good ones: its job fails, exit code 2.
    let bad = write(&dir, "c.png", &corrupt_png(CORNER_MARKET.lines));
    let output = cli(&app, &["upload", "--wait", "--json", &bad]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(json_lines(&output)[0]["state"], "failed");

    // A file that cannot be read: exit code 1, nothing sent.
    let missing = dir.join("missing.jpg");
    let output = cli(&app, &["upload", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot read"),
        "{output:?}"
    );

    // A file the service refuses (not an image): exit code 2, the reason.
    let text = write(&dir, "notes.txt", b"not a receipt");
    let output = cli(&app, &["upload", "--json", &text]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let line = &json_lines(&output)[0];
    assert_eq!(line["state"], "refused");
    assert!(
        line["error"].as_str().is_some_and(|e| e.contains("415")),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_wait_on_a_terminal_draws_a_progress_bar() {
    let app = TestApp::serve().await;
    let dir = scratch("tty");
    let file = write(&dir, "receipt.png", &corner_market_png());
    // `script` runs the command under a pseudo-terminal and copies what
    // the terminal showed to its stdout.
    let command = format!("{BIN} upload --wait {file}");
    let output = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("RECEIPT_OCR_URL", &app.address)
        .env("RUST_LOG", "warn")
        .output()
        .expect("script (util-linux) runs");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(screen.contains("100%"), "a bar reaching 100%: {screen}");
    assert!(screen.contains("completed"), "{screen}");
    assert!(screen.contains(CORNER_MARKET.store), "the result: {screen}");
}

/// `upload --wait --json` of one receipt against an `api` process (which
/// reads nothing: the job waits) on a port of its own, once the upload is
/// accepted: the settings, the server, the waiting CLI and the job's id.
async fn a_wait_under_way(name: &str) -> (Settings, Process, Child, String) {
    let mut settings = isolated_settings();
    settings.http.port = free_port();
    let url = format!("http://127.0.0.1:{}", settings.http.port);
    let api = Process::start_with("api", &settings, &[]);
    let http = reqwest::Client::new();
    wait_for(|| async {
        let ready = http.get(format!("{url}/health/ready")).send().await.ok()?;
        (ready.status() == 200).then_some(())
    })
    .await;
    let file = write(&scratch(name), "receipt.png", &corner_market_png());
    let mut waiting = Command::new(BIN)
        .args(["upload", "--wait", "--json", "--url", &url, &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let said = said_job_id(&mut waiting).await;
    let job_id = wait_for(|| async {
        let listed: Value = http
            .get(format!("{url}/api/receipts"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        listed["receipts"][0]["jobId"].as_str().map(String::from)
    })
    .await;
    assert_eq!(said, job_id, "the id said while waiting is the job's");
    (settings, api, waiting, job_id)
}

/// The job id `upload --wait` says on stderr as soon as the upload is
/// accepted, before it waits; its stderr is drained from then on.
async fn said_job_id(waiting: &mut Child) -> String {
    use std::io::BufRead;
    let stderr = waiting.stderr.take().expect("stderr piped");
    let (line_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = line_tx.send(line);
        }
    });
    // The reader goes on draining stderr after its receiver is dropped.
    let said = move || loop {
        let line = lines.recv_timeout(std::time::Duration::from_secs(60));
        let line = line.expect("the id said on stderr within a minute");
        if line.contains("accepted as job ") {
            return line; // (log lines may come before it)
        }
    };
    let line = tokio::task::spawn_blocking(said)
        .await
        .expect("read stderr");
    let id = line
        .split("accepted as job ")
        .nth(1)
        .and_then(|rest| rest.split(';').next());
    id.unwrap_or_else(|| panic!("the job id said at once: {line}"))
        .to_string()
}

/// The waiting CLI's exit and its one JSON line.
async fn finished(waiting: Child) -> (Option<i32>, Value) {
    let output = tokio::task::spawn_blocking(move || waiting.wait_with_output())
        .await
        .expect("the CLI ran")
        .expect("its output");
    let line = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("one JSON line: {output:?}"));
    (output.status.code(), line)
}

/// The service restarted while `--wait` follows an accepted upload: the
/// CLI asks again until it answers, and sees the job through (exit 0).
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_goes_on_across_a_restart_of_the_service() {
    let (settings, api, waiting, _) = a_wait_under_way("restart").await;
    api.crash();
    // Back on the same port, now reading receipts.
    let _serve = Process::start_with("serve", &settings, &[("OCR_ENGINE", "tesseract")]);

    let (code, line) = finished(waiting).await;
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(line["state"], "completed", "{line}");
    assert_eq!(line["result"]["storeName"], CORNER_MARKET.store, "{line}");
}

/// The service gone for good while `--wait` follows an accepted upload:
/// after a minute of asking, the job's id is said (the job may well
/// finish), its state `unfinished`, exit 4.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_cut_short_by_the_service_going_away_keeps_the_job_id() {
    let (_, api, waiting, job_id) = a_wait_under_way("cut-short").await;
    api.crash();

    let (code, line) = finished(waiting).await;
    assert_eq!(code, Some(4), "{line}");
    assert_eq!(line["jobId"], job_id.as_str(), "{line}");
    assert_eq!(line["state"], "unfinished", "{line}");
}

/// A proxy's error page instead of our JSON: the status is said, with the
/// start of the page and what to do.
#[tokio::test(flavor = "multi_thread")]
async fn an_html_error_page_is_reported_with_its_status() {
    let proxy = crate::receiver::Receiver::start(vec![crate::receiver::Answer::Status(502)]).await;
    let output = Command::new(BIN)
        .args(["status", "--url", &proxy.base, "ocr-1-anything"])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("502") && stderr.contains("non-JSON") && stderr.contains("try again"),
        "{stderr}"
    );
}

/// A server that takes the connection and then says nothing is given up
/// on after a minute's silence (exit 4), not waited for for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_is_given_up_on() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("address"));
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let output = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["status", "--url", &url, "ocr-1-anything"])
            .output()
            .expect("the binary runs")
    })
    .await
    .expect("the CLI ran");
    held.abort();
    assert_eq!(output.status.code(), Some(4), "{output:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_service_exits_4_with_the_url() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let dir = scratch("down");
    let file = write(&dir, "receipt.png", &corner_market_png());
    let output = Command::new(BIN)
        .args(["upload", "--url", &url, &file])
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&url) && stderr.contains("is it running"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("is it running").count(),
        1,
        "said once: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn job_control_and_listing_commands_and_a_closed_pipe() {
    let app = TestApp::serve().await;
    let dir = scratch("control");
    let file = write(&dir, "receipt.png", &corner_market_png());
    let delayed = cli(&app, &["upload", "--json", "--delay", "600000", &file]);
    let job_id = json_lines(&delayed)[0]["jobId"]
        .as_str()
        .unwrap()
        .to_string();

    let output = cli(&app, &["cancel", &job_id]);
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(body["state"], "cancelled", "{body}");
    let output = cli(&app, &["retry", &job_id]);
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_ne!(body["state"], "cancelled", "{body}");

    let output = cli(&app, &["queue", "pause"]);
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(body["paused"], true, "{body}");
    let output = cli(&app, &["queue", "resume"]);
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(body["paused"], false, "{body}");

    let output = cli(&app, &["receipts", "--limit", "5"]);
    let page: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(page["receipts"][0]["jobId"], job_id.as_str(), "{page}");

    // The listing written into a pipe whose reader is gone, as with
    // `| head` once head has exited: the command stops on SIGPIPE, as Unix
    // tools do, with no panic.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(BIN)
        .arg("receipts")
        .env("RECEIPT_OCR_URL", &app.address)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs")
        .wait_with_output()
        .expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{output:?}");
}

/// Requests a [`CountingProxy`] passed on, by method and path.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// A plain HTTP proxy in front of the service that records each request
/// and, with `refuse_events`, answers the live-events endpoint 404 as a
/// server without it (or a proxy that blocks streams) would.
async fn counting_proxy(app: &TestApp, refuse_events: bool) -> (String, Seen) {
    use poem::{Body, Response, handler, http::StatusCode, web::Data};

    #[handler]
    async fn forward(
        request: &poem::Request,
        body: Body,
        target: Data<&(String, bool, Seen)>,
    ) -> Response {
        let (upstream, refuse_events, seen) = target.0;
        let path = request.uri().path().to_string();
        seen.lock()
            .unwrap()
            .push((request.method().to_string(), path.clone()));
        if *refuse_events && path.ends_with("/events") {
            return Response::builder().status(StatusCode::NOT_FOUND).finish();
        }
        let url = format!(
            "{upstream}{}",
            request.uri().path_and_query().map_or("", |p| p.as_str())
        );
        let mut outgoing = reqwest::Client::new().request(request.method().clone(), url);
        for (name, value) in request.headers() {
            if name != "host" {
                outgoing = outgoing.header(name, value);
            }
        }
        let body = body.into_bytes().await.unwrap_or_default();
        let answer = outgoing
            .body(body)
            .send()
            .await
            .expect("the service answers");
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            response = response.header(name, value);
        }
        // Streamed through, so Server-Sent Events arrive as they are sent.
        let chunks = futures::stream::unfold(answer, |mut answer| async move {
            match answer.chunk().await {
                Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), answer)),
                _ => None,
            }
        });
        response.body(Body::from_bytes_stream(chunks))
    }

    let seen = Seen::default();
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let routes = poem::EndpointExt::data(
        poem::Route::new().at("/*path", forward),
        (app.address.clone(), refuse_events, seen.clone()),
    );
    let listener = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
    tokio::spawn(poem::Server::new(listener).run(routes));
    crate::helpers::wait_for(|| {
        let address = address.clone();
        async move {
            reqwest::get(format!("{address}/health/live"))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    (address, seen)
}

fn cli_at(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RECEIPT_OCR_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the receipt-ocr binary runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_wait_follows_the_live_events_and_polls_only_when_they_are_refused() {
    let app = TestApp::serve().await;
    let dir = scratch("follow");
    let file = write(&dir, "r.png", &corner_market_png());

    for refuse_events in [false, true] {
        let (url, seen) = counting_proxy(&app, refuse_events).await;
        let output = tokio::task::spawn_blocking({
            let file = file.clone();
            move || cli_at(&url, &["upload", "--wait", "--json", &file])
        })
        .await
        .unwrap();
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        let line = &json_lines(&output)[0];
        assert_eq!(line["state"], "completed", "{line}");
        let job_id = line["jobId"].as_str().unwrap();
        let seen = seen.lock().unwrap().clone();
        let count = |path: String| {
            seen.iter()
                .filter(|(m, p)| m == "GET" && *p == path)
                .count()
        };
        let events = count(format!("/api/job/{job_id}/events"));
        let polls = count(format!("/api/job/{job_id}"));
        if refuse_events {
            assert_eq!(events, 1, "{seen:?}");
            assert!(polls >= 1, "fell back to polling: {seen:?}");
        } else {
            assert_eq!((events, polls), (1, 0), "followed the events: {seen:?}");
        }
    }
}
