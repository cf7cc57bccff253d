//! Sending one attempt of a delivery: a signed POST through a client that
//! resolves names itself and refuses non-public addresses at the moment it
//! connects, follows no redirect, uses no proxy, gives up after the
//! timeout and reads at most 64 KiB of the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::signing::WebhookSecret;
use super::target::{TargetError, WebhookUrl, check_public, origin_only};
use crate::config::WebhookSettings;

/// The most of a target's answer that is read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What an attempt's answer means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: done.
    Delivered,
    /// 410 Gone: the target wants no more; stop.
    Gone,
    /// The target may not be reached (not http(s), or not a public address):
    /// stop, retrying cannot help.
    Refused,
    /// Anything else: another status, a timeout, no connection.
    Retry,
}

/// One attempt as it happened.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub status: Option<u16>,
    pub duration: Duration,
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// Sends deliveries; one per process, sharing its connection pool.
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    secret: Option<WebhookSecret>,
    allow_private: bool,
    timeout: Duration,
}

impl WebhookSender {
    pub fn new(settings: &WebhookSettings) -> Result<Self, reqwest::Error> {
        let resolver = Arc::new(CheckedResolver {
            allow_private: settings.allow_private,
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .dns_resolver(resolver)
            .user_agent(concat!("receipt-ocr-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            secret: settings.secret.0.clone(),
            allow_private: settings.allow_private,
            timeout: settings.timeout,
        })
    }

    /// POST `body` to `url` as message `id`, signed when a secret is set.
    pub async fn send(&self, url: &str, id: &str, body: Vec<u8>) -> AttemptReport {
        let started = Instant::now();
        let report = |status, error: Option<String>, verdict| AttemptReport {
            status,
            duration: started.elapsed(),
            error,
            verdict,
        };
        if let Err(refused) = self.check(url) {
            return report(None, Some(refused.to_string()), Verdict::Refused);
        }
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &self.secret {
            request = request.header("webhook-signature", secret.sign(id, timestamp, &body));
        }
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                let error = answer_error(&response);
                drain(response).await;
                report(Some(status.as_u16()), error, verdict_of(status))
            }
            Err(e) => match refusal_in(&e) {
                Some(refused) => report(None, Some(refused.to_string()), Verdict::Refused),
                None => report(None, Some(self.describe(&e)), Verdict::Retry),
            },
        }
    }

    /// The URL's form, and its address when it is an IP literal (a name's
    /// addresses are checked by the resolver as the client connects).
    fn check(&self, url: &str) -> Result<(), TargetError> {
        let url = WebhookUrl::parse(url)?;
        match url.literal_address() {
            Some(ip) if !self.allow_private => check_public(&url.host_name(), ip),
            _ => Ok(()),
        }
    }

    /// What went wrong, for the attempt's record, which every key that
    /// sees the job reads: the target's path and query (which may hold a
    /// token) are left out of reqwest's "for url (…)".
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {} s", self.timeout.as_secs_f32());
        }
        let text = crate::telemetry::with_causes(error);
        match error.url() {
            Some(url) => text.replace(url.as_str(), &origin_only(url)),
            None => text,
        }
    }
}

fn verdict_of(status: reqwest::StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        _ => Verdict::Retry,
    }
}

/// What was wrong with an answer that is not a success.
fn answer_error(response: &reqwest::Response) -> Option<String> {
    let status = response.status();
    if status.is_success() {
        return None;
    }
    if status.is_redirection() {
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or("nowhere");
        return Some(format!(
            "HTTP {status}: redirect to {location} not followed; answer 2xx at the URL itself"
        ));
    }
    Some(format!("HTTP {status}"))
}

/// Read and drop at most [`MAX_RESPONSE_BYTES`] of the answer: enough to
/// let a well-behaved server's connection be reused, never a flood.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read >= MAX_RESPONSE_BYTES {
            break;
        }
    }
}

/// The policy refusal behind a failed request, if that is what it was.
fn refusal_in(error: &reqwest::Error) -> Option<&TargetError> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetError>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

/// Resolves a target's name and refuses it when any of its addresses is
/// not public: the client then connects only to addresses checked here.
struct CheckedResolver {
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                for address in &addresses {
                    check_public(&host, address.ip())?;
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}
