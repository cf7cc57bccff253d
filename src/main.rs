//! The `receipt-ocr` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use receipt_ocr::cli::{Cli, run};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; a broken one is reported by the settings.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let _telemetry = receipt_ocr::telemetry::init();
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
