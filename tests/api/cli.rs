//! The client commands as a user runs them: `upload --wait` with progress
//! bars on a terminal (a pseudo-terminal from `script`), `--json` lines,
//! exit codes for completed / failed / unreachable, a folder of files, the
//! job-control and listing commands, and a closed pipe without a panic.

use std::path::Path;
use std::process::{Command, Output};

use image::ImageFormat;
use serde_json::Value;

use crate::helpers::{TestApp, free_port};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png, encode, render};

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
    assert!(output.stderr.is_empty(), "no bars with --json");

    // A corrupt image among good ones: its job fails, exit code 2.
    let jpeg = encode(&render(CORNER_MARKET.lines), ImageFormat::Jpeg);
    let bad = write(&dir, "c.jpg", &jpeg[..jpeg.len() / 3]);
    let output = cli(&app, &["upload", "--wait", "--json", &bad]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(json_lines(&output)[0]["state"], "failed");

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
