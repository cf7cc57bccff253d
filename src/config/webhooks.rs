//! The webhook section: where every receipt's final event goes, how it is
//! signed, how long deliveries are retried, and which addresses they may
//! reach.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use clap::Args;

use super::parse;
use crate::job::webhook::{WebhookSecret, WebhookUrl};

#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Comma-separated URLs told about every receipt (besides an upload's
    /// own `callbackUrl`).
    #[arg(long = "webhook-urls", id = "webhook_urls", env = "WEBHOOK_URLS", value_name = "WEBHOOK_URLS",
          default_value = "", value_parser = parse_urls)]
    pub urls: WebhookUrls,
    /// `whsec_` and the base64 of the signing key (Standard Webhooks); empty:
    /// deliveries are sent unsigned.
    #[arg(long = "webhook-secret", id = "webhook_secret", env = "WEBHOOK_SECRET", value_name = "WEBHOOK_SECRET",
          default_value = "", hide_env_values = true, value_parser = parse_secret)]
    pub secret: OptionalSecret,
    /// Let webhooks reach loopback, private, link-local and metadata
    /// addresses (local testing only).
    #[arg(long = "webhook-allow-private", id = "webhook_allow_private", env = "WEBHOOK_ALLOW_PRIVATE",
          value_name = "WEBHOOK_ALLOW_PRIVATE", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub allow_private: bool,
    /// Attempts per delivery before it is given up.
    #[arg(
        long = "webhook-attempts",
        id = "webhook_attempts",
        env = "WEBHOOK_ATTEMPTS",
        value_name = "WEBHOOK_ATTEMPTS",
        default_value = "8"
    )]
    pub attempts: NonZeroU32,
    /// The first retry's delay (ms); it doubles on each retry. The default
    /// spreads 8 attempts over about 21 hours.
    #[arg(long = "webhook-backoff-ms", id = "webhook_backoff_ms", env = "WEBHOOK_BACKOFF_MS",
          value_name = "WEBHOOK_BACKOFF_MS", default_value = "600000",
          value_parser = parse::positive_millis)]
    pub backoff: Duration,
    /// How long one attempt may take, connecting included (ms).
    #[arg(long = "webhook-timeout-ms", id = "webhook_timeout_ms", env = "WEBHOOK_TIMEOUT_MS",
          value_name = "WEBHOOK_TIMEOUT_MS", default_value = "10000",
          value_parser = parse::positive_millis)]
    pub timeout: Duration,
    /// Deliveries in flight at once in each worker process.
    #[arg(long = "webhook-concurrency", id = "webhook_concurrency", env = "WEBHOOK_CONCURRENCY",
          value_name = "WEBHOOK_CONCURRENCY", default_value = "8",
          value_parser = parse::at_least_one)]
    pub concurrency: NonZeroUsize,
    /// Days a settled delivery (delivered, failed or gone) and its attempts
    /// are kept; 0 keeps them for ever.
    #[arg(
        long = "webhook-keep-days",
        id = "webhook_keep_days",
        env = "WEBHOOK_KEEP_DAYS",
        value_name = "WEBHOOK_KEEP_DAYS",
        default_value = "0"
    )]
    pub keep_days: u32,
}

impl WebhookSettings {
    /// How long a settled delivery is kept; `None`: for ever.
    pub fn keep(&self) -> Option<Duration> {
        parse::kept_for(self.keep_days)
    }

    /// The time from a delivery's first attempt to its last, when every
    /// attempt fails: the backoff doubles between attempts.
    pub fn retry_window(&self) -> Duration {
        let retries = self.attempts.get().saturating_sub(1).min(31);
        self.backoff
            .checked_mul(2u32.pow(retries) - 1)
            .unwrap_or(Duration::MAX)
    }

    /// How long a pending delivery may go untouched before its job is
    /// looked for: its longest wait between attempts and half again (the
    /// webhooks queue may be behind), and an attempt's timeout.
    pub fn overdue_after(&self) -> Duration {
        let gap = self.longest_gap();
        gap.saturating_add(gap / 2).saturating_add(self.timeout)
    }

    /// The longest wait between two attempts of a delivery (before its
    /// last one).
    pub fn longest_gap(&self) -> Duration {
        let doublings = self.attempts.get().saturating_sub(2).min(31);
        self.backoff
            .checked_mul(2u32.pow(doublings))
            .unwrap_or(Duration::MAX)
    }
}

/// The deployment's webhook targets (`WEBHOOK_URLS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookUrls(pub Vec<WebhookUrl>);

/// The signing key, when one is set.
#[derive(Debug, Clone, Default)]
pub struct OptionalSecret(pub Option<WebhookSecret>);

fn parse_urls(raw: &str) -> Result<WebhookUrls, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| WebhookUrl::parse(u).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()
        .map(WebhookUrls)
}

fn parse_secret(raw: &str) -> Result<OptionalSecret, String> {
    if raw.trim().is_empty() {
        return Ok(OptionalSecret(None));
    }
    WebhookSecret::parse(raw.trim())
        .map(|secret| OptionalSecret(Some(secret)))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_window_is_about_a_day() {
        let settings = WebhookSettings {
            urls: WebhookUrls::default(),
            secret: OptionalSecret(None),
            allow_private: false,
            attempts: NonZeroU32::new(8).expect("8 is not 0"),
            backoff: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            concurrency: NonZeroUsize::new(8).expect("8 is not 0"),
            keep_days: 0,
        };
        // 10 + 20 + 40 + 80 + 160 + 320 + 640 minutes.
        assert_eq!(settings.retry_window(), Duration::from_secs(1270 * 60));
        assert_eq!(settings.longest_gap(), Duration::from_secs(640 * 60));
        // About 16 hours untouched before a pending delivery's job is sought.
        assert_eq!(settings.overdue_after(), Duration::from_secs(960 * 60 + 10));
        // Settings far past any use saturate rather than overflow.
        let huge = WebhookSettings {
            attempts: NonZeroU32::new(1000).expect("not 0"),
            backoff: Duration::from_secs(u64::MAX / 2),
            ..settings
        };
        assert_eq!(huge.longest_gap(), Duration::MAX);
        assert_eq!(huge.retry_window(), Duration::MAX);
        assert_eq!(huge.overdue_after(), Duration::MAX);
    }

    #[test]
    fn urls_are_split_on_commas_and_checked() {
        let urls = parse_urls(" https://a.example/x, ,http://b.example ").expect("two URLs");
        assert_eq!(urls.0.len(), 2);
        assert!(parse_urls("ftp://a.example").is_err());
        assert!(parse_urls("not a url").is_err());
    }
}
