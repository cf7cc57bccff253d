//! `upload FILE… [--wait] [--json]`: upload files (folders are read for
//! their files) with bounded concurrency; with `--wait`, follow each job
//! with a progress bar on a terminal and end with an exit code that says
//! how the jobs ended.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{Client, UploadSchedule};

/// Exit codes of the client commands (documented in the README).
pub mod exit {
    /// A job failed, or an upload was refused.
    pub const FAILED: u8 = 2;
    /// A job was cancelled (and none failed).
    pub const CANCELLED: u8 = 3;
    /// The service could not be reached.
    pub const UNREACHABLE: u8 = 4;
}

/// How long `--wait` follows one job once it may start (a scheduled job is
/// followed for its delay on top).
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

pub struct UploadOptions {
    pub wait: bool,
    pub json: bool,
    pub concurrency: usize,
}

/// How one file ended.
struct Outcome {
    file: PathBuf,
    /// The job, once the upload was accepted (kept when following it
    /// failed: the job may well finish).
    job_id: Option<String>,
    /// The upload's answer, or the last status seen with `--wait`.
    answer: anyhow::Result<Value>,
}

impl Outcome {
    fn state(&self) -> &str {
        match &self.answer {
            Ok(body) => body["state"].as_str().unwrap_or("accepted"),
            Err(_) if self.job_id.is_some() => "unfinished",
            Err(_) => "refused",
        }
    }

    /// One JSON line for `--json`.
    fn json_line(&self) -> Value {
        let file = self.file.display().to_string();
        match &self.answer {
            Ok(body) => json!({
                "file": file,
                "jobId": body["jobId"].as_str().or(body["id"].as_str()),
                "state": self.state(),
                "result": body.get("result"),
                "failedReason": body.get("failedReason"),
            }),
            Err(e) => json!({
                "file": file,
                "jobId": self.job_id,
                "state": self.state(),
                "error": format!("{e:#}"),
            }),
        }
    }
}

pub async fn upload(
    client: &Client,
    paths: &[PathBuf],
    schedule: &UploadSchedule,
    options: &UploadOptions,
) -> anyhow::Result<ExitCode> {
    let files = expand(paths)?;
    let bars = MultiProgress::with_draw_target(if options.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let overall = (files.len() > 1).then(|| {
        let bar = bars.add(ProgressBar::new(files.len() as u64));
        bar.set_style(style("{prefix:>12} [{bar:30}] {pos}/{len} files"));
        bar.set_prefix("all");
        bar
    });
    let single = files.len() == 1;
    let mut outcomes = futures::stream::iter(files)
        .map(|file| {
            let bar = bars.add(ProgressBar::new(100));
            bar.set_style(style("{prefix:>12} [{bar:30}] {pos:>3}% {msg}"));
            bar.set_prefix(short_name(&file));
            one(client, file, schedule, options.wait, bar)
        })
        .buffer_unordered(options.concurrency.max(1));

    let mut all = Vec::new();
    while let Some(outcome) = outcomes.next().await {
        if let Some(bar) = &overall {
            bar.inc(1);
        }
        if let Err(e) = &outcome.answer
            && e.downcast_ref::<crate::client::Unreachable>().is_some()
        {
            // An accepted job's id is said before giving up.
            if outcome.job_id.is_some() {
                let _ = bars.suspend(|| print_outcome(&outcome, options, single));
            }
            return Err(outcome.answer.unwrap_err());
        }
        let _ = bars.suspend(|| print_outcome(&outcome, options, single));
        all.push(outcome);
    }
    if let Some(bar) = overall {
        bar.finish();
    }
    Ok(exit_code(&all))
}

/// Upload one file and, with `wait`, follow its job to the end.
async fn one(
    client: &Client,
    file: PathBuf,
    schedule: &UploadSchedule,
    wait: bool,
    bar: ProgressBar,
) -> Outcome {
    bar.set_message("uploading");
    let mut accepted_as = None;
    let answer = async {
        let accepted = client.upload(&file, schedule).await?;
        if !wait {
            return Ok(accepted);
        }
        let job_id = accepted["jobId"].as_str().unwrap_or_default().to_string();
        accepted_as = Some(job_id.clone());
        // Said at once on stderr: a wait cut short (Ctrl-C) keeps the id.
        let said = format!("{}: accepted as job {job_id}", file.display());
        bar.suspend(|| eprintln!("{said}; waiting for it to finish"));
        let mut last = client
            .wait(&job_id, WAIT_LIMIT + schedule.held_for(), |status| {
                bar.set_position(status["progress"].as_u64().unwrap_or(0));
                bar.set_message(status["state"].as_str().unwrap_or("").to_string());
            })
            .await?;
        last["jobId"] = Value::String(job_id);
        Ok(last)
    }
    .await;
    match &answer {
        Ok(body) => {
            bar.finish_with_message(body["state"].as_str().unwrap_or("accepted").to_string())
        }
        Err(_) if accepted_as.is_some() => bar.abandon_with_message("unfinished"),
        Err(_) => bar.abandon_with_message("refused"),
    }
    Outcome {
        file,
        job_id: accepted_as,
        answer,
    }
}

fn print_outcome(outcome: &Outcome, options: &UploadOptions, single: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if options.json {
        return writeln!(out, "{}", outcome.json_line());
    }
    match &outcome.answer {
        // One file: the whole answer, as the service gave it.
        Ok(body) if single => writeln!(out, "{body:#}"),
        Ok(body) => {
            let job_id = body["jobId"].as_str().unwrap_or("?");
            let store = body["result"]["storeName"].as_str().unwrap_or("");
            let total = &body["result"]["totalAmount"];
            let total = if total.is_null() {
                String::new()
            } else {
                total.to_string()
            };
            writeln!(
                out,
                "{}\t{job_id}\t{}\t{store}\t{total}",
                outcome.file.display(),
                outcome.state()
            )
        }
        Err(e) => {
            let job = (outcome.job_id.as_ref()).map_or(String::new(), |id| format!("job {id}: "));
            eprintln!("{}: {job}{e:#}", outcome.file.display());
            Ok(())
        }
    }
}

/// 0 when every file was accepted (and with `--wait` completed), else the
/// worst of: a failure or refusal, a cancellation.
fn exit_code(outcomes: &[Outcome]) -> ExitCode {
    let states: Vec<&str> = outcomes.iter().map(Outcome::state).collect();
    if states
        .iter()
        .any(|s| matches!(*s, "failed" | "refused" | "unfinished"))
    {
        ExitCode::from(exit::FAILED)
    } else if states.contains(&"cancelled") {
        ExitCode::from(exit::CANCELLED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The files to upload: each path given, or a folder's files (not its
/// subfolders'), in name order; hidden files are skipped.
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            // Checked before anything is sent: an unreadable file is the
            // caller's mistake (exit 1), not a refusal by the service.
            std::fs::File::open(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            files.push(path.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("cannot read the folder {}: {e}", path.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && !is_hidden(p))
            .collect();
        inside.sort();
        files.extend(inside);
    }
    anyhow::ensure!(!files.is_empty(), "no files to upload");
    Ok(files)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn short_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.char_indices().nth(12) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name,
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
