//! One client connection: served by hyper, watched by us. The socket is
//! wrapped so that bytes arriving on an idle connection start a request's
//! header clock, and so that an overlong request line is answered with our
//! JSON 414 and too many or too large headers with our JSON 431 (hyper's
//! own answers to both have no body); requests and their response bodies mark the connection busy
//! until the response has been written. A watchdog closes the connection
//! when its header or idle time runs out.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::http;
use poem::http::StatusCode;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::registry::{Phase, Slot, Watched};
use crate::config::ServerLimits;

/// The longest request line (method, path with query, version) taken.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;

/// The most header lines a request may have: hyper's own limit, which it
/// answers with a bare 431.
pub const MAX_HEADERS: usize = 100;

/// The largest request head (request line and headers) taken; hyper's own
/// limit is about 400 KiB, answered with a bare 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Put in a request's extensions when it declares a body: whoever reads
/// the body whole marks it, so the connection knows that the next bytes
/// begin a new request (and may be checked as one).
#[derive(Clone)]
pub struct BodyRead(Arc<AtomicBool>);

impl BodyRead {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
}

pub struct Connection {
    pub app: Arc<BoxEndpoint<'static>>,
    pub limits: Arc<ServerLimits>,
    /// Cancelled when the server stops.
    pub stopping: CancellationToken,
}

/// What the socket wrapper and the requests of one connection share.
struct Shared {
    watched: Arc<Watched>,
    /// A request's body was left unread: the following bytes may be the
    /// rest of it, so request lines are no longer checked.
    lines_unknown: AtomicBool,
}

