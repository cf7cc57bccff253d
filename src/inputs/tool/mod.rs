//! Running the converters we call (poppler's `pdfinfo`, `pdftotext`,
//! `pdftoppm`; libheif's `heif-convert`) as child processes with a deadline
//! and a cap on what they may print, under kernel limits on their memory
//! and the files they write, so a hostile file can neither hang a worker
//! nor fill its memory or disk.

mod limits;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

pub use limits::Limits;

/// How long one converter run may take before it is killed.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a converter may print on stderr that we keep.
const MAX_STDERR: usize = 16 * 1024;

/// Why a converter run gave no usable output.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(
        "`{program}` could not be started ({source}); install it (scripts/deps.sh installs poppler-utils and libheif-examples)"
    )]
    Missing {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` took longer than {} s and was stopped", .timeout.as_secs())]
    TimedOut { program: String, timeout: Duration },
    #[error("`{program}` printed more than {limit} bytes and was stopped")]
    TooMuchOutput { program: String, limit: usize },
    #[error("`{program}` wrote a file over {} MiB and was stopped", .limit >> 20)]
    FileTooLarge { program: String, limit: u64 },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
}

impl ToolError {
    /// What the converter said on stderr when it failed, else empty.
    pub fn stderr(&self) -> &str {
        match self {
            ToolError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// Run `program` with `args`; its stdout when it exits 0 within the
/// limits' time having printed at most their `max_output` bytes.
pub fn run(program: &str, args: &[&std::ffi::OsStr], limits: Limits) -> Result<Vec<u8>, ToolError> {
    let Limits {
        timeout,
        max_output,
        ..
    } = limits;
    let missing = |source| ToolError::Missing {
        program: program.to_string(),
        source,
    };
    let mut child = limits::command(program, &limits)
        .map_err(missing)?
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing)?;
    // Both pipes are taken and drained on their own threads, so the child
    // never blocks on a full pipe while we wait for it.
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(stdout.map(|pipe| read_bounded(pipe, max_output)));
    });
    let errors = std::thread::spawn(move || {
        stderr
            .map(|pipe| read_bounded(pipe, MAX_STDERR).unwrap_or_else(|partial| partial))
            .unwrap_or_default()
    });
    let output = finished.recv_timeout(timeout);
    let killed = !matches!(output, Ok(Some(Ok(_))));
    if killed {
        // Timed out or printing too much: stop it before waiting for it.
        let _ = child.kill();
    }
    let status = child.wait();
    let stderr = String::from_utf8_lossy(&errors.join().unwrap_or_default()).into_owned();
    let program = program.to_string();
    match output {
        Err(_) => Err(ToolError::TimedOut { program, timeout }),
        Ok(Some(Err(_))) => Err(ToolError::TooMuchOutput {
            program,
            limit: max_output,
        }),
        Ok(output) => {
            ended(program, status, stderr, &limits)?;
            Ok(output.and_then(Result::ok).unwrap_or_default())
        }
    }
}

/// How a run that printed within its limits ended: `Ok` when it exited 0.
fn ended(
    program: String,
    status: std::io::Result<std::process::ExitStatus>,
    stderr: String,
    limits: &Limits,
) -> Result<(), ToolError> {
    let status = match status {
        Ok(status) if status.success() => return Ok(()),
        Ok(status) => status,
        Err(e) => {
            let status = e.to_string();
            return Err(ToolError::Failed {
                program,
                status,
                stderr,
            });
        }
    };
    if status.signal() == Some(libc::SIGXFSZ) {
        let limit = limits.file_size;
        return Err(ToolError::FileTooLarge { program, limit });
    }
    // prlimit could not become the converter (not executable here, a
    // noexec mount): missing as far as this machine goes.
    if limits::could_not_exec(status, &stderr) {
        let source = std::io::Error::other(stderr.trim().to_string());
        return Err(ToolError::Missing { program, source });
    }
    let (status, stderr) = (status.to_string(), stderr.trim().to_string());
    Err(ToolError::Failed {
        program,
        status,
        stderr,
    })
}

/// Everything `pipe` yields, or (as the error) the first `limit` bytes when
/// it has more.
fn read_bounded(pipe: impl Read, limit: usize) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = Vec::new();
    let limit_plus_one = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    match pipe.take(limit_plus_one).read_to_end(&mut out) {
        Ok(_) if out.len() <= limit => Ok(out),
        _ => {
            out.truncate(limit);
            Err(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[&'static str]) -> Vec<&'static std::ffi::OsStr> {
        values.iter().map(|v| std::ffi::OsStr::new(*v)).collect()
    }

    fn limits(timeout: Duration, max_output: usize) -> Limits {
        Limits {
            timeout,
            max_output,
            ..Limits::printing(max_output)
        }
    }

    #[test]
    fn a_tool_that_runs_too_long_is_stopped() {
        let limits = limits(Duration::from_millis(200), 1024);
        let error = run("sleep", &args(&["30"]), limits).expect_err("stopped");
        assert!(matches!(error, ToolError::TimedOut { .. }), "{error}");
    }

    #[test]
    fn a_tool_that_prints_too_much_is_stopped() {
        let error = run("yes", &[], Limits::printing(4096)).expect_err("stopped");
        assert!(matches!(error, ToolError::TooMuchOutput { .. }), "{error}");
    }

    #[test]
    fn a_failing_tool_reports_its_stderr() {
        let error =
            run("ls", &args(&["/no/such/path"]), Limits::printing(4096)).expect_err("fails");
        assert!(error.stderr().contains("/no/such/path"), "{error}");
        assert_eq!(
            run("echo", &args(&["hi"]), Limits::printing(16)).unwrap(),
            b"hi\n"
        );
    }

    #[test]
    fn a_tool_that_takes_more_memory_than_allowed_fails() {
        // dd allocates its whole block at once: 64 MiB against a 16 MiB heap.
        let dd = args(&["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]);
        let small = Limits {
            memory: 16 << 20,
            ..Limits::printing(1024)
        };
        let error = run("dd", &dd, small).expect_err("out of memory");
        assert!(error.stderr().contains("memory exhausted"), "{error}");
        // The same run within the usual limits.
        run("dd", &dd, Limits::printing(1024)).expect("64 MiB is allowed");
    }

    #[test]
    fn a_tool_that_writes_a_file_over_the_limit_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let out = format!("of={}", dir.path().join("big").display());
        let dd = [
            std::ffi::OsStr::new("if=/dev/zero"),
            std::ffi::OsStr::new(&out),
            std::ffi::OsStr::new("bs=1M"),
            std::ffi::OsStr::new("count=4"),
        ];
        let small = Limits {
            file_size: 1 << 20,
            ..Limits::printing(1024)
        };
        let error = run("dd", &dd, small).expect_err("stopped");
        assert!(matches!(error, ToolError::FileTooLarge { .. }), "{error}");
        assert!(error.to_string().contains("over 1 MiB"), "{error}");
        let written = std::fs::metadata(dir.path().join("big")).unwrap().len();
        assert_eq!(written, 1 << 20);
    }
}
