//! TLS to PostgreSQL, asked for in DATABASE_URL as libpq users write it:
//! `sslmode=require` (or `verify-ca`, `verify-full`) and, for a server whose
//! certificate a private authority signed (Amazon RDS, most managed
//! services), `sslrootcert=/path/to/ca.pem`. The server's certificate is
//! always checked, against that file or else the system's roots, and its
//! name against the URL's host: stricter than libpq's `require`, which
//! checks nothing without a root file. `disable`, `prefer` or no `sslmode`
//! connect without TLS, as before.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use diesel::ConnectionResult;
use diesel::result::ConnectionError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What DATABASE_URL's TLS parameters ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsWish {
    /// No TLS (no `sslmode`, or `disable` / `prefer`).
    Off,
    /// TLS with the server's certificate checked, against `sslrootcert`'s
    /// authorities when given, else the system's.
    Verified { root_file: Option<PathBuf> },
}

/// Split DATABASE_URL into the URL tokio-postgres reads (our TLS parameters
/// taken out) and what they ask for. An unknown `sslmode` is an error that
/// names the ones understood.
pub fn split_url(raw: &str) -> Result<(String, TlsWish), String> {
    let mut url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    let mut mode = None;
    let mut root_file = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" => root_file = Some(PathBuf::from(value.into_owned())),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    let wish = match mode.as_deref() {
        None | Some("disable" | "prefer") if root_file.is_some() => {
            return Err(
                "has sslrootcert without sslmode=require (or verify-full): say which".into(),
            );
        }
        None | Some("disable" | "prefer") => TlsWish::Off,
        Some("require" | "verify-ca" | "verify-full") => TlsWish::Verified { root_file },
        Some(other) => {
            return Err(format!(
                "has sslmode={other}; use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    };
    if let TlsWish::Verified { .. } = wish {
        kept.push(("sslmode".into(), "require".into()));
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((url.into(), wish))
}

/// How this process reaches its PostgreSQL server.
#[derive(Clone)]
pub struct PgTarget {
    /// The URL as tokio-postgres reads it.
    url: String,
    tls: Option<MakeRustlsConnect>,
}

impl PgTarget {
    /// From DATABASE_URL; a root file that cannot be read is an error that
    /// names it.
    pub fn new(raw: &str) -> Result<Self, String> {
        let (url, wish) = split_url(raw)?;
        let tls = match wish {
            TlsWish::Off => None,
            TlsWish::Verified { root_file } => Some(connector(root_file.as_deref())?),
        };
        Ok(Self { url, tls })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same server and settings, another database.
    pub fn with_database(&self, name: &str) -> Self {
        let mut url = url::Url::parse(&self.url).expect("parsed when made");
        url.set_path(&format!("/{name}"));
        Self {
            url: url.into(),
            tls: self.tls.clone(),
        }
    }

    /// One connection, over TLS when asked for.
    pub async fn establish(&self) -> ConnectionResult<AsyncPgConnection> {
        let Some(tls) = &self.tls else {
            return AsyncPgConnection::establish(&self.url).await;
        };
        let (client, connection) = tokio_postgres::connect(&self.url, tls.clone())
            .await
            .map_err(|e| ConnectionError::BadConnection(with_causes(&e)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }
}

/// An error and what caused it ("error performing TLS handshake: invalid
/// peer certificate: UnknownIssuer"): tokio-postgres says only the first.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text = format!("{text}: {next}");
        cause = next.source();
    }
    text
}

/// A rustls client trusting `root_file`'s certificates, or the system's.
fn connector(root_file: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    match root_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    format!(
                        "has sslrootcert={}, which cannot be read as PEM certificates: {e}",
                        path.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "has sslrootcert={}, which holds no certificate",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "asks for TLS but this system has no root certificates (install \
                     ca-certificates, or give the server's authority as sslrootcert=/path/ca.pem)"
                        .into(),
                );
            }
        }
    }
    // ring, named: more than one provider is built into this binary.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_and_understood() {
        let (url, wish) = split_url("postgres://u:p@db.example:5432/receipts").expect("plain");
        assert_eq!(
            (url.as_str(), wish),
            ("postgres://u:p@db.example:5432/receipts", TlsWish::Off)
        );
        let (url, wish) = split_url(
            "postgres://db.example/receipts?application_name=ocr&sslmode=verify-full&sslrootcert=%2Fetc%2Frds.pem",
        )
        .expect("verified");
        assert_eq!(
            url,
            "postgres://db.example/receipts?application_name=ocr&sslmode=require"
        );
        assert_eq!(
            wish,
            TlsWish::Verified {
                root_file: Some("/etc/rds.pem".into())
            }
        );
        let (url, wish) = split_url("postgres://db.example/r?sslmode=prefer").expect("prefer");
        assert_eq!(
            (url.as_str(), wish),
            ("postgres://db.example/r", TlsWish::Off)
        );
        let refused = split_url("postgres://db.example/r?sslmode=allow").expect_err("unknown");
        assert!(refused.contains("verify-full"), "{refused}");
        assert!(split_url("postgres://db.example/r?sslrootcert=/ca.pem").is_err());
    }
}
