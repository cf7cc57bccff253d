//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that
//! answers from a script (then 200), records every request it gets, and
//! checks Standard Webhooks signatures with its own HMAC, not ours.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Body, EndpointExt, Request, Response, Route, Server, handler};
use tokio::sync::oneshot;

use crate::helpers::wait_for;

/// The signing key tests give the service, as WEBHOOK_SECRET.
pub const SECRET: &str = "whsec_c2VjcmV0LWtleS1mb3ItcmVjZWlwdC1vY3ItdGVzdHM=";

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// 200 with a body that never ends (counted in `endless_bytes`).
    Endless,
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Verify `webhook-signature` as a receiver would: HMAC-SHA256 of
    /// `id.timestamp.body` with the key under `whsec_`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .expect("a base64 key");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        let signed = format!(
            "{}.{}.",
            self.header("webhook-id"),
            self.header("webhook-timestamp")
        );
        mac.update(signed.as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        // The header may carry several space-separated signatures.
        self.header("webhook-signature")
            .split(' ')
            .any(|sig| sig == expected)
    }
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
    /// Bytes of endless bodies handed to the connection so far.
    endless_bytes: AtomicUsize,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    script: Arc<Script>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    /// Answer `answers` in turn, then 200 to everything.
    pub async fn start(answers: Vec<Answer>) -> Receiver {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            ..Script::default()
        });
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the receiver");
        let port = acceptor.local_addr()[0]
            .as_socket_addr()
            .expect("a TCP address")
            .port();
        let app = Route::new().at("/*path", receive).data(script.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
                app,
                async move {
                    let _ = stopped.await;
                },
                None,
            ),
        );
        Receiver {
            base: format!("http://127.0.0.1:{port}"),
            script,
            _stop: stop,
        }
    }

    /// How much of its endless answers the receiver got to send.
    pub fn endless_bytes(&self) -> usize {
        self.script.endless_bytes.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().unwrap().clone()
    }

    /// Wait until `n` requests have arrived; return them all.
    pub async fn wait_for_requests(&self, n: usize) -> Vec<Received> {
        wait_for(|| async {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
        .await
    }
}

#[handler]
async fn receive(request: &Request, body: Body, script: poem::web::Data<&Arc<Script>>) -> Response {
    let at = Instant::now();
    let body = body.into_vec().await.unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    script.received.lock().unwrap().push(Received {
        path: request.uri().path().to_string(),
        headers,
        body,
        at,
    });
    let answer = script.answers.lock().unwrap().pop_front();
    match answer.unwrap_or(Answer::Status(200)) {
        Answer::Status(code) => Response::builder()
            .status(poem::http::StatusCode::from_u16(code).expect("a status code"))
            .body("answer"),
        Answer::Redirect(location) => Response::builder()
            .status(poem::http::StatusCode::FOUND)
            .header("location", location)
            .finish(),
        Answer::Endless => {
            let script = script.clone();
            let chunks = futures::stream::repeat_with(move || {
                script
                    .endless_bytes
                    .fetch_add(CHUNK.len(), Ordering::SeqCst);
                Ok::<_, std::io::Error>(bytes::Bytes::from_static(CHUNK))
            });
            Response::builder().body(Body::from_bytes_stream(chunks))
        }
    }
}

const CHUNK: &[u8] = &[b'x'; 16 * 1024];

/// The gaps between consecutive instants.
pub fn gaps(instants: &[Instant]) -> Vec<Duration> {
    instants.windows(2).map(|w| w[1] - w[0]).collect()
}
