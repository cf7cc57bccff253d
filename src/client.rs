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

impl UploadSchedule {
    /// How long the job is held before it may start: its delay, or the
    /// time until `process_at` (zero for a time past or not understood,
    /// which the service refuses anyway).
    pub fn held_for(&self) -> Duration {
        let until = |at: &String| {
            let at = chrono::DateTime::parse_from_rfc3339(at).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .ok()
        };
        match (self.delay, &self.process_at) {
            (Some(ms), _) => Duration::from_millis(ms),
            (None, Some(at)) => until(at).unwrap_or_default(),
            (None, None) => Duration::ZERO,
        }
    }
}

/// How often `wait` asks for the job when it cannot follow its events.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// How long connecting, and a silence in an answer, may last.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SILENCE_TIMEOUT: Duration = Duration::from_secs(60);

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
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                // A server that accepted the connection and went silent
                // (live streams send a comment every 15 s) is given up on.
                .read_timeout(SILENCE_TIMEOUT)
                .build()
                .expect("a client with timeouts builds"),
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
        let text = response
            .text()
            .await
            .context("the service's answer was cut off")?;
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            // A proxy's error page, say: its status says more than its body.
            let start: String = text.chars().take(120).collect();
            let hint = if status.is_server_error() {
                "; a server error, try again later"
            } else {
                ""
            };
            let message = format!("the service answered with non-JSON ({start:?}){hint}");
            ErrorAnswer { status, message }
        })?;
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or("no message").to_string();
            return Err(ErrorAnswer { status, message }.into());
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

    /// Follow the job until it is completed, failed or cancelled, or
    /// `timeout` passes; `seen` gets every status on the way. Over the
    /// job's live events (one request; the server pushes each step), or
    /// by polling when those cannot be had (a proxy in between that
    /// refuses or cuts the stream, a server without the endpoint).
    pub async fn wait(
        &self,
        job_id: &str,
        timeout: Duration,
        mut seen: impl FnMut(&Value),
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.follow(job_id, &mut seen)).await {
            Ok(Some(last)) => return Ok(last),
            Ok(None) => {}
            Err(_) => bail!("job {job_id} is not finished after {timeout:?}"),
        }
        self.poll(job_id, timeout.saturating_sub(started.elapsed()), seen)
            .await
    }

    /// The job's Server-Sent Events up to its final state; `None` when the
    /// stream could not be opened or ended early (the caller polls).
    async fn follow(&self, job_id: &str, seen: &mut impl FnMut(&Value)) -> Option<Value> {
        let url = format!("{}/api/job/{job_id}/events", self.base_url);
        let request = self.http.get(url).header("accept", "text/event-stream");
        let mut response = self.with_key(request).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let mut events = EventReader::default();
        while let Some(chunk) = response.chunk().await.ok()? {
            // An event without end (not a stream of ours): polled instead.
            for status in events.push(&chunk)? {
                seen(&status);
                if is_final(&status) {
                    return Some(status);
                }
            }
        }
        None
    }

    async fn poll(
        &self,
        job_id: &str,
        timeout: Duration,
        mut seen: impl FnMut(&Value),
    ) -> anyhow::Result<Value> {
        let started = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut state = Value::Null;
        loop {
            match self.status(job_id).await {
                Ok(status) => {
                    failing_since = None;
                    seen(&status);
                    if is_final(&status) {
                        return Ok(status);
                    }
                    state = status["state"].clone();
                }
                // The service restarting, or its Redis away for a moment:
                // the job is still there; asked again for a while.
                Err(e) if passes(&e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > OUTAGE_PATIENCE {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
            if started.elapsed() > timeout {
                bail!("job {job_id} is still {state} after {timeout:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
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

/// How long following a job goes on asking while the service does not
/// answer, or answers with a server error.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(60);

/// Whether `error` may pass: the service unreachable or answering 5xx.
fn passes(error: &anyhow::Error) -> bool {
    error.downcast_ref::<Unreachable>().is_some()
        || error
            .downcast_ref::<ErrorAnswer>()
            .is_some_and(|answer| answer.status.is_server_error())
}

/// The service answered with an error status (or not with JSON).
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ErrorAnswer {
    pub status: reqwest::StatusCode,
    pub message: String,
}

/// The service did not answer at all (exit code 4 on the command line).
#[derive(Debug, thiserror::Error)]
#[error("could not reach the service at {url} — is it running?")]
pub struct Unreachable {
    pub url: String,
    #[source]
    pub source: reqwest::Error,
}

/// Server-Sent Events as they arrive in chunks: each complete event's
/// `data` parsed as JSON (comments and keep-alives skipped).
#[derive(Default)]
struct EventReader {
    pending: Vec<u8>,
}

/// The longest event kept while it arrives: a job's status with its
/// result is a few KB; a stream that never ends an event is not ours.
const MAX_EVENT_BYTES: usize = 1 << 20;

impl EventReader {
    /// The events `chunk` completes; `None` once an event grows past
    /// [`MAX_EVENT_BYTES`] without ending.
    fn push(&mut self, chunk: &[u8]) -> Option<Vec<Value>> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = find_blank_line(&self.pending) {
            let block: Vec<u8> = self.pending.drain(..end).collect();
            let text = String::from_utf8_lossy(&block);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            if let Ok(value) = serde_json::from_str(&data.join("\n")) {
                events.push(value);
            }
        }
        (self.pending.len() <= MAX_EVENT_BYTES).then_some(events)
    }
}

/// The end of the first event (after its blank line), `\n\n` or `\r\n\r\n`.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole_and_comments_are_skipped() {
        let mut reader = EventReader::default();
        let started = reader.push(b": keep-alive\n\ndata: {\"state\":");
        assert_eq!(started, Some(vec![]));
        let events = reader
            .push(
                b"\"active\",\"progress\":30}\nid: 1-0\n\ndata: {\"state\":\"completed\"}\r\n\r\n",
            )
            .expect("events");
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0]["progress"], 30);
        assert!(is_final(&events[1]));
        assert!(reader.pending.is_empty());
    }

    #[test]
    fn a_scheduled_upload_is_held_for_its_delay_or_until_its_time() {
        let schedule = |delay, process_at: Option<&str>| UploadSchedule {
            priority: None,
            delay,
            process_at: process_at.map(String::from),
        };
        assert_eq!(schedule(None, None).held_for(), Duration::ZERO);
        let delayed = schedule(Some(7_200_000), None).held_for();
        assert_eq!(delayed, Duration::from_secs(7200));
        let in_two_hours = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
        let held = schedule(None, Some(&in_two_hours)).held_for();
        assert!(
            held > Duration::from_secs(7100) && held <= Duration::from_secs(7200),
            "{held:?}"
        );
        let past = schedule(None, Some("2020-01-01T00:00:00Z")).held_for();
        assert_eq!(past, Duration::ZERO);
        assert_eq!(schedule(None, Some("soon")).held_for(), Duration::ZERO);
    }

    #[test]
    fn an_event_that_never_ends_is_given_up_past_its_limit() {
        let mut reader = EventReader::default();
        let line = vec![b'x'; 64 * 1024];
        let mut pushes = 0;
        while reader.push(&line).is_some() {
            pushes += 1;
            assert!(pushes <= MAX_EVENT_BYTES / line.len(), "still kept");
        }
        assert_eq!(pushes, MAX_EVENT_BYTES / line.len());
    }
}
