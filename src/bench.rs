//! `receipt-ocr bench queue`: what our queue path costs per job, beside
//! BullMQ itself (`../shared/bench/bullmq/bench.js` measures the same three
//! things the same way).
//!
//! No-op jobs go through exactly the service's path: enqueued by
//! [`QueueHandle::enqueue`] (job options, retention, trace context), read by
//! the [`QueueWorker`] actor (lock, database check, cancellation check,
//! completion), with only the OCR pipeline replaced by
//! [`NoopProcessor`]. Prints one JSON line, with the process's CPU time per
//! processed job (user + system, all threads) beside the rates.
//!
//! `--bare` runs the crate alone on the same Redis, the ceiling our layer is
//! measured against: `bullmq::Queue::add` with our job options and a
//! `bullmq::Worker` with our worker options whose processor answers at once
//! (no actor, no PostgreSQL check, no cancellation poll, no progress).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ractor::Actor;
use tokio::sync::mpsc;

use crate::actors::queue_worker::{JobProcessor, QueueWorker, QueueWorkerArgs, worker_options};
use crate::config::Settings;
use crate::job::{JOB_NAME, JobError, ReceiptJobData, ReceiptResult, Schedule, new_job_id};
use crate::pipeline::{JobAttempt, Progress};
use crate::queue::{QueueHandle, StallCounter};
use crate::store::Db;

/// Enqueue requests in flight at once, as an API under load (as bench.js).
const ENQUEUE_IN_FLIGHT: usize = 64;
/// Jobs timed one at a time into an idle worker (as bench.js).
const LATENCY_JOBS: usize = 300;

#[derive(clap::Args)]
pub struct QueueBench {
    /// No-op jobs to enqueue, then process.
    #[arg(long = "jobs", id = "bench_jobs", default_value = "20000")]
    pub jobs: usize,
    /// The worker's concurrency (BullMQ's, as `OCR_CONCURRENCY` sets it).
    #[arg(long = "concurrency", id = "bench_concurrency", default_value = "50")]
    pub concurrency: usize,
    /// The crate alone (`bullmq-official`'s queue and worker with our
    /// options and a no-op processor), for comparison with our path.
    #[arg(long = "bare", id = "bench_bare")]
    pub bare: bool,
    /// Redis, PostgreSQL (the worker checks it before each job) and the
    /// queue's options; the queue gets a fresh name and is removed after.
    #[command(flatten)]
    pub settings: Settings,
}

/// The figures, as one JSON line (bench.js's field names).
#[derive(serde::Serialize)]
struct Figures {
    system: &'static str,
    version: &'static str,
    jobs: usize,
    concurrency: usize,
    enqueue_per_s: u64,
    process_per_s: u64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    /// This process's CPU time (user + system, every thread) while the
    /// jobs were processed, divided by the jobs: what a job costs us
    /// beside what it costs Redis.
    process_cpu_us_per_job: f64,
}

/// Answers every attempt at once with an empty result, and tells the
/// bench when BullMQ has completed a job.
struct NoopProcessor {
    completed: mpsc::UnboundedSender<String>,
}

impl JobProcessor for NoopProcessor {
    async fn run(&self, attempt: &JobAttempt, _: Progress) -> Result<ReceiptResult, JobError> {
        Ok(ReceiptResult {
            receipt_id: attempt.data.receipt_id,
            ..ReceiptResult::default()
        })
    }

    async fn job_failed(&self, job_id: &str, reason: &str, _run: u32) {
        tracing::warn!(job_id, reason, "a bench job failed");
    }

    fn completed(&self, job_id: &str) {
        let _ = self.completed.send(job_id.to_string());
    }
}

