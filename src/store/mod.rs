//! Persistence: PostgreSQL for receipts (the permanent record) and their
//! webhook deliveries, and a blob store for the uploaded images.

pub mod blobs;
pub mod db;
pub mod duplicates;
pub mod finish;
pub mod images;
pub mod listing;
pub mod models;
pub mod receipts;
pub mod schema;
pub mod tls;
pub mod webhooks;

pub use blobs::{BlobError, BlobStore};
pub use db::{Db, DbError};
pub use finish::{Finished, Notify, Unfinished};

/// The SHA-256 of an upload, hex-encoded (stored to spot duplicates).
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

/// The moment `span` ago, for a query's cutoff; the earliest time there is
/// when `span` reaches further back (a setting of "for ever"), so nothing
/// is older.
pub fn moment_ago(span: std::time::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|span| chrono::Utc::now().checked_sub_signed(span))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// A URL with any password replaced, safe to show in errors and logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // Setting a password only fails for URLs that cannot have one,
            // and this one already has one.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}
