//! The command line: `serve` (default), `api`, `worker`, `migrate`, the
//! client commands (`upload`, `status`, `receipts`, `cancel`, `retry`,
//! `queue`), `eval` and `bench queue`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::startup::{Application, Role, shutdown_signal};

mod uploads;
pub use uploads::exit;

#[derive(Parser)]
#[command(
    name = "receipt-ocr",
    version,
    about = "Receipt OCR job service: upload receipt images, read them with Tesseract in the background."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// HTTP API and OCR workers in one process (the default).
    Serve(Settings),
    /// HTTP API only: accepts uploads and answers status; workers run elsewhere.
    Api(Settings),
    /// OCR workers only, with /health/live and /health/ready on PORT.
    Worker(Settings),
    /// Create the database if missing and apply migrations, then exit.
    Migrate(Settings),
    /// Upload receipts (files, or folders of them) to a running service.
    Upload {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Follow each job to the end (a progress bar per file on a
        /// terminal) and exit non-zero if any failed or was cancelled.
        #[arg(long)]
        wait: bool,
        /// One JSON line per file on stdout, no progress bars.
        #[arg(long)]
        json: bool,
        /// Files uploaded (and followed) at the same time.
        #[arg(long, default_value = "4")]
        concurrency: usize,
        #[command(flatten)]
        schedule: crate::client::UploadSchedule,
        #[command(flatten)]
        target: Target,
    },
    /// Print a job's status.
    Status {
        job_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// List receipts, newest first (the listing endpoint's page).
    Receipts {
        /// queued, processing, completed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Store name contains this (case-insensitive).
        #[arg(long)]
        store: Option<String>,
        /// 1–100 receipts per page.
        #[arg(long)]
        limit: Option<u32>,
        /// The `nextCursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a job (a running one is stopped).
    Cancel {
        job_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Run a failed or cancelled job again.
    Retry {
        job_id: String,
        #[command(flatten)]
        target: Target,
    },
    /// Show the queue (counts, workers, rate limit), or pause/resume it.
    Queue {
        #[arg(value_enum)]
        action: Option<QueueAction>,
        #[command(flatten)]
        target: Target,
    },
    /// Score the OCR pipeline on a folder of labelled receipts.
    Eval {
        dir: PathBuf,
        /// The OCR engine to score: auto, tesseract or ppocr.
        #[arg(long, env = "OCR_ENGINE", value_enum, default_value = "auto")]
        engine: crate::ocr::EngineChoice,
    },
    /// Measure our own costs (prints one JSON line).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// No-op jobs through the service's producer and worker path.
    Queue(crate::bench::QueueBench),
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum QueueAction {
    Pause,
    Resume,
}

#[derive(Args)]
pub struct Target {
    /// The service's base URL.
    #[arg(long, env = "RECEIPT_OCR_URL", default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// An API key, when the service has API_KEYS set.
    #[arg(long, env = "RECEIPT_OCR_API_KEY")]
    pub api_key: Option<String>,
}

impl Command {
    /// Commands that talk to a running service and print for a user.
    pub fn is_client(&self) -> bool {
        matches!(
            self,
            Command::Upload { .. }
                | Command::Status { .. }
                | Command::Receipts { .. }
                | Command::Cancel { .. }
                | Command::Retry { .. }
                | Command::Queue { .. }
        )
    }
}

/// Run the chosen subcommand to completion.
pub async fn run(command: Option<Command>) -> anyhow::Result<ExitCode> {
    let done = |()| ExitCode::SUCCESS;
    match command {
        None => serve(Settings::from_env()?, Role::Serve).await.map(done),
        Some(Command::Serve(settings)) => serve(settings, Role::Serve).await.map(done),
        Some(Command::Api(settings)) => serve(settings, Role::Api).await.map(done),
        Some(Command::Worker(settings)) => serve(settings, Role::Worker).await.map(done),
        Some(Command::Migrate(settings)) => {
            crate::store::Db::connect(&settings.database.url, settings.database.max_connections)
                .await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Upload {
            files,
            wait,
            json,
            concurrency,
            schedule,
            target,
        }) => {
            let options = uploads::UploadOptions {
                wait,
                json,
                concurrency,
            };
            uploads::upload(&target.client(), &files, &schedule, &options).await
        }
        Some(Command::Status { job_id, target }) => {
            print_json(target.client().status(&job_id).await?)
        }
        Some(Command::Receipts {
            status,
            store,
            limit,
            cursor,
            target,
        }) => {
            let query: Vec<(&str, String)> = [
                ("status", status),
                ("q", store),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ]
            .into_iter()
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect();
            print_json(target.client().receipts(&query).await?)
        }
        Some(Command::Cancel { job_id, target }) => {
            print_json(target.client().cancel(&job_id).await?)
        }
        Some(Command::Retry { job_id, target }) => {
            print_json(target.client().retry(&job_id).await?)
        }
        Some(Command::Queue { action, target }) => {
            let action = action.map(|a| match a {
                QueueAction::Pause => "pause",
                QueueAction::Resume => "resume",
            });
            print_json(target.client().queue(action).await?)
        }
        Some(Command::Eval { dir, engine }) => {
            tokio::task::spawn_blocking(move || crate::eval::run(&dir, engine))
                .await?
                .map(done)
        }
        Some(Command::Bench(BenchCommand::Queue(bench))) => {
            crate::bench::run_queue_bench(bench).await.map(done)
        }
    }
}

impl Target {
    fn client(self) -> crate::client::Client {
        crate::client::Client::new(&self.url, self.api_key)
    }
}

fn print_json(value: serde_json::Value) -> anyhow::Result<ExitCode> {
    println!("{value:#}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Settings, role: Role) -> anyhow::Result<()> {
    // Before anything starts: a SIGTERM during start-up stops it cleanly.
    let stop = shutdown_signal();
    let app = Application::build(settings, role).await?;
    tracing::info!(port = app.port(), ?role, "receipt-ocr started");
    app.run_until_stopped(stop)
        .await
        .context("the HTTP server failed")
}
