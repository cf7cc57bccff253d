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
    ApiKey, ApiKeys, BlobSettings, DatabaseSettings, GraphqlLimits, HttpSettings, OcrSettings,
    QueueSettings, RateLimit, ReconcileSettings, RedisNodes, RetentionSettings, ServerLimits,
    ShutdownSettings,
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
        assert_eq!(
            settings.ocr.engine.ocr_alphabet,
            crate::ocr::ppocr::Script::Latin
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_variable() {
        for (flag, variable) in [
            ("--ocr-concurrency=0", "OCR_CONCURRENCY"),
            ("--redis-url=http://x", "REDIS_URL"),
            ("--database-url=nonsense", "DATABASE_URL"),
            ("--database-max-connections=0", "DATABASE_MAX_CONNECTIONS"),
            ("--queue-name=a:b", "QUEUE_NAME"),
            ("--job-lock-ms=10", "JOB_LOCK_MS"),
            ("--ocr-rate-duration-ms=0", "OCR_RATE_DURATION_MS"),
            ("--webhook-urls=ftp://x", "WEBHOOK_URLS"),
            ("--webhook-secret=plain", "WEBHOOK_SECRET"),
            ("--webhook-backoff-ms=0", "WEBHOOK_BACKOFF_MS"),
            ("--http-header-timeout-ms=0", "HTTP_HEADER_TIMEOUT_MS"),
            ("--http-max-connections=none", "HTTP_MAX_CONNECTIONS"),
            (
                "--max-upload-bytes-in-flight=0",
                "MAX_UPLOAD_BYTES_IN_FLIGHT",
            ),
            ("--graphql-max-depth=0", "GRAPHQL_MAX_DEPTH"),
            ("--graphql-introspection=maybe", "GRAPHQL_INTROSPECTION"),
            ("--ocr-alphabet=greek", "OCR_ALPHABET"),
            ("--max-image-pixels=0", "MAX_IMAGE_PIXELS"),
            ("--max-pdf-pages=0", "MAX_PDF_PAGES"),
            ("--max-upload-bytes=0", "MAX_UPLOAD_BYTES"),
            (
                "--max-upload-bytes=18446744073709551615",
                "MAX_UPLOAD_BYTES",
            ),
        ] {
            let error = parse(&[flag]).expect_err(flag).to_string();
            assert!(error.contains(variable), "{flag}: {error}");
        }
    }

    #[test]
    fn api_keys_are_split_on_commas_and_plain_ones_named_by_position() {
        let settings = parse(&["--api-keys", " a, b ,,c"]).expect("keys parse");
        let keys = &settings.http.api_keys;
        assert_eq!(keys.names(), ["key1", "key2", "key3"]);
        assert_eq!(keys.identify("b").map(|k| k.name.as_str()), Some("key2"));
        assert!(keys.identify("d").is_none());
        assert!(!keys.are_named());
    }

    #[test]
    fn named_keys_carry_their_name_and_the_admin_mark() {
        let settings =
            parse(&["--api-keys", "shop:s3cret,ops:t0ps3cret:admin,plain"]).expect("keys parse");
        let keys = &settings.http.api_keys;
        assert!(keys.are_named());
        let shop = keys.identify("s3cret").expect("shop's key");
        assert_eq!((shop.name.as_str(), shop.admin), ("shop", false));
        let ops = keys.identify("t0ps3cret").expect("ops's key");
        assert_eq!((ops.name.as_str(), ops.admin), ("ops", true));
        assert_eq!(
            keys.identify("plain").map(|k| k.name.as_str()),
            Some("key3")
        );
        assert!(keys.identify("shop:s3cret").is_none());
        assert!(
            !format!("{keys:?}").contains("s3cret"),
            "keys are not printed"
        );
    }

    #[test]
    fn a_malformed_key_list_is_refused_naming_api_keys() {
        for bad in [
            "a:b:c",
            "a:b:admin:x",
            ":key",
            "name:",
            "a:k1,a:k2",
            "a:k,b:k",
        ] {
            let error = parse(&["--api-keys", bad]).expect_err(bad).to_string();
            assert!(error.contains("API_KEYS"), "{bad}: {error}");
        }
    }
}
