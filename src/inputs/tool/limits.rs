//! The kernel limits a converter runs under: its heap (`RLIMIT_DATA`), the
//! size of any file it writes (`RLIMIT_FSIZE`) and no core file, so that a
//! hostile document can fill neither a worker's memory nor its disk.
//!
//! They are set by util-linux's `prlimit`, which applies them to itself and
//! then becomes the converter. A `pre_exec` hook could set them in the
//! child directly, but any hook makes std fork the whole worker process
//! (its models and page tables) instead of spawning: measured at 91 ms a
//! spawn from a (Python) process holding 2 GB, against 1 ms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::TOOL_TIMEOUT;

/// The heap a converter may take (`RLIMIT_DATA`) at least. `heif-convert`
/// decoding a 40 MP photo of noise (the default pixel limit's worst case)
/// peaks at 290 MB, about 7 bytes a pixel; a 10-bit photo with an alpha
/// plane needs about 23.
pub const TOOL_MEMORY: u64 = 1 << 30;

/// The largest file a converter may write (`RLIMIT_FSIZE`) at least: the
/// PNG of a 40 MP photo of noise is 108 MB, under 3 bytes a pixel; a 10-bit
/// photo's is 16-bit, up to 6.4 bytes a pixel with an alpha plane.
pub const TOOL_FILE_SIZE: u64 = 256 << 20;

/// Heap and file bytes allowed per pixel of the image limit, so that a
/// raised MAX_IMAGE_PIXELS raises the kernel limits with it.
const MEMORY_PER_PIXEL: u64 = 32;
const FILE_BYTES_PER_PIXEL: u64 = 10;

/// What one converter run may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stopped after this long.
    pub timeout: Duration,
    /// Stopped when it prints more than this on stdout.
    pub max_output: usize,
    /// Bytes of heap; an allocation beyond fails inside the converter.
    pub memory: u64,
    /// Bytes of one file written; the kernel stops it beyond (`SIGXFSZ`).
    pub file_size: u64,
}

impl Limits {
    /// The limits every converter runs under, printing at most `max_output`.
    pub fn printing(max_output: usize) -> Self {
        Self {
            timeout: TOOL_TIMEOUT,
            max_output,
            memory: TOOL_MEMORY,
            file_size: TOOL_FILE_SIZE,
        }
    }

    /// The same for a run that decodes up to `max_pixels` pixels.
    pub fn for_pixels(self, max_pixels: u64) -> Self {
        Self {
            memory: self.memory.max(max_pixels.saturating_mul(MEMORY_PER_PIXEL)),
            file_size: self
                .file_size
                .max(max_pixels.saturating_mul(FILE_BYTES_PER_PIXEL)),
            ..self
        }
    }
}

/// A command that runs `program` (looked up on `PATH`) under `limits`,
/// through `prlimit` where there is one; its arguments are added by the
/// caller. `NotFound` when `program` is not on `PATH`.
pub fn command(program: &str, limits: &Limits) -> std::io::Result<Command> {
    command_through(prlimit(), program, limits)
}

/// [`command`] with `prlimit` given: without one, the converter alone.
fn command_through(
    prlimit: Option<&Path>,
    program: &str,
    limits: &Limits,
) -> std::io::Result<Command> {
    let path = on_path(program)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"))?;
    let Some(prlimit) = prlimit else {
        return Ok(Command::new(path));
    };
    // Never above the hard limit this process has (and its children
    // inherit): without CAP_SYS_RESOURCE a hard limit may not be raised,
    // and systemd's `LimitDATA=` or docker's `--ulimit` may have set one
    // lower than ours (every converter run would then fail).
    let at_most = |resource, bytes: u64| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: getrlimit only writes `limit`; on failure it is left as set.
        unsafe {
            libc::getrlimit(resource, &mut limit);
        }
        bytes.min(limit.rlim_max)
    };
    let mut command = Command::new(prlimit);
    command
        .arg(format!(
            "--data={}",
            at_most(libc::RLIMIT_DATA, limits.memory)
        ))
        .arg(format!(
            "--fsize={}",
            at_most(libc::RLIMIT_FSIZE, limits.file_size)
        ))
        .arg("--core=0")
        .arg("--")
        .arg(path);
    Ok(command)
}

