//! A `receipt-ocr` process started by a test, reached over HTTP: for what
//! is per process (traces, logs, metrics), which an in-process app would
//! share with every other test of the binary.

use std::time::Duration;

use receipt_ocr::config::Settings;
use serde_json::Value;

use crate::helpers::{Process, free_port, wait_for};

pub struct RemoteApp {
    pub address: String,
    pub http: reqwest::Client,
    pub process: Process,
}

impl RemoteApp {
    /// Start `receipt-ocr <subcommand>` on a free port with `extra`
    /// variables; answers once its liveness probe does.
    pub async fn start(subcommand: &str, settings: &Settings, extra: &[(&str, &str)]) -> Self {
        let mut settings = settings.clone();
        settings.http.port = free_port();
        let command = crate::helpers::command(subcommand, &settings, extra);
        Self::spawn(command, settings.http.port).await
    }

    /// Start an adjusted command (see [`crate::helpers::command`]).
    pub async fn spawn(command: std::process::Command, port: u16) -> Self {
        let app = RemoteApp {
            address: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            process: Process::spawn(command),
        };
        wait_for(|| async {
            let live = app.http.get(app.url("/health/live")).send().await;
            live.is_ok_and(|r| r.status() == 200).then_some(())
        })
        .await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    /// Upload `bytes`; the answer's status and JSON.
    pub async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("receipt.png");
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = self
            .http
            .post(self.url("/api/upload"))
            .multipart(form)
            .send()
            .await
            .expect("upload request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    /// Upload `bytes` and return the job id; fails the test on a refusal.
    pub async fn upload_ok(&self, bytes: Vec<u8>) -> String {
        let (status, body) = self.upload(bytes).await;
        assert_eq!(status, 200, "upload refused: {body}");
        body["jobId"].as_str().expect("a jobId").to_string()
    }

    /// Poll `GET /api/job/{id}` until the job is completed or failed.
    pub async fn wait_for_final(&self, job_id: &str) -> Value {
        wait_for(|| async {
            let (_, body) = self.get(&format!("/api/job/{job_id}")).await;
            let job: Value = serde_json::from_str(&body).ok()?;
            matches!(job["state"].as_str(), Some("completed" | "failed")).then_some(job)
        })
        .await
    }

    pub async fn graphql(&self, query: &str) -> Value {
        let body = serde_json::json!({ "query": query });
        let response = self.http.post(self.url("/graphql")).json(&body);
        let response = response.send().await.expect("graphql");
        response.json().await.expect("JSON")
    }
}
