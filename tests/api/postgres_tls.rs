//! TLS to PostgreSQL: DATABASE_URL's `sslmode=require` with `sslrootcert`
//! reads receipts end to end on a server that refuses plain connections;
//! without TLS, without the server's authority or with a certificate for
//! another name, start-up stops with a message that says why.

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::startup::{Application, Role};

use crate::helpers::{TestApp, isolated_settings};
use crate::private_servers::PrivatePostgres;
use crate::support::receipt_image::corner_market_png;

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls_reads_a_receipt_and_refuses_an_unknown_authority() {
    let (postgres, authority) = PrivatePostgres::start_tls().await;
    let mut settings = isolated_settings();
    let plain = postgres.url("receipts");

    // The server refuses a connection without TLS: it really takes TLS below.
    settings.database.url = plain.clone();
    start_up_stops_saying(&settings, "no encryption").await;

    // sslmode=require checks the certificate: the system's roots do not
    // know the test's authority.
    settings.database.url = format!("{plain}?sslmode=require");
    start_up_stops_saying(&settings, "UnknownIssuer").await;

    // With the authority, the name is still checked: the certificate is
    // for 127.0.0.1, not localhost.
    let by_name = plain.replace("127.0.0.1", "localhost");
    settings.database.url = format!(
        "{by_name}?sslmode=verify-full&sslrootcert={}",
        authority.display()
    );
    start_up_stops_saying(&settings, "not valid for name").await;

    settings.database.url = format!(
        "{plain}?sslmode=verify-full&sslrootcert={}",
        authority.display()
    );
    let app = TestApp::spawn(Role::Serve, settings).await;
    let job_id = app.upload_ok(corner_market_png()).await;
    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let stored = app.db.receipt_by_job_id(&job_id).await.expect("a query");
    assert_eq!(stored.expect("the row").row.status, "completed");
}

/// Start-up with `settings` fails, and its message contains `words`.
async fn start_up_stops_saying(settings: &Settings, words: &str) {
    let refused = Application::build(settings.clone(), Role::Api)
        .await
        .err()
        .expect("start-up stops");
    let message = format!("{refused:#}");
    assert!(message.contains(words), "{message}");
}
