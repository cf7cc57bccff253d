//! The `receipt-ocr` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use receipt_ocr::cli::{Cli, run};

/// Rust's own allocations (job data, results, spans, request bodies, image
/// buffers) go to mimalloc: glibc's malloc was a fifth of the CPU of the
/// queue path (README, "bench queue"). Tesseract and ONNX Runtime keep
/// glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            let code = runtime.block_on(run_cli());
            // An OCR read still on a blocking thread after shutdown is not
            // waited for: its job was handed back to the queue.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            code
        }
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli() -> ExitCode {
    // A missing .env is normal; a broken one is reported by the settings.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if cli.command.as_ref().is_some_and(|c| c.is_client()) {
        die_quietly_on_closed_pipe();
    }
    let _telemetry = match receipt_ocr::telemetry::init() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            let unreachable = e.downcast_ref::<receipt_ocr::client::Unreachable>();
            match unreachable {
                Some(_) => ExitCode::from(receipt_ocr::cli::exit::UNREACHABLE),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// glibc gives each thread that allocates its own heap arena, up to 8 per
/// core; OCR on blocking threads then leaves hundreds of MiB fragmented
/// across them. Two arenas cut peak RSS by about a third at the same speed
/// (measured with bench/compare.sh). `MALLOC_ARENA_MAX` still overrides.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter (glibc takes its
        // own lock); it runs before the runtime starts any thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// A client command piped into `head` stops when the pipe closes, as Unix
/// tools do, instead of panicking in `println!` (Rust ignores SIGPIPE by
/// default). Servers keep ignoring it: a client hanging up on a socket
/// must not stop them.
fn die_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: only restores the default disposition of one signal, before
    // anything is written.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