pub async fn run_queue_bench(mut bench: QueueBench) -> anyhow::Result<()> {
    let settings = &mut bench.settings;
    let stamp = chrono::Utc::now().timestamp_millis();
    settings.queue.name = format!("bench-{}-{stamp}", std::process::id());
    let queue = QueueHandle::open(&settings.queue, &settings.retention, &settings.webhooks).await?;
    let producer = Producer {
        queue: queue.clone(),
        bare: bench.bare,
    };

    let enqueue_s = enqueue_all(&producer, bench.jobs).await?;
    let (completed_tx, mut completed) = mpsc::unbounded_channel();
    let started = Instant::now();
    let cpu_before = process_cpu_time();
    let worker = match bench.bare {
        false => {
            BenchWorker::service(settings, bench.concurrency, queue.clone(), completed_tx).await?
        }
        true => BenchWorker::bare(settings, bench.concurrency, completed_tx).await?,
    };
    for _ in 0..bench.jobs {
        completed.recv().await.context("the worker stopped")?;
    }
    let process_s = started.elapsed().as_secs_f64();
    let process_cpu = process_cpu_time().saturating_sub(cpu_before);
    let latencies = pickup_latencies(&producer, &mut completed).await?;

    worker.stop().await?;
    queue.obliterate().await?;
    let phases = Phases {
        enqueue_s,
        process_s,
        process_cpu,
    };
    print_figures(&bench, phases, latencies)
}

