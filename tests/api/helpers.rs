//! The test harness: a real service on a random port with its own database,
//! queue name and blob directory, plus typed helpers for each endpoint.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ractor::ActorRef;
use receipt_ocr::actors::{SupervisorMessage, SupervisorStats};
use receipt_ocr::config::Settings;
use receipt_ocr::jobs::{JobStatusView, ReceiptView, UploadAccepted};
use receipt_ocr::startup::{Application, Role};
use receipt_ocr::store::Db;
use receipt_ocr::store::models::ReceiptRow;
use serde_json::Value;
use tokio::sync::oneshot;

/// How long any wait in a test may last before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Settings isolated for one test: unique database, queue and blob folder.
pub fn isolated_settings() -> Settings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut settings = Settings::from_env().expect("settings from the environment");
    let base = std::env::var("TEST_DATABASE_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1".into());
    settings.database.url = format!("{base}/receipt_ocr_test_{}", &id[..16]);
    settings.queue.name = format!("test-{}", &id[..16]);
    settings.blobs.location = std::env::temp_dir()
        .join("receipt-ocr-tests")
        .join(&id[..16])
        .display()
        .to_string();
    settings.http.host = "127.0.0.1".into();
    settings.http.port = 0;
    settings.queue.rate_limit.max = 0;
    settings.queue.backoff = Duration::from_millis(100);
    settings.queue.worker_name = Some(format!("test-worker-{}", &id[..8]));
    settings
}

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub db: Db,
    pub http: reqwest::Client,
    pub supervisor: Option<ActorRef<SupervisorMessage>>,
    _shutdown: oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn(role: Role, settings: Settings) -> TestApp {
        let app = Application::build(settings.clone(), role)
            .await
            .expect("the application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.service.db.clone();
        let supervisor = app.supervisor();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            address,
            settings,
            db,
            http: reqwest::Client::new(),
            supervisor,
            _shutdown: tx,
        }
    }

    /// API and workers in one process, as `serve` runs them.
    pub async fn serve() -> TestApp {
        Self::spawn(Role::Serve, isolated_settings()).await
    }

    pub async fn upload_bytes(&self, bytes: Vec<u8>, file_name: &str) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string());
        let form = reqwest::multipart::Form::new().part("file", part);
        self.upload_form(form).await
    }

    pub async fn upload_form(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        self.http
            .post(format!("{}/api/upload", self.address))
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Upload and return the accepted job id.
    pub async fn upload_ok(&self, bytes: Vec<u8>) -> String {
        self.upload_accepted(bytes).await.job_id
    }

    /// Upload and return the typed answer; fails the test on a refusal.
    pub async fn upload_accepted(&self, bytes: Vec<u8>) -> UploadAccepted {
        let response = self.upload_bytes(bytes, "receipt.png").await;
        assert_eq!(
            response.status(),
            200,
            "upload refused: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("an UploadAccepted")
    }

    pub async fn job(&self, job_id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/job/{job_id}", self.address))
            .send()
            .await
            .expect("job request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON"))
    }

    /// GET `url` and return the body as JSON, whatever the status.
    pub async fn get_json(&self, url: &str) -> Value {
        let response = self.http.get(url).send().await.expect("GET request");
        response.json().await.expect("a JSON body")
    }

    /// GET `url` and return the body as text.
    pub async fn get_text(&self, url: &str) -> String {
        let response = self.http.get(url).send().await.expect("GET request");
        response.text().await.expect("a text body")
    }

    pub async fn graphql(&self, query: &str) -> Value {
        let body = serde_json::json!({ "query": query });
        let response = self
            .http
            .post(format!("{}/graphql", self.address))
            .json(&body)
            .send()
            .await
            .expect("graphql");
        response.json().await.expect("JSON")
    }

    /// The job's status, typed; fails the test on any error answer.
    pub async fn job_view(&self, job_id: &str) -> JobStatusView {
        let (status, body) = self.job(job_id).await;
        assert_eq!(status, 200, "GET /api/job/{job_id}: {body}");
        serde_json::from_value(body).expect("a JobStatusView")
    }

    /// The stored receipt, typed; fails the test on any error answer.
    pub async fn receipt_view(&self, receipt_id: &str) -> ReceiptView {
        let url = format!("{}/api/receipt/{receipt_id}", self.address);
        let response = self.http.get(url).send().await.expect("receipt request");
        assert_eq!(response.status(), 200, "GET /api/receipt/{receipt_id}");
        response.json().await.expect("a ReceiptView")
    }

    /// The receipt row of `job_id` once it says `status`.
    pub async fn wait_for_row(&self, job_id: &str, status: &str) -> ReceiptRow {
        wait_for(|| async {
            let stored = self.db.receipt_by_job_id(job_id).await.ok()??;
            (stored.row.status == status).then_some(stored.row)
        })
        .await
    }

    /// The job's hash once BullMQ has finished it (`finishedOn` set).
    pub async fn finished_job_hash(
        &self,
        job_id: &str,
    ) -> std::collections::HashMap<String, String> {
        wait_for(|| async {
            let hash = self.job_hash(job_id).await;
            hash.contains_key("finishedOn").then_some(hash)
        })
        .await
    }

    /// Poll the job until it is completed or failed.
    pub async fn wait_for_final(&self, job_id: &str) -> JobStatusView {
        wait_for(|| async {
            let job = self.job_view(job_id).await;
            job.state.is_final().then_some(job)
        })
        .await
    }

    pub async fn supervisor_stats(&self) -> SupervisorStats {
        let supervisor = self.supervisor.as_ref().expect("an app that runs workers");
        ractor::call!(supervisor, SupervisorMessage::Stats).expect("supervisor answers")
    }

    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis_for(&self.settings).await
    }

    /// The raw BullMQ job hash.
    pub async fn job_hash(&self, job_id: &str) -> std::collections::HashMap<String, String> {
        let key = format!(
            "{}:{}:{job_id}",
            self.settings.queue.prefix, self.settings.queue.name
        );
        redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut self.redis().await)
            .await
            .expect("HGETALL")
    }

    /// Remove a finished job from Redis, as retention trimming does.
    pub async fn forget_job(&self, job_id: &str) {
        let queue = format!(
            "{}:{}",
            self.settings.queue.prefix, self.settings.queue.name
        );
        let mut redis = self.redis().await;
        let _: () = redis::pipe()
            .del(format!("{queue}:{job_id}"))
            .zrem(format!("{queue}:completed"), job_id)
            .zrem(format!("{queue}:failed"), job_id)
            .query_async(&mut redis)
            .await
            .expect("remove the job");
    }

    /// Every key this test's queue has in Redis.
    pub async fn queue_keys(&self) -> Vec<String> {
        let pattern = format!(
            "{}:{}:*",
            self.settings.queue.prefix, self.settings.queue.name
        );
        redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut self.redis().await)
            .await
            .expect("KEYS")
    }

    /// A refused upload left nothing behind: no receipt row, no stored
    /// file, no job in the queue.
    pub async fn assert_nothing_left(&self) {
        assert_eq!(self.db.count_receipts().await.unwrap(), 0, "no receipt row");
        assert!(
            self.blob_files().is_empty(),
            "no stored file: {:?}",
            self.blob_files()
        );
        let jobs: Vec<_> = self
            .queue_keys()
            .await
            .into_iter()
            .filter(|k| k.contains(":ocr-"))
            .collect();
        assert!(jobs.is_empty(), "no job: {jobs:?}");
    }

    /// Take away the one stored image (its job then fails for good when
    /// read, image missing); its path and bytes, to put it back.
    pub fn remove_the_image(&self) -> (PathBuf, Vec<u8>) {
        let [blob] = self.blob_files().try_into().expect("one stored image");
        let image = std::fs::read(&blob).expect("read the image");
        std::fs::remove_file(&blob).expect("remove the image");
        (blob, image)
    }

    pub fn blob_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out)
                } else {
                    out.push(path)
                }
            }
        }
        let mut files = Vec::new();
        walk(
            std::path::Path::new(&self.settings.blobs.location),
            &mut files,
        );
        files
    }
}

