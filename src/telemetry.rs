//! Logging set-up: `tracing` to stderr, filtered by RUST_LOG (default
//! `info`).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber. Safe to call more than once (tests).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,ractor=warn,bullmq=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
