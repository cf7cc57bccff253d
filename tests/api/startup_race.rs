//! Processes started at the same moment against a database that does not
//! exist yet: one creates it, the others wait for it, all of them come up.

use crate::helpers::{Process, free_port, isolated_settings, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn processes_started_together_against_a_missing_database_all_come_up() {
    let base = isolated_settings();
    let mut processes = Vec::new();
    let mut ports = Vec::new();
    // Four API processes and two workers, started without waiting.
    for role in ["api", "api", "api", "api", "worker", "worker"] {
        let mut settings = base.clone();
        settings.http.port = free_port();
        settings.queue.worker_name = Some(format!("race-{}", settings.http.port));
        let extra = [("OCR_ENGINE", "tesseract"), ("OCR_CONCURRENCY", "1")];
        processes.push(Process::start_with(role, &settings, &extra));
        ports.push(settings.http.port);
    }
    let http = reqwest::Client::new();
    for (process, port) in processes.iter_mut().zip(&ports) {
        let url = format!("http://127.0.0.1:{port}/health/ready");
        wait_for(|| {
            if let Some(status) = process.has_exited() {
                panic!("a process started against the missing database exited: {status}");
            }
            let ready = http.get(&url).send();
            async move { (ready.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_connects_create_and_migrate_a_missing_database_once() {
    let url = isolated_settings().database.url;
    let connects = (0..8).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { receipt_ocr::store::Db::connect(&url).await })
    });
    for connected in futures::future::join_all(connects).await {
        let db = connected
            .expect("the task ran")
            .expect("every connect succeeds");
        assert_eq!(db.count_receipts().await.expect("the table exists"), 0);
    }
}