pub async fn redis_for(settings: &Settings) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(settings.queue.redis_url.as_str()).expect("redis url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// The service's own queue handle on the queue of `settings`.
pub async fn queue_for(settings: &Settings) -> receipt_ocr::queue::QueueHandle {
    receipt_ocr::queue::QueueHandle::open(&settings.queue, &settings.retention, &settings.webhooks)
        .await
        .expect("Redis answers")
}

/// A port free now for a server the test starts. Taken below the kernel's
/// ephemeral range when there is room (ports there are handed out to
/// outgoing connections too: one of another test's could take the port
/// before the server binds it), each port once per test binary.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    const LOWEST: u32 = 10_000;
    if ephemeral_start > LOWEST + 1000 {
        let span = ephemeral_start - LOWEST;
        // Each test binary starts at its own place in the range.
        let start = std::process::id() % span;
        for _ in 0..span {
            let port = LOWEST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Poll `check` until it yields a value; fail the test after `PATIENCE`.
pub async fn wait_for<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "condition not met within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `receipt-ocr` subprocess, killed when dropped.
pub struct Process(Child);

impl Process {
    /// Start `receipt-ocr <subcommand>` with `settings` in its environment.
    pub fn start(subcommand: &str, settings: &Settings) -> Process {
        Self::start_with(subcommand, settings, &[])
    }

    /// The same, with `extra` variables (test-only switches) added.
    pub fn start_with(subcommand: &str, settings: &Settings, extra: &[(&str, &str)]) -> Process {
        Self::spawn(command(subcommand, settings, extra))
    }

    /// The same, with the process's log (stderr) sent to `log`.
    pub fn start_logged(
        subcommand: &str,
        settings: &Settings,
        extra: &[(&str, &str)],
        log: impl Into<Stdio>,
    ) -> Process {
        let mut command = command(subcommand, settings, extra);
        command.stderr(log);
        Self::spawn(command)
    }

    /// The same, its log (stderr) read by the test as it comes.
    pub fn start_watched(
        subcommand: &str,
        settings: &Settings,
        extra: &[(&str, &str)],
    ) -> (Process, StderrLines) {
        let mut command = command(subcommand, settings, extra);
        command.stderr(Stdio::piped());
        let mut process = Self::spawn(command);
        let lines = process.stderr_lines();
        (process, lines)
    }

    /// Start a command made by [`command`] and adjusted by the test.
    pub fn spawn(mut command: Command) -> Process {
        Process(command.spawn().expect("start the receipt-ocr binary"))
    }

    /// The lines the process writes to stderr (piped by the test), as
    /// they come.
    pub fn stderr_lines(&mut self) -> StderrLines {
        use std::io::BufRead;
        let lines = StderrLines::default();
        let stderr = self.0.stderr.take().expect("stderr piped");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lines.lock().unwrap().push(line);
            }
            sink.closed
                .store(true, std::sync::atomic::Ordering::Release);
        });
        lines
    }
}

