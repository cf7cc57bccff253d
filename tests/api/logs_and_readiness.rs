//! An `api` process whose blob store cannot be written, as when a volume
//! comes up owned by another user: readiness says so, an upload gets 503,
//! and the warning logged inside that request is a JSON line (the default
//! when stderr is not a terminal) carrying the trace and span ids of the
//! request's span.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::helpers::{command, free_port, isolated_settings, wait_for};
use crate::otlp::{SpanSink, as_env, event_attr};
use crate::remote::RemoteApp;
use crate::support::receipt_image::corner_market_png;

/// The unprivileged user the process runs as when the tests run as root,
/// who may write anywhere whatever a directory's mode says.
const NOBODY: u32 = 65534;

fn set_mode(dir: &Path, mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_blob_store_fails_readiness_and_the_upload_logs_json_with_its_trace_id() {
    let sink = SpanSink::start().await;
    let mut settings = isolated_settings();
    settings.http.port = free_port();
    let blobs = Path::new(&settings.blobs.location).to_path_buf();
    std::fs::create_dir_all(&blobs).unwrap();
    set_mode(&blobs, 0o555);

    let env = sink.env("receipt-ocr-api");
    let mut api = command("api", &settings, &as_env(&env));
    // Not a terminal: JSON lines without LOG_FORMAT being set.
    api.stderr(Stdio::piped()).env_remove("LOG_FORMAT");
    // SAFETY: geteuid only reads the process's user id.
    if unsafe { libc::geteuid() } == 0 {
        api.uid(NOBODY).gid(NOBODY);
    }
    let mut app = RemoteApp::spawn(api, settings.http.port).await;
    let lines = app.process.stderr_lines();

    let (status, body) = app.get("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("blob store") && body.contains(&settings.blobs.location),
        "readiness names the blob store: {body}"
    );

    let (status, body) = app.upload(corner_market_png()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "blob_store_unavailable", "{body}");

    let server = sink
        .wait_for(|spans| {
            spans
                .iter()
                .find(|s| s.name() == "POST /api/upload")
                .cloned()
        })
        .await;
    assert!(server.is_error(), "a 5xx marks the span: {server:?}");
    assert_eq!(server.int_attr("http.response.status_code"), Some(503));
    assert_eq!(
        server.str_attr("error.type").as_deref(),
        Some("blob_store_unavailable")
    );
    let exception = server.event("exception").expect("the exception recorded");
    assert!(event_attr(exception, "exception.message").is_some_and(|m| m.contains("blob store")));

    let line: Value = wait_for(|| {
        let found = lines.lock().unwrap().iter().find_map(|line| {
            let json: Value = serde_json::from_str(line).ok()?;
            (json["error.type"] == "blob_store_unavailable").then_some(json)
        });
        async move { found }
    })
    .await;
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["trace_id"], server.trace_id(), "{line}");
    assert_eq!(line["span_id"], server.span_id(), "{line}");
    assert!(
        line["message"]
            .as_str()
            .is_some_and(|m| m.contains("blob store"))
    );
    let logged = lines.lock().unwrap().clone();
    for line in &logged {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
        assert!(!line.contains('\u{1b}'), "colour codes in logs: {line}");
    }

    // Writable again: ready again, with no restart.
    set_mode(&blobs, 0o777);
    wait_for(|| async { (app.get("/health/ready").await.0 == 200).then_some(()) }).await;
}
