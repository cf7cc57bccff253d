//! Job control from the API: priorities, delays and `processAt`, and the
//! 400s for scheduling fields that cannot be used.

use std::time::Duration;

use receipt_ocr::job::JobState;
use receipt_ocr::startup::Role;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{TestApp, isolated_settings};
use crate::support::receipt_image::corner_market_png;

fn form(fields: &[(&'static str, String)]) -> Form {
    let file = Part::bytes(corner_market_png()).file_name("receipt.png");
    fields
        .iter()
        .fold(Form::new().part("file", file), |form, (name, value)| {
            form.text(*name, value.clone())
        })
}

impl TestApp {
    async fn upload_scheduled(&self, fields: &[(&'static str, String)]) -> String {
        let response = self.upload_form(form(fields)).await;
        assert_eq!(response.status(), 200, "{fields:?}");
        let body: Value = response.json().await.expect("JSON");
        body["jobId"].as_str().expect("jobId").to_string()
    }

    /// A millisecond field of the job's BullMQ hash.
    async fn job_millis(&self, job_id: &str, field: &str) -> i64 {
        let hash = self.job_hash(job_id).await;
        let raw = hash
            .get(field)
            .unwrap_or_else(|| panic!("{field} in {hash:?}"));
        raw.parse().expect("milliseconds")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_uploads_start_first_then_prioritised_ones_by_priority() {
    let mut settings = isolated_settings();
    settings.ocr.concurrency = 1.try_into().expect("non-zero");
    // Uploads land while no worker runs, so all of them wait together.
    let api = TestApp::spawn(Role::Api, settings.clone()).await;
    let mut jobs = Vec::new();
    for priority in [Some(5), Some(1), None, Some(3), Some(2000)] {
        let fields: Vec<_> = priority
            .map(|p: u32| ("priority", p.to_string()))
            .into_iter()
            .collect();
        jobs.push((priority, api.upload_scheduled(&fields).await));
    }
    for (priority, job_id) in &jobs {
        let expected = match priority {
            Some(_) => JobState::Prioritized,
            None => JobState::Waiting,
        };
        assert_eq!(api.job_view(job_id).await.state, expected);
    }

    let _worker = TestApp::spawn(Role::Worker, settings).await;
    let mut started = Vec::new();
    for (priority, job_id) in &jobs {
        let job = api.wait_for_final(job_id).await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
        started.push((api.job_millis(job_id, "processedOn").await, *priority));
    }
    started.sort();
    let order: Vec<_> = started.into_iter().map(|(_, priority)| priority).collect();
    assert_eq!(order, [None, Some(1), Some(3), Some(5), Some(2000)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_upload_waits_at_least_its_delay_then_completes() {
    let app = TestApp::serve().await;
    let job_id = app.upload_scheduled(&[("delay", "1500".into())]).await;
    assert_eq!(app.job_view(&job_id).await.state, JobState::Delayed);

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let waited =
        app.job_millis(&job_id, "processedOn").await - app.job_millis(&job_id, "timestamp").await;
    assert!(waited >= 1500, "started after {waited} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_with_process_at_starts_no_earlier_than_that_time() {
    let app = TestApp::serve().await;
    let at = chrono::Utc::now() + Duration::from_millis(1500);
    let job_id = app
        .upload_scheduled(&[("processAt", at.to_rfc3339())])
        .await;
    assert_eq!(app.job_view(&job_id).await.state, JobState::Delayed);

    let job = app.wait_for_final(&job_id).await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let started = app.job_millis(&job_id, "processedOn").await;
    assert!(
        started >= at.timestamp_millis(),
        "started {started}, asked {at}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_unusable_scheduling_field_gets_a_400_naming_it_and_stores_nothing() {
    let app = TestApp::serve().await;
    let past = (chrono::Utc::now() - Duration::from_secs(60)).to_rfc3339();
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (vec![("priority", "0".into())], "priority"),
        (vec![("priority", "urgent".into())], "priority"),
        (vec![("priority", "2097153".into())], "priority"),
        (vec![("delay", "-1".into())], "delay"),
        (vec![("delay", "1s".into())], "delay"),
        (vec![("delay", "18446744073709551615".into())], "delay"),
        (
            vec![("delay", "10".into()), ("processAt", past.clone())],
            "processAt",
        ),
        (vec![("processAt", past)], "processAt"),
        (vec![("processAt", "tomorrow".into())], "processAt"),
        (vec![("colour", "red".into())], "colour"),
    ];
    for (fields, field) in cases {
        let response = app.upload_form(form(&fields)).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_field", "{fields:?}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{fields:?}: {message}");
    }
    assert_eq!(app.db.count_receipts().await.expect("count"), 0);
    assert!(app.blob_files().is_empty(), "no upload kept");
}
