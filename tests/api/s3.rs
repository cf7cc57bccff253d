//! Blobs on a real S3-compatible server: moto's `moto_server` (installed by
//! `scripts/deps.sh`), started by each test on a free port. The service
//! runs as `api` and `worker` subprocesses, because the S3 client takes its
//! endpoint and keys from `AWS_*` variables, which a test must not set in
//! its own (shared, multi-threaded) process.

use std::process::{Child, Command, Stdio};

use receipt_ocr::config::Settings;
use receipt_ocr::job::JobState;
use receipt_ocr::jobs::{JobStatusView, UploadAccepted};
use serde_json::Value;

use crate::helpers::{PATIENCE, Process, command, free_port, isolated_settings, wait_for};
use crate::support::receipt_image::{CORNER_MARKET, corner_market_png};

/// moto's server, pinned by `scripts/deps.sh`; `MOTO_SERVER` overrides.
fn moto_server_binary() -> String {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return path;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = std::env::var("XDG_CACHE_HOME").unwrap_or_else(|_| format!("{home}/.cache"));
    let pinned = format!("{cache}/receipt-ocr/moto-5.2.1/bin/moto_server");
    if std::path::Path::new(&pinned).exists() {
        pinned
    } else {
        "moto_server".into()
    }
}

/// An S3 server of this test's own, killed when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    async fn start() -> S3Server {
        let port = free_port();
        let child = Command::new(moto_server_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server (run scripts/deps.sh to install it)");
        let server = S3Server { child, port };
        let http = reqwest::Client::new();
        wait_for(|| async {
            let answer = http.get(server.endpoint()).send().await;
            answer.ok().map(|_| ())
        })
        .await;
        server
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// moto takes unsigned requests, enough to set a test's bucket up.
    async fn create_bucket(&self, bucket: &str) {
        let url = format!("{}/{bucket}", self.endpoint());
        let created = reqwest::Client::new().put(url).send().await;
        assert!(created.expect("PUT bucket").status().is_success());
    }

    /// Remove every bucket with what is in it (moto's reset: it refuses
    /// unsigned deletes), as an operator's mistake would.
    async fn remove_buckets(&self) {
        let url = format!("{}/moto-api/reset", self.endpoint());
        let reset = reqwest::Client::new().post(url).send().await;
        assert!(reset.expect("POST reset").status().is_success());
    }

    async fn put_object(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        let url = format!("{}/{bucket}/{key}", self.endpoint());
        let put = reqwest::Client::new().put(url).body(bytes).send().await;
        assert!(put.expect("PUT object").status().is_success());
    }

    /// The keys stored under `prefix` in `bucket` (ListObjectsV2).
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint());
        let listing = reqwest::get(url).await.expect("list the bucket");
        let xml = listing.text().await.expect("a listing");
        xml.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_string()))
            .collect()
    }

    /// Freeze the server (SIGSTOP): connections are still accepted by the
    /// kernel but nothing answers, as with a hung server or a partition.
    fn freeze(&self) {
        assert!(self.signal(libc::SIGSTOP), "SIGSTOP sent");
    }

    fn thaw(&self) {
        assert!(self.signal(libc::SIGCONT), "SIGCONT sent");
    }

    /// False once the process is gone.
    fn signal(&self, signal: libc::c_int) -> bool {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill only sends a signal to our own (unreaped) child.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    /// Kill the server, as a crash or an outage would.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // A frozen process dies of SIGKILL all the same.
        self.stop();
    }
}

/// A test's settings with blobs under its own prefix of `bucket`.
fn s3_settings(bucket: &str) -> Settings {
    let mut settings = isolated_settings();
    settings.blobs.location = format!("s3://{bucket}/{}", settings.queue.name);
    settings.http.port = free_port();
    settings
}

/// The `AWS_*` variables a process needs for `server`.
fn aws_env(server: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", server.endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        // A frozen server is given up on quickly (the default is 30 s).
        ("AWS_TIMEOUT", "1s".into()),
    ]
}

