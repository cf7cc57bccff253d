//! Processes started at the same moment against a database that does not
//! exist yet: one creates it, the others wait for it, all of them come up;
//! and how many connections one process may open.

use diesel_async::RunQueryDsl;
use receipt_ocr::startup::Role;

use crate::helpers::{Process, TestApp, free_port, isolated_settings, wait_for};

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
    let database = isolated_settings().database;
    let connects = (0..8).map(|_| {
        let database = database.clone();
        tokio::spawn(async move {
            receipt_ocr::store::Db::connect(&database.url, database.max_connections).await
        })
    });
    for connected in futures::future::join_all(connects).await {
        let db = connected
            .expect("the task ran")
            .expect("every connect succeeds");
        assert_eq!(db.count_receipts().await.expect("the table exists"), 0);
    }
}

/// A process opens at most `DATABASE_MAX_CONNECTIONS` connections, however
/// many requests need one at once; with the default it opens more.
#[tokio::test(flavor = "multi_thread")]
async fn database_max_connections_caps_the_connections_a_process_opens() {
    let mut opened = Vec::new();
    for cap in [2, 16] {
        let mut settings = isolated_settings();
        settings.database.max_connections = cap.try_into().expect("non-zero");
        let app = TestApp::spawn(Role::Api, settings).await;
        let url = format!("{}/api/receipts", app.address);
        let listings = (0..32).map(|_| app.get_json(&url));
        futures::future::join_all(listings).await;
        opened.push(connections_to_its_database(&app).await);
    }
    assert!(
        opened[0] >= 1 && opened[0] <= 2,
        "with a cap of 2: {opened:?}"
    );
    assert!(opened[1] > 2, "with the default of 16: {opened:?}");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Connections PostgreSQL has open to the app's database, counted through
/// one of the app's own (so the count adds none).
async fn connections_to_its_database(app: &TestApp) -> i64 {
    let mut conn = app.db.conn().await.expect("a connection");
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()",
    )
    .get_result(&mut conn)
    .await
    .expect("the count");
    count.n
}