impl Connection {
    pub async fn serve(self, stream: TcpStream, remote: SocketAddr, slot: Slot) {
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let watched = slot.watched.clone();
        let shared = Arc::new(Shared {
            watched: watched.clone(),
            lines_unknown: AtomicBool::new(false),
        });
        let io = WatchedIo {
            stream,
            shared: shared.clone(),
            head: HeadScan::Reading(HeadSoFar::default()),
            _slot: slot,
        };
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let end = RequestEnd::begin(shared.clone(), &request);
            let app = app.clone();
            let addresses = (
                LocalAddr(Addr::SocketAddr(local)),
                RemoteAddr(Addr::SocketAddr(remote)),
            );
            async move {
                let mut request =
                    poem::Request::from((request, addresses.0, addresses.1, Scheme::HTTP));
                if let Some(body_read) = &end.body_read {
                    request.extensions_mut().insert(body_read.clone());
                }
                let response: http::Response<BoxBody<Bytes, io::Error>> =
                    app.get_response(request).await.into();
                Ok::<_, Infallible>(response.map(|body| EndOnDrop { body, _end: end }))
            }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let close_now = tokio::select! {
            _ = connection.as_mut() => {
                watched.phase.send_replace(Phase::Upgraded);
                return;
            }
            expired = expiry(watched.phase.subscribe(), &self.limits) => expired == Expired::Header,
            () = watched.evicted.cancelled() => !matches!(*watched.phase.borrow(), Phase::Busy(_)),
            () = self.stopping.cancelled() => false,
        };
        if close_now {
            return;
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
        watched.phase.send_replace(Phase::Upgraded);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expired {
    Header,
    Idle,
}

/// Resolves when the connection's header or idle time runs out.
async fn expiry(mut phases: watch::Receiver<Phase>, limits: &ServerLimits) -> Expired {
    loop {
        let phase = *phases.borrow_and_update();
        let (deadline, expired) = match phase {
            Phase::Head(since) => (since + limits.header_timeout, Expired::Header),
            Phase::Idle(since) => (since + limits.idle_timeout, Expired::Idle),
            Phase::Busy(_) | Phase::Upgraded => {
                if phases.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return expired,
            changed = phases.changed() => if changed.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// One request from its headers to the end of its response.
struct RequestEnd {
    shared: Arc<Shared>,
    body_read: Option<BodyRead>,
}

impl RequestEnd {
    fn begin(shared: Arc<Shared>, request: &http::Request<Incoming>) -> Self {
        shared.watched.request_started();
        let headers = request.headers();
        let declares_body = headers.contains_key(http::header::TRANSFER_ENCODING)
            || headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        Self {
            shared,
            body_read: declares_body.then(|| BodyRead(Arc::new(AtomicBool::new(false)))),
        }
    }
}

impl Drop for RequestEnd {
    fn drop(&mut self) {
        if let Some(body_read) = &self.body_read
            && !body_read.0.load(Ordering::Acquire)
        {
            self.shared.lines_unknown.store(true, Ordering::Release);
        }
        self.shared.watched.request_ended();
    }
}

/// A response body that ends its request when hyper has written it (or
/// given up on it) and drops it.
struct EndOnDrop {
    body: BoxBody<Bytes, io::Error>,
    _end: RequestEnd,
}

impl hyper::body::Body for EndOnDrop {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Where the socket wrapper is in the current request's head.
enum HeadScan {
    /// In the head, no blank line yet.
    Reading(HeadSoFar),
    /// The head ended (or is not checked on this connection).
    Done,
    /// HTTP/2: no request heads to read after the preface.
    Off,
    /// Too long: answered, and the connection reads as closed.
    Refused,
}

/// What has arrived of a request's head.
#[derive(Debug, Default, Clone, Copy)]
struct HeadSoFar {
    /// Bytes in all.
    bytes: usize,
    /// Lines ended, the request line first.
    lines: usize,
    /// Bytes of the line under way.
    line: usize,
}

/// Why a head is refused.
#[derive(Debug, PartialEq, Eq)]
enum HeadRefusal {
    LineTooLong,
    HeadersTooLarge,
}

impl HeadSoFar {
    /// Take in newly read bytes: `Ok(true)` once the head has ended (the
    /// bytes after its blank line are its body or the next request).
    fn take(&mut self, mut bytes: &[u8]) -> Result<bool, HeadRefusal> {
        let ended = loop {
            let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
                self.line += bytes.len();
                self.bytes += bytes.len();
                break false;
            };
            let line = self.line + end;
            (self.line, self.bytes, self.lines) = (0, self.bytes + end + 1, self.lines + 1);
            bytes = &bytes[end + 1..];
            if self.lines == 1 && line > MAX_REQUEST_LINE {
                return Err(HeadRefusal::LineTooLong);
            }
            // An empty line (or a lone CR) after the request line.
            if self.lines > 1 && line <= 1 {
                break true;
            }
            if self.lines > 1 + MAX_HEADERS {
                return Err(HeadRefusal::HeadersTooLarge);
            }
        };
        if self.lines == 0 && self.line > MAX_REQUEST_LINE {
            return Err(HeadRefusal::LineTooLong);
        }
        if self.bytes > MAX_HEAD_BYTES {
            return Err(HeadRefusal::HeadersTooLarge);
        }
        Ok(ended)
    }
}

/// The client's socket as hyper sees it.
struct WatchedIo {
    stream: TcpStream,
    shared: Arc<Shared>,
    head: HeadScan,
    /// Keeps the connection counted for as long as the socket is open.
    _slot: Slot,
}

impl WatchedIo {
    /// Look at newly read bytes; false when the request's head is refused
    /// (then answered with a 414 or 431, and the connection ends).
    fn saw(&mut self, bytes: &[u8]) -> bool {
        if self.shared.watched.bytes_arrived()
            && matches!(self.head, HeadScan::Done)
            && !self.shared.lines_unknown.load(Ordering::Acquire)
        {
            self.head = HeadScan::Reading(HeadSoFar::default());
        }
        let HeadScan::Reading(head) = &mut self.head else {
            return true;
        };
        if head.bytes == 0 && bytes.starts_with(b"PRI ") {
            self.head = HeadScan::Off;
            return true;
        }
        let answer = match head.take(bytes) {
            Ok(false) => return true,
            Ok(true) => {
                self.head = HeadScan::Done;
                return true;
            }
            Err(HeadRefusal::LineTooLong) => raw_error(
                URI_TOO_LONG,
                &format!(
                    "The request line is longer than {MAX_REQUEST_LINE} bytes. Send a shorter path and query (ids are short)."
                ),
                &[],
            ),
            Err(HeadRefusal::HeadersTooLarge) => raw_error(
                HEADERS_TOO_LARGE,
                &format!(
                    "The request has more than {MAX_HEADERS} header lines or a head over {} KiB. Send fewer or smaller headers.",
                    MAX_HEAD_BYTES / 1024
                ),
                &[],
            ),
        };
        self.head = HeadScan::Refused;
        let _ = self.stream.try_write(&answer);
        false
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        loop {
            ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
            let read = &buf.filled()[before..];
            if read.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if matches!(this.head, HeadScan::Refused) || !this.saw(read) {
                // Answered with a 414 or 431: swallow what the client still sends
                // until it closes (closing on unread bytes would reset the
                // connection, losing the answer); the header timeout
                // bounds the wait.
                buf.set_filled(before);
                continue;
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// How long a refused connection is given to take its answer.
const REFUSAL_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection beyond the cap while every open one is busy: a 503, then
/// whatever the client sends is read and dropped for a moment, so that
/// closing does not reset the connection before the answer is read.
pub fn refuse_busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let message = "The server has as many connections as it takes (HTTP_MAX_CONNECTIONS), all busy. Retry after 1 s.";
    let answer = raw_error(SERVER_BUSY, message, &[("retry-after", "1")]);
    tokio::spawn(async move {
        let refuse = async {
            stream.write_all(&answer).await?;
            stream.shutdown().await?;
            let mut scratch = [0u8; 4096];
            while tokio::io::AsyncReadExt::read(&mut stream, &mut scratch).await? > 0 {}
            Ok::<_, io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_LINGER, refuse).await;
    });
}

/// The answers this layer gives itself, as the API's error codes name
/// them (`api::errors::ErrorCode`; the server sits below the API).
const URI_TOO_LONG: (StatusCode, &str) = (StatusCode::URI_TOO_LONG, "uri_too_long");
const HEADERS_TOO_LARGE: (StatusCode, &str) = (
    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    "request_header_fields_too_large",
);
const SERVER_BUSY: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "server_busy");

/// A whole HTTP/1.1 error response in our JSON shape, closing the
/// connection, for answers given outside hyper.
fn raw_error(
    (status, code): (StatusCode, &str),
    message: &str,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    [head.into_bytes(), body.into_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(headers: usize) -> Vec<u8> {
        let lines: String = (0..headers).map(|n| format!("x-{n}: 1\r\n")).collect();
        format!("GET / HTTP/1.1\r\n{lines}\r\nbody").into_bytes()
    }

    #[test]
    fn a_head_ends_at_its_blank_line_in_whatever_pieces_it_arrives() {
        let whole = head_of(3);
        for cut in 1..whole.len() {
            let mut head = HeadSoFar::default();
            let (first, rest) = whole.split_at(cut);
            let ended_first = head.take(first).unwrap();
            assert!(ended_first || head.take(rest).unwrap(), "cut at {cut}");
        }
        // LF alone ends lines too, as hyper takes them.
        let mut head = HeadSoFar::default();
        assert_eq!(head.take(b"GET / HTTP/1.1\nHost: x\n\n"), Ok(true));
    }

    #[test]
    fn more_headers_than_hypers_limit_or_a_head_too_large_is_refused() {
        assert_eq!(HeadSoFar::default().take(&head_of(MAX_HEADERS)), Ok(true));
        assert_eq!(
            HeadSoFar::default().take(&head_of(MAX_HEADERS + 1)),
            Err(HeadRefusal::HeadersTooLarge)
        );
        let mut head = HeadSoFar::default();
        let big = format!("GET / HTTP/1.1\r\nCookie: {}", "c".repeat(MAX_HEAD_BYTES));
        assert_eq!(head.take(big.as_bytes()), Err(HeadRefusal::HeadersTooLarge));
        let long = format!("GET /{} HTTP/1.1", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(
            HeadSoFar::default().take(long.as_bytes()),
            Err(HeadRefusal::LineTooLong)
        );
    }
}
