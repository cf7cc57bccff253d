//! Typed settings, in sections that carry their behaviour. Every value comes
//! from a flag, an environment variable (a `.env` file is read first) or its
//! default here, the one place that defines defaults; each is checked as it
//! is parsed, so a bad value stops start-up with a message naming its
//! variable, and no half-checked `Settings` ever exists.
//!
//! Each part of the program is handed only its section.

mod parse;
mod sections;
mod webhooks;

use clap::Args;

pub use sections::{
    ApiKeys, BlobSettings, DatabaseSettings, HttpSettings, OcrSettings, QueueSettings, RateLimit,
    ReconcileSettings, RetentionSettings, ShutdownSettings,
};
pub use webhooks::{OptionalSecret, WebhookSettings, WebhookUrls};

/// Settings shared by every subcommand that talks to Redis, PostgreSQL or
/// the blob store. Each flag's value name is its environment variable, so a
/// parse error names the variable to fix.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub queue: QueueSettings,
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub blobs: BlobSettings,
    #[command(flatten)]
    pub ocr: OcrSettings,
    #[command(flatten)]
    pub retention: RetentionSettings,
    #[command(flatten)]
    pub shutdown: ShutdownSettings,
    #[command(flatten)]
    pub reconcile: ReconcileSettings,
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    #[command(flatten)]
    pub inputs: crate::inputs::InputSettings,
}

impl Settings {
    /// Settings from the environment and defaults alone, no flags (for the
    /// default subcommand, tests and tools).
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        <Only as clap::Parser>::try_parse_from(["receipt-ocr"]).map(|only| only.settings)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let argv = std::iter::once("receipt-ocr").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.settings)
    }

    #[test]
    fn defaults_are_the_original_designs() {
        let settings = parse(&[]).expect("defaults parse");
        assert_eq!(settings.ocr.concurrency.get(), 2);
        assert_eq!(settings.queue.rate_limit.max, 5);
        assert_eq!(settings.queue.rate_limit.window.as_secs(), 60);
        assert_eq!(settings.queue.attempts.get(), 3);
        assert_eq!(settings.queue.backoff.as_millis(), 2000);
        assert_eq!(settings.http.port, 4000);
        assert!(settings.http.api_keys.is_open());
        assert_eq!(settings.webhooks.attempts.get(), 8);
        assert!(!settings.webhooks.allow_private);
        assert_eq!(settings.webhooks.timeout.as_secs(), 10);
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_variable() {
        for (flag, variable) in [
            ("--ocr-concurrency=0", "OCR_CONCURRENCY"),
            ("--redis-url=http://x", "REDIS_URL"),
            ("--database-url=nonsense", "DATABASE_URL"),
            ("--queue-name=a:b", "QUEUE_NAME"),
            ("--job-lock-ms=10", "JOB_LOCK_MS"),
            ("--ocr-rate-duration-ms=0", "OCR_RATE_DURATION_MS"),
            ("--webhook-urls=ftp://x", "WEBHOOK_URLS"),
            ("--webhook-secret=plain", "WEBHOOK_SECRET"),
            ("--webhook-backoff-ms=0", "WEBHOOK_BACKOFF_MS"),
        ] {
            let error = parse(&[flag]).expect_err(flag).to_string();
            assert!(error.contains(variable), "{flag}: {error}");
        }
    }

    #[test]
    fn api_keys_are_split_on_commas() {
        let settings = parse(&["--api-keys", " a, b ,,c"]).expect("keys parse");
        assert_eq!(settings.http.api_keys.keys(), ["a", "b", "c"]);
        assert!(settings.http.api_keys.accepts("b"));
        assert!(!settings.http.api_keys.accepts("d"));
    }
}