/// CPU time (user + system, every thread) this process has used so far.
fn process_cpu_time() -> Duration {
    crate::eval::cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// What the two timed phases took.
struct Phases {
    enqueue_s: f64,
    process_s: f64,
    /// This process's CPU time while the jobs were processed.
    process_cpu: Duration,
}

/// Adds the bench's no-op jobs: through [`QueueHandle::enqueue`], or with
/// `bare`, through the crate's `Queue::add` with the same job options.
#[derive(Clone)]
struct Producer {
    queue: QueueHandle,
    bare: bool,
}

impl Producer {
    async fn add(&self, job_id: String) -> anyhow::Result<()> {
        if !self.bare {
            let schedule = Schedule::default();
            return Ok(self.queue.enqueue(job_id, bench_job(), schedule).await?);
        }
        let (queue, options) = self.queue.bare();
        let options = bullmq::JobOptions {
            job_id: Some(job_id),
            ..options.clone()
        };
        queue.add(JOB_NAME, bench_job()).options(options).await?;
        Ok(())
    }
}

/// The worker under test: the service's `QueueWorker` actor, or the bare
/// crate's `Worker` and a task that reads its events.
enum BenchWorker {
    Service(ractor::ActorRef<()>, tokio::task::JoinHandle<()>),
    Bare(Arc<bullmq::Worker>, tokio::task::JoinHandle<()>),
}

impl BenchWorker {
    async fn service(
        settings: &Settings,
        concurrency: usize,
        queue: QueueHandle,
        completed: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database.url, settings.database.max_connections).await?;
        let args = QueueWorkerArgs {
            settings: settings.queue.clone(),
            concurrency,
            grace: Duration::from_secs(5),
            pipeline: Arc::new(NoopProcessor { completed }),
            queue,
            db,
            stalls: StallCounter::default(),
        };
        let (worker, handle) = Actor::spawn(None, QueueWorker::new(), args)
            .await
            .context("starting the queue worker")?;
        Ok(Self::Service(worker, handle))
    }

    async fn bare(
        settings: &Settings,
        concurrency: usize,
        completed: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Self> {
        // The crate alone runs its own stalled-jobs check (ours is off).
        let options = bullmq::WorkerOptions {
            skip_stalled_check: false,
            ..worker_options(&settings.queue, concurrency)
        };
        let answer = |_job: bullmq::Job, _cancel| async { Ok(serde_json::Value::Null) };
        let worker = bullmq::Worker::with_options(&settings.queue.name, answer, options).await?;
        let worker = Arc::new(worker);
        let events = worker.clone();
        let reader = tokio::spawn(async move {
            while let Some(event) = events.next_event().await {
                match event {
                    bullmq::worker::WorkerEvent::Completed { job_id, .. } => {
                        let _ = completed.send(job_id);
                    }
                    bullmq::worker::WorkerEvent::Closed => break,
                    _ => {}
                }
            }
        });
        Ok(Self::Bare(worker, reader))
    }

    async fn stop(self) -> anyhow::Result<()> {
        match self {
            Self::Service(worker, handle) => {
                worker.stop(None);
                handle.await?;
            }
            Self::Bare(worker, reader) => {
                worker.close(5000).await?;
                reader.abort();
            }
        }
        Ok(())
    }
}

fn bench_job() -> ReceiptJobData {
    ReceiptJobData {
        receipt_id: uuid::Uuid::new_v4(),
        blob_key: "uploads/x.jpg".into(),
        content_type: "image/jpeg".into(),
        trace_context: Default::default(),
        run: 0,
    }
}

/// Enqueue `jobs` jobs, [`ENQUEUE_IN_FLIGHT`] at a time; seconds taken.
async fn enqueue_all(producer: &Producer, jobs: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let next = Arc::new(Mutex::new(0usize));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..ENQUEUE_IN_FLIGHT {
        let (producer, next) = (producer.clone(), next.clone());
        tasks.spawn(async move {
            while take_one(&next, jobs) {
                producer.add(new_job_id()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn take_one(next: &Mutex<usize>, jobs: usize) -> bool {
    // A poisoned lock means another enqueue task panicked: stop too.
    let Ok(mut taken) = next.lock() else {
        return false;
    };
    *taken += 1;
    *taken <= jobs
}

/// add → completed, one job at a time into the idle worker, in ms.
async fn pickup_latencies(
    producer: &Producer,
    completed: &mut mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(LATENCY_JOBS);
    for _ in 0..LATENCY_JOBS {
        let job_id = new_job_id();
        let started = Instant::now();
        producer.add(job_id.clone()).await?;
        while completed.recv().await.context("the worker stopped")? != job_id {}
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

/// The `p`-quantile as bench.js takes it (the sorted value at ⌊n·p⌋).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    let value = sorted.get(at).copied().unwrap_or(f64::NAN);
    (value * 100.0).round() / 100.0
}

fn print_figures(
    bench: &QueueBench,
    phases: Phases,
    mut latencies: Vec<f64>,
) -> anyhow::Result<()> {
    let jobs = bench.jobs as f64;
    let cpu_us_per_job = phases.process_cpu.as_secs_f64() * 1e6 / jobs;
    latencies.sort_by(f64::total_cmp);
    let figures = Figures {
        system: match bench.bare {
            false => "receipt-ocr",
            true => "bullmq-official",
        },
        version: env!("CARGO_PKG_VERSION"),
        jobs: bench.jobs,
        concurrency: bench.concurrency,
        enqueue_per_s: (jobs / phases.enqueue_s).round() as u64,
        process_per_s: (jobs / phases.process_s).round() as u64,
        latency_ms_p50: percentile(&latencies, 0.5),
        latency_ms_p99: percentile(&latencies, 0.99),
        process_cpu_us_per_job: (cpu_us_per_job * 10.0).round() / 10.0,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::percentile;
    use crate::cli::{BenchCommand, Cli, Command};

    #[test]
    fn bench_queue_takes_its_jobs_and_concurrency_beside_the_settings() {
        let args = [
            "receipt-ocr",
            "bench",
            "queue",
            "--jobs",
            "10",
            "--concurrency",
            "2",
        ];
        let cli = Cli::try_parse_from(args).expect("the command parses");
        let Some(Command::Bench(BenchCommand::Queue(bench))) = cli.command else {
            panic!("not bench queue");
        };
        assert_eq!((bench.jobs, bench.concurrency), (10, 2));
    }

    #[test]
    fn percentiles_are_taken_as_bench_js_takes_them() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 6.0);
        assert_eq!(percentile(&sorted, 0.99), 10.0);
    }
}