/// `receipt-ocr <subcommand>` against `server`.
fn s3_command(subcommand: &str, settings: &Settings, server: &S3Server) -> Command {
    let env = aws_env(server);
    let extra: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    command(subcommand, settings, &extra)
}

fn start(subcommand: &str, settings: &Settings, server: &S3Server) -> Process {
    Process::spawn(s3_command(subcommand, settings, server))
}

/// A subprocess's HTTP address, once it answers ready.
async fn ready_address(settings: &Settings) -> String {
    let address = format!("http://127.0.0.1:{}", settings.http.port);
    let http = reqwest::Client::new();
    wait_for(|| async {
        let ready = http.get(format!("{address}/health/ready")).send().await;
        ready.ok().filter(|r| r.status() == 200).map(|_| ())
    })
    .await;
    address
}

async fn upload(address: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name("receipt.png");
    let form = reqwest::multipart::Form::new().part("file", part);
    let url = format!("{address}/api/upload");
    let request = reqwest::Client::new().post(url).multipart(form);
    request.send().await.expect("upload request")
}

async fn job(address: &str, job_id: &str) -> JobStatusView {
    let answer = reqwest::get(format!("{address}/api/job/{job_id}")).await;
    answer.expect("job request").json().await.expect("a job")
}

async fn post(address: &str, path: &str) {
    let answer = reqwest::Client::new()
        .post(format!("{address}{path}"))
        .send()
        .await;
    assert!(answer.expect(path).status().is_success(), "POST {path}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_is_stored_in_s3_and_read_by_a_separate_worker_process() {
    let s3 = S3Server::start().await;
    s3.create_bucket("receipts").await;
    let settings = s3_settings("receipts");
    let _api = start("api", &settings, &s3);
    let address = ready_address(&settings).await;

    let response = upload(&address, corner_market_png()).await;
    assert_eq!(response.status(), 200);
    let accepted: UploadAccepted = response.json().await.expect("an UploadAccepted");
    let stored = s3.keys("receipts", &settings.queue.name).await;
    assert_eq!(stored.len(), 1, "one image in the bucket: {stored:?}");

    let mut worker = settings.clone();
    worker.http.port = free_port();
    let _worker = start("worker", &worker, &s3);
    let job = wait_for(|| async {
        let job = job(&address, &accepted.job_id).await;
        job.state.is_final().then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Completed, "{job:?}");
    let store = job.result.as_ref().and_then(|r| r.store_name.as_deref());
    assert_eq!(store, Some(CORNER_MARKET.store));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_stops_start_up_with_a_message_naming_it() {
    let s3 = S3Server::start().await;
    let settings = s3_settings("no-such-bucket");
    let mut command = s3_command("api", &settings, &s3);
    command.stderr(Stdio::piped());
    let mut api = Process::spawn(command);
    let log = api.stderr_lines();

    let status = api.exited_within(PATIENCE).await.expect("start-up stops");
    assert!(!status.success(), "exit status: {status}");
    let log = log.all().await;
    assert!(
        log.contains("the bucket `no-such-bucket` does not exist") && log.contains("BLOB_STORE"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_s3_server_stops_start_up_with_the_url_tried() {
    let mut s3 = S3Server::start().await;
    s3.stop();
    let settings = s3_settings("receipts");
    let mut command = s3_command("worker", &settings, &s3);
    command.stderr(Stdio::piped());
    let mut worker = Process::spawn(command);
    let log = worker.stderr_lines();

    let status = worker
        .exited_within(PATIENCE)
        .await
        .expect("start-up stops");
    assert!(!status.success(), "exit status: {status}");
    let log = log.all().await;
    let url = format!("{}/receipts/", s3.endpoint());
    assert!(
        log.contains(&url) && log.contains("is it running and reachable?"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_while_s3_is_down_answers_503_saying_what_to_check() {
    let mut s3 = S3Server::start().await;
    s3.create_bucket("receipts").await;
    let settings = s3_settings("receipts");
    let _api = start("api", &settings, &s3);
    let address = ready_address(&settings).await;
    s3.stop();

    let response = upload(&address, corner_market_png()).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(body["error"], "blob_store_unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is it running") && message.contains("AWS_ENDPOINT"),
        "{body}"
    );
}

/// An `api` and a `worker` process on `s3`'s bucket `receipts`, with 50
/// attempts a job, and one upload held in the paused queue.
struct HeldUpload {
    settings: Settings,
    address: String,
    job_id: String,
    _processes: [Process; 2],
}

impl HeldUpload {
    async fn start(s3: &S3Server) -> HeldUpload {
        s3.create_bucket("receipts").await;
        let mut settings = s3_settings("receipts");
        settings.queue.attempts = 50.try_into().expect("non-zero");
        let api = start("api", &settings, s3);
        let address = ready_address(&settings).await;
        let mut worker = settings.clone();
        worker.http.port = free_port();
        let worker_process = start("worker", &worker, s3);
        ready_address(&worker).await;
        post(&address, "/api/queue/pause").await;
        let response = upload(&address, corner_market_png()).await;
        let accepted: UploadAccepted = response.json().await.expect("an UploadAccepted");
        HeldUpload {
            settings,
            address,
            job_id: accepted.job_id,
            _processes: [api, worker_process],
        }
    }

    async fn job(&self) -> JobStatusView {
        job(&self.address, &self.job_id).await
    }

    /// The job after its first failed attempt, still to be retried, and
    /// its reason. (The reason lands just after the attempt is counted:
    /// the worker writes it once BullMQ has moved the job to be retried.)
    async fn failed_once(&self) -> String {
        let failed = wait_for(|| async {
            let job = self.job().await;
            (job.attempts_made >= 1 && job.failed_reason.is_some()).then_some(job)
        })
        .await;
        assert!(!failed.state.is_final(), "{failed:?}");
        failed.failed_reason.clone().unwrap_or_default()
    }

    async fn completes(&self) {
        let job = wait_for(|| async {
            let job = self.job().await;
            job.state.is_final().then_some(job)
        })
        .await;
        assert_eq!(job.state, JobState::Completed, "{job:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_image_cannot_be_read_from_s3_is_retried_until_it_can() {
    let s3 = S3Server::start().await;
    let held = HeldUpload::start(&s3).await;
    // Let go once S3 stops answering.
    s3.freeze();
    post(&held.address, "/api/queue/resume").await;

    let reason = held.failed_once().await;
    assert!(reason.contains("blob store"), "{reason}");
    s3.thaw();
    held.completes().await;
}

/// A bucket removed after start-up (an operator's mistake) answers 404 as
/// a missing image would: the job is retried, saying the bucket is gone,
/// instead of failing for good as "image missing"; once the bucket and
/// image are back it completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_gone_after_start_up_is_retried_not_taken_for_a_missing_image() {
    let s3 = S3Server::start().await;
    let held = HeldUpload::start(&s3).await;
    let stored = s3.keys("receipts", &held.settings.queue.name).await;
    let [key] = stored.as_slice() else {
        panic!("one image stored: {stored:?}")
    };
    s3.remove_buckets().await;
    post(&held.address, "/api/queue/resume").await;

    let reason = held.failed_once().await;
    assert!(reason.contains("does not exist"), "{reason}");
    // Held while the bucket and the image come back (an empty bucket alone
    // would rightly make the image missing for good).
    post(&held.address, "/api/queue/pause").await;
    wait_for(|| async { (held.job().await.state != JobState::Active).then_some(()) }).await;
    s3.create_bucket("receipts").await;
    s3.put_object("receipts", key, corner_market_png()).await;
    post(&held.address, "/api/queue/resume").await;
    held.completes().await;
}