/// What a process writes to stderr, line by line, as it comes.
#[derive(Clone, Default)]
pub struct StderrLines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    closed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StderrLines {
    /// The lines so far.
    pub fn lock(&self) -> std::sync::LockResult<std::sync::MutexGuard<'_, Vec<String>>> {
        self.lines.lock()
    }

    /// Wait until a line containing `text` has come.
    pub async fn wait_for_line(&self, text: &str) {
        wait_for(|| async {
            let lines = self.lines.lock().ok()?;
            lines.iter().any(|line| line.contains(text)).then_some(())
        })
        .await
    }

    /// Every line, once the process has closed its stderr (it exited): the
    /// reader may still be catching up when the exit is seen.
    pub async fn all(&self) -> String {
        let closed = || async {
            let closed = self.closed.load(std::sync::atomic::Ordering::Acquire);
            closed.then_some(())
        };
        wait_for(closed).await;
        self.lines.lock().unwrap().join("\n")
    }
}

/// `receipt-ocr <subcommand>` with `settings` and `extra` in its
/// environment, `RUST_LOG=warn`, stdout discarded.
pub fn command(subcommand: &str, settings: &Settings, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_receipt-ocr"));
    command
        .arg(subcommand)
        .env("REDIS_URL", &settings.queue.redis_url)
        .env("DATABASE_URL", &settings.database.url)
        .env("BLOB_STORE", &settings.blobs.location)
        .env("QUEUE_NAME", &settings.queue.name)
        .env("QUEUE_PREFIX", &settings.queue.prefix)
        .env("PORT", settings.http.port.to_string())
        .env("HOST", "127.0.0.1")
        .env("OCR_CONCURRENCY", settings.ocr.concurrency.to_string())
        .env("OCR_RATE_MAX", settings.queue.rate_limit.max.to_string())
        .env(
            "OCR_RATE_DURATION_MS",
            settings.queue.rate_limit.window.as_millis().to_string(),
        )
        .env(
            "JOB_BACKOFF_MS",
            settings.queue.backoff.as_millis().to_string(),
        )
        .env("JOB_LOCK_MS", settings.queue.lock.as_millis().to_string())
        .env("WORKER_NAME", settings.queue.worker_name())
        .env("RUST_LOG", "warn")
        .env("JOB_ATTEMPTS", settings.queue.attempts.to_string())
        .env(
            "WEBHOOK_ALLOW_PRIVATE",
            settings.webhooks.allow_private.to_string(),
        )
        .env(
            "WEBHOOK_BACKOFF_MS",
            settings.webhooks.backoff.as_millis().to_string(),
        )
        .env("WEBHOOK_ATTEMPTS", settings.webhooks.attempts.to_string())
        .envs(extra.iter().copied())
        .stdout(Stdio::null());
    command
}

impl Process {
    /// Its peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// Ask the process to stop (SIGTERM), as an orchestrator does.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.0.id()).expect("a pid");
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "SIGTERM sent");
    }

    /// The exit status, if the process has already exited.
    pub fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().expect("process status")
    }

    /// Wait for the process to exit; `None` if it still runs after `limit`.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("process status") {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kill the process at once (SIGKILL), as a crash or `kill -9` would.
    pub fn crash(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
