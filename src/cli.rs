//! The command line: `serve` (default), `api`, `worker`, `migrate`, the
//! client commands `upload` and `status`, and `eval`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::startup::{Application, Role, shutdown_signal};

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
    /// Upload a receipt image to a running service.
    Upload {
        file: PathBuf,
        /// Wait for the job to finish and print its result.
        #[arg(long)]
        wait: bool,
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
    /// Score the OCR pipeline on a folder of labelled receipts.
    Eval {
        dir: PathBuf,
        /// The OCR engine to score: auto, tesseract or ppocr.
        #[arg(long, env = "OCR_ENGINE", value_enum, default_value = "auto")]
        engine: crate::ocr::EngineChoice,
    },
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

/// Run the chosen subcommand to completion.
pub async fn run(command: Option<Command>) -> anyhow::Result<()> {
    match command {
        None => serve(Settings::from_env()?, Role::Serve).await,
        Some(Command::Serve(settings)) => serve(settings, Role::Serve).await,
        Some(Command::Api(settings)) => serve(settings, Role::Api).await,
        Some(Command::Worker(settings)) => serve(settings, Role::Worker).await,
        Some(Command::Migrate(settings)) => {
            crate::store::Db::connect(&settings.database.url).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Upload {
            file,
            wait,
            schedule,
            target,
        }) => upload(file, wait, &schedule, target).await,
        Some(Command::Status { job_id, target }) => {
            let client = crate::client::Client::new(&target.url, target.api_key);
            println!("{:#}", client.status(&job_id).await?);
            Ok(())
        }
        Some(Command::Eval { dir, engine }) => {
            tokio::task::spawn_blocking(move || crate::eval::run(&dir, engine)).await?
        }
    }
}

async fn serve(settings: Settings, role: Role) -> anyhow::Result<()> {
    let app = Application::build(settings, role).await?;
    tracing::info!(port = app.port(), ?role, "receipt-ocr started");
    app.run_until_stopped(shutdown_signal())
        .await
        .context("the HTTP server failed")
}

async fn upload(
    file: PathBuf,
    wait: bool,
    schedule: &crate::client::UploadSchedule,
    target: Target,
) -> anyhow::Result<()> {
    let client = crate::client::Client::new(&target.url, target.api_key);
    let accepted = client.upload(&file, schedule).await?;
    let job_id = accepted["jobId"]
        .as_str()
        .context("the answer has no jobId")?
        .to_string();
    if !wait {
        println!("{accepted:#}");
        return Ok(());
    }
    println!(
        "{:#}",
        client.wait(&job_id, Duration::from_secs(600)).await?
    );
    Ok(())
}
