//! Start-up failures stop the process with a message that names what failed
//! and how to fix it, never a panic.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_serve(env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_receipt-ocr"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    // A start-up that should fail but serves instead must not hang the suite.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the binary") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("receipt-ocr did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr);
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_bad_setting_stops_start_up_naming_the_variable() {
    let (code, stderr) = run_serve(&[("OCR_CONCURRENCY", "zero")]);
    assert_ne!(code, 0);
    assert!(stderr.contains("OCR_CONCURRENCY"), "stderr: {stderr}");
    let (code, stderr) = run_serve(&[("OCR_CONCURRENCY", "0")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("OCR_CONCURRENCY") && stderr.contains("at least 1"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn a_bad_log_format_or_traces_filter_stops_start_up_naming_the_variable() {
    let (code, stderr) = run_serve(&[("LOG_FORMAT", "xml")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("LOG_FORMAT") && stderr.contains("json"),
        "stderr: {stderr}"
    );
    let (code, stderr) = run_serve(&[("OTEL_TRACES_FILTER", "receipt_ocr=loud")]);
    assert_ne!(code, 0);
    assert!(stderr.contains("OTEL_TRACES_FILTER"), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn an_unreachable_redis_stops_start_up_with_the_url_and_a_hint() {
    let (code, stderr) = run_serve(&[("REDIS_URL", "redis://127.0.0.1:1")]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("redis://127.0.0.1:1") && stderr.contains("redis-cli"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn an_unreachable_postgres_stops_start_up_with_the_url_and_a_hint() {
    let (code, stderr) = run_serve(&[(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:1/receipt_ocr",
    )]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("pg_isready"),
        "stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}
