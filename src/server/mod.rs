//! The HTTP server under poem's endpoints, ours so that slow or greedy
//! clients cannot starve the others (poem's own server exposes none of
//! this):
//!
//! - a request's headers must arrive within HTTP_HEADER_TIMEOUT_MS of the
//!   connection's start or of the request's first byte, else the
//!   connection is closed;
//! - a kept-alive connection waits at most HTTP_IDLE_TIMEOUT_MS for its
//!   next request;
//! - at most HTTP_MAX_CONNECTIONS connections are open: a new one beyond
//!   that closes the oldest connection that has no request in progress
//!   (slow senders are the oldest), or, when all are busy, is answered 503;
//! - a request line longer than [`MAX_REQUEST_LINE`] gets a JSON 414, and
//!   more header lines than [`connection::MAX_HEADERS`] or a head over
//!   [`connection::MAX_HEAD_BYTES`] a JSON 431, instead of hyper's bare ones.
//!
//! A connection is served by hyper (HTTP/1.1 with upgrades, or h2c); see
//! [`connection`] for how each one is watched.

mod connection;
mod registry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::endpoint::BoxEndpoint;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::ServerLimits;
use connection::Connection;
use registry::{Admission, Registry};

pub use connection::{BodyRead, MAX_REQUEST_LINE};

/// File descriptors kept for everything but client connections (Redis,
/// PostgreSQL, the blob store, logs).
const RESERVED_FILES: usize = 256;

/// Serve `app` on `listener` until `shutdown` resolves; then stop
/// accepting, let requests in progress finish for up to `grace`, and
/// return.
pub async fn serve(
    listener: TcpListener,
    app: BoxEndpoint<'static>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let app = Arc::new(app);
    let registry = Arc::new(Registry::new(connection_cap(limits.max_connections)));
    let limits = Arc::new(limits);
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        accept_errors.pause(error).await;
                        continue;
                    }
                };
                match registry.admit() {
                    Admission::Admitted(slot) => {
                        let connection = Connection {
                            app: app.clone(),
                            limits: limits.clone(),
                            stopping: stopping.clone(),
                        };
                        connections.spawn(connection.serve(stream, remote, slot));
                    }
                    Admission::Full => connection::refuse_busy(stream),
                }
            }
        }
    }
    drop(listener);
    stopping.cancel();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// HTTP_MAX_CONNECTIONS, within what the process may open: the soft limit
/// on open files is raised to the hard one first (as servers do), and the
/// cap lowered, with a warning, if it still does not fit.
fn connection_cap(wanted: usize) -> usize {
    let Some(files) = raise_open_files_limit() else {
        return wanted;
    };
    let room = files.saturating_sub(RESERVED_FILES).max(1);
    if wanted > room {
        tracing::warn!(
            wanted,
            allowed = room,
            open_files = files,
            "HTTP_MAX_CONNECTIONS is above what the open-files limit allows; using the lower value (raise `ulimit -n`)"
        );
        return room;
    }
    wanted
}

/// Raise the soft open-files limit to the hard one; the new soft limit.
fn raise_open_files_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// Failed accepts (out of file descriptors, mostly): logged at most once a
/// second, and followed by a short pause instead of a busy loop.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<tokio::time::Instant>,
}

impl AcceptErrors {
    async fn pause(&mut self, error: std::io::Error) {
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now - at > Duration::from_secs(1))
        {
            tracing::warn!(%error, "could not accept a connection");
            self.last_logged = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
