//! The REST client behind the command line's client subcommands
//! (`upload`, `status`, `receipts`, `cancel`, `retry`, `queue`).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// When and in which order the service should read an upload.
#[derive(clap::Args, Default)]
pub struct UploadSchedule {
    /// 1 (highest) to 2097152; jobs without one are read before prioritized ones.
    #[arg(long)]
    pub priority: Option<u32>,
    /// Milliseconds before the job may start.
    #[arg(long, conflicts_with = "process_at")]
    pub delay: Option<u64>,
    /// When the job may start (RFC 3339, e.g. 2026-12-01T09:30:00Z).
    #[arg(long)]
    pub process_at: Option<String>,
}

/// Where and how to reach the service.
pub struct Client {
    pub base_url: String,
    pub api_key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base_url: &str, api_key: Option<String>) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            http: reqwest::Client::new(),
        }
    }

    fn with_key(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        }
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = self
            .with_key(request)
            .send()
            .await
            .map_err(|source| Unreachable {
                url: self.base_url.clone(),
                source,
            })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .context("the service answered with non-JSON")?;
        if !status.is_success() {
            bail!(
                "{status}: {}",
                body["message"].as_str().unwrap_or("no message")
            );
        }
        Ok(body)
    }

    /// Upload a file; returns the upload answer.
    pub async fn upload(&self, file: &Path, schedule: &UploadSchedule) -> anyhow::Result<Value> {
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
        let fields = [
            ("priority", schedule.priority.map(|p| p.to_string())),
            ("delay", schedule.delay.map(|d| d.to_string())),
            ("processAt", schedule.process_at.clone()),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                form = form.text(field, value);
            }
        }
        self.json(
            self.http
                .post(format!("{}/api/upload", self.base_url))
                .multipart(form),
        )
        .await
    }

    pub async fn status(&self, job_id: &str) -> anyhow::Result<Value> {
        self.json(self.http.get(format!("{}/api/job/{job_id}", self.base_url)))
            .await
    }

    /// Poll until the job is completed, failed or cancelled, or `timeout`
    /// passes; `seen` gets every status on the way.
    pub async fn wait(
        &self,
        job_id: &str,
        timeout: Duration,
        mut seen: impl FnMut(&Value),
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let status = self.status(job_id).await?;
            seen(&status);
            if is_final(&status) {
                return Ok(status);
            }
            if started.elapsed() > timeout {
                bail!(
                    "job {job_id} is still {} after {timeout:?}",
                    status["state"]
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn cancel(&self, job_id: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/job/{job_id}", self.base_url);
        self.json(self.http.delete(url)).await
    }

    pub async fn retry(&self, job_id: &str) -> anyhow::Result<Value> {
        let url = format!("{}/api/job/{job_id}/retry", self.base_url);
        self.json(self.http.post(url)).await
    }

    /// A page of receipts; `query` holds the listing's parameters.
    pub async fn receipts(&self, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = format!("{}/api/receipts", self.base_url);
        self.json(self.http.get(url).query(query)).await
    }

    /// The queue overview; `action` is `pause` or `resume` to change it.
    pub async fn queue(&self, action: Option<&str>) -> anyhow::Result<Value> {
        match action {
            None => {
                let url = format!("{}/api/queue", self.base_url);
                self.json(self.http.get(url)).await
            }
            Some(action) => {
                let url = format!("{}/api/queue/{action}", self.base_url);
                self.json(self.http.post(url)).await
            }
        }
    }
}

/// True once a job status will not change again.
pub fn is_final(status: &Value) -> bool {
    matches!(
        status["state"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// The service did not answer at all (exit code 4 on the command line).
#[derive(Debug, thiserror::Error)]
#[error("could not reach the service at {url} — is it running?")]
pub struct Unreachable {
    pub url: String,
    #[source]
    pub source: reqwest::Error,
}
