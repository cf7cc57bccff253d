//! Running the pipeline, and the plain `tesseract` command line it is
//! compared with, over many images on every core at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::ocr::{EngineSettings, OcrEngine, ReceiptReading};

/// What reading a set of images cost: wall time, and CPU time where the
/// platform reports it (CPU time does not grow when other programs load
/// the machine, so it compares two runs fairly on a busy computer).
#[derive(Debug, Default, Clone, Copy)]
pub struct Cost {
    pub wall: Duration,
    pub cpu: Option<Duration>,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        self.wall += other.wall;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
    }
}

/// One image's reading and the CPU time its thread spent on it.
pub type TimedReading = (Result<ReceiptReading, String>, Duration);

/// Read every image with the pipeline the workers run, one `OcrEngine` per
/// thread. Returns the readings in input order and what they cost.
pub fn read_with_pipeline(
    images: &[PathBuf],
    threads: usize,
    settings: &EngineSettings,
) -> anyhow::Result<(Vec<TimedReading>, Cost)> {
    let (started, cpu_before) = (Instant::now(), cpu_times());
    let new_engine = || OcrEngine::new(settings);
    let readings = parallel_map(images, threads, new_engine, |engine, image| {
        let before = thread_cpu_time();
        let reading = std::fs::read(image)
            .map_err(|e| format!("{}: {e}", image.display()))
            .and_then(|bytes| {
                crate::inputs::read_upload(engine, &bytes, &mut |_| {}, &|| true)
                    .map_err(|e| e.to_string())
            });
        (reading, thread_cpu_time().saturating_sub(before))
    })?;
    let cpu = cpu_before
        .zip(cpu_times())
        .map(|(before, after)| after.own - before.own);
    Ok((
        readings,
        Cost {
            wall: started.elapsed(),
            cpu,
        },
    ))
}

/// Run `tesseract IMAGE stdout` once per image, one process per thread:
/// the baseline a plain shell script would get from the same cores.
pub fn read_with_tesseract_cli(images: &[PathBuf], threads: usize) -> anyhow::Result<Cost> {
    check_tesseract_cli()?;
    let (started, cpu_before) = (Instant::now(), cpu_times());
    let outcomes = parallel_map(
        images,
        threads,
        || Ok::<(), std::convert::Infallible>(()),
        |_, image| run_tesseract_cli(image),
    )?;
    let failures = outcomes.iter().filter(|ok| !**ok).count();
    if failures > 0 {
        eprintln!("note: the tesseract command failed on {failures} image(s)");
    }
    let cpu = cpu_before
        .zip(cpu_times())
        .map(|(before, after)| after.children - before.children);
    Ok(Cost {
        wall: started.elapsed(),
        cpu,
    })
}

/// CPU time used so far by the calling thread (both engines compute on the
/// thread that calls them: one ONNX intra-op thread, one OpenMP thread).
fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time `clock` (`CLOCK_THREAD_CPUTIME_ID` or
/// `CLOCK_PROCESS_CPUTIME_ID`) has counted so far; zero where it cannot be
/// read.
pub(crate) fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    match status {
        0 => Duration::new(now.tv_sec as u64, now.tv_nsec as u32),
        _ => Duration::ZERO,
    }
}

/// CPU time used so far by this process and by its finished children.
struct CpuTimes {
    own: Duration,
    children: Duration,
}

/// Read from `/proc/self/stat` (Linux; `None` elsewhere): fields 14–17 are
/// utime, stime, cutime and cstime in clock ticks, 100 a second on Linux.
fn cpu_times() -> Option<CpuTimes> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let ticks: Vec<f64> = after_name
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let seconds = |t: f64| Duration::from_secs_f64(t / TICKS_PER_SECOND);
    Some(CpuTimes {
        own: seconds(*ticks.first()? + *ticks.get(1)?),
        children: seconds(*ticks.get(2)? + *ticks.get(3)?),
    })
}

fn check_tesseract_cli() -> anyhow::Result<()> {
    Command::new("tesseract")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context(
            "the `tesseract` command is not on PATH (install tesseract-ocr, or set \
             RECEIPT_OCR_EVAL_BASELINE=off to skip the baseline)",
        )?;
    Ok(())
}

fn run_tesseract_cli(image: &Path) -> bool {
    Command::new("tesseract")
        .arg(image)
        .arg("stdout")
        .env("OMP_THREAD_LIMIT", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Apply `work` to every item on `threads` threads, each with its own state
/// from `init` (a Tesseract instance is not `Sync`, so none is shared).
/// Threads take the next item as they finish one, so a slow image does not
/// hold up a whole share of the work.
pub(super) fn parallel_map<T, S, R, E>(
    items: &[T],
    threads: usize,
    init: impl Fn() -> Result<S, E> + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
) -> anyhow::Result<Vec<R>>
where
    T: Sync,
    R: Send,
    E: std::error::Error + Send + Sync + 'static,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut state = init()?;
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        let result = work(&mut state, item);
                        lock(&results)[index] = Some(result);
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("an evaluation thread panicked"))??;
        }
        Ok(())
    })?;
    let results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(results.into_iter().flatten().collect())
}

/// A poisoned lock only means another thread panicked mid-store of one
/// result; the other results are still whole, so keep using them.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