/// Whether a run ended because `prlimit` could not execute the converter
/// (exit 126 or 127 and a message of its own), not because the converter
/// failed.
pub fn could_not_exec(status: std::process::ExitStatus, stderr: &str) -> bool {
    // Only the program's name is sure to be untranslated.
    matches!(status.code(), Some(126 | 127)) && stderr.starts_with("prlimit: ")
}

/// util-linux's `prlimit`, looked up once; without it (not a Debian or
/// Ubuntu host) converters run with no kernel limits, said once.
fn prlimit() -> Option<&'static Path> {
    static PRLIMIT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = PRLIMIT.get_or_init(|| {
        let found = on_path_in("prlimit", &search_path());
        if found.is_none() {
            tracing::warn!("prlimit (util-linux) is not installed: converters run without memory and file-size limits");
        }
        found
    });
    found.as_deref()
}

/// The first executable file called `name` in a `PATH` folder.
fn on_path(name: &str) -> Option<PathBuf> {
    on_path_in(name, &search_path())
}

/// The folders programs are looked up in: `PATH`, or without it glibc's
/// execvp's default folders.
fn search_path() -> std::ffi::OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into())
}

/// The first executable file called `name` in one of `folders` (a
/// `PATH`-style list); a `name` with a slash is taken as it is.
fn on_path_in(name: &str, folders: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| executable(p));
    }
    std::env::split_paths(folders)
        .map(|folder| folder.join(name))
        .find(|path| executable(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_limits_grow_with_the_pixel_limit_above_their_floors() {
        let small = Limits::printing(1024).for_pixels(20_000_000);
        assert_eq!(
            (small.memory, small.file_size),
            (TOOL_MEMORY, TOOL_FILE_SIZE)
        );
        let at_default = Limits::printing(1024).for_pixels(40_000_000);
        assert_eq!(
            (at_default.memory, at_default.file_size),
            (1_280_000_000, 400_000_000)
        );
    }

    #[test]
    fn a_converter_prlimit_cannot_execute_is_told_from_one_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("needs-a-missing-interpreter");
        // Found and executable, but exec fails (ENOENT for the interpreter),
        // as it does on a noexec mount or for a binary removed meanwhile.
        std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = command(script.to_str().unwrap(), &Limits::printing(1))
            .unwrap()
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            could_not_exec(output.status, &stderr),
            "{:?} {stderr}",
            output.status
        );
        let failed = Command::new("sh")
            .args(["-c", "exit 127"])
            .output()
            .unwrap();
        assert!(!could_not_exec(failed.status, ""));
    }

    #[test]
    fn a_program_not_on_path_is_not_found_and_one_on_it_runs_under_prlimit() {
        let error = command("no-such-converter", &Limits::printing(1)).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        let dd = command("dd", &Limits::printing(1)).expect("dd is on PATH");
        let args: Vec<_> = dd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(Path::new(dd.get_program()).ends_with("prlimit"), "{args:?}");
        assert!(args.contains(&"--core=0".to_string()), "{args:?}");
        assert!(args.last().is_some_and(|a| a.ends_with("/dd")), "{args:?}");
    }

    #[test]
    fn without_prlimit_on_the_host_a_converter_runs_alone_and_unlimited() {
        // A host whose PATH has no prlimit (not Debian or Ubuntu, say).
        let bare = tempfile::tempdir().unwrap();
        assert_eq!(on_path_in("prlimit", bare.path().as_os_str()), None);
        assert!(on_path_in("prlimit", &search_path()).is_some());

        // Then the converter is run itself, and the heap limit that stops
        // it under prlimit does not.
        let small = Limits {
            memory: 16 << 20,
            ..Limits::printing(1024)
        };
        let dd = ["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"];
        let mut alone = command_through(None, "dd", &small).unwrap();
        assert!(Path::new(alone.get_program()).ends_with("dd"));
        assert_eq!(alone.get_args().count(), 0);
        let status = alone.args(dd).output().unwrap().status;
        assert!(status.success(), "{status:?}");
        let mut limited = command("dd", &small).unwrap();
        let status = limited.args(dd).output().unwrap().status;
        assert!(!status.success(), "{status:?}");
    }
}
