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
use diesel_async::AsyncPgConnection;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
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
/// taken out, every other one kept byte for byte: tokio-postgres decodes
/// only `%xx`, so re-encoding a space as `+` would change it) and what
/// they ask for. An unknown `sslmode` is an error that names the ones
/// understood.
pub fn split_url(raw: &str) -> Result<(String, TlsWish), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    let (base, query) = match raw.split_once('?') {
        Some((base, query)) => (base, query),
        None => (raw, ""),
    };
    let mut mode = None;
    let mut root_file = None;
    let mut kept: Vec<&str> = Vec::new();
    // Whether either parameter was there: if not, the URL goes as given.
    let mut ours = false;
    for piece in query.split('&').filter(|piece| !piece.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        match key {
            "sslmode" => mode = Some(decoded(value)),
            "sslrootcert" => root_file = Some(decoded(value)),
            _ => {
                kept.push(piece);
                continue;
            }
        }
        ours = true;
    }
    // libpq 16's `sslrootcert=system`: the system's roots, as without it.
    let root_file = root_file.filter(|file| file != "system").map(PathBuf::from);
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
        if !over_tcp(&url, &kept) {
            return Err(
                "asks for TLS over a Unix socket, which PostgreSQL does not offer: \
                 name a host (TCP) or drop sslmode"
                    .into(),
            );
        }
        kept.push("sslmode=require");
    }
    if !ours {
        return Ok((raw.to_string(), wish));
    }
    let url = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((url, wish))
}

/// Whether the server is named by a host (TCP), as TLS needs: the query's
/// `host=` when given (libpq's `postgres:///db?host=…`), else the URL's
/// own; one that is a directory (`/var/run/postgresql`, also written
/// `%2Fvar%2Frun%2Fpostgresql`) is a Unix socket.
fn over_tcp(url: &url::Url, pieces: &[&str]) -> bool {
    let host = pieces
        .iter()
        .find_map(|piece| piece.strip_prefix("host="))
        .map(decoded)
        .or_else(|| url.host_str().map(decoded));
    host.is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
}

/// A URL part with its `%xx` escapes decoded.
fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
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
        self.open().await.map_err(Refused::into_connection_error)
    }

    /// Whether our database answers: false when the server says it does
    /// not exist, the error for anything else (a wrong password, a bad
    /// certificate, no server), which must not be hidden behind an attempt
    /// on another database.
    pub async fn database_exists(&self) -> ConnectionResult<bool> {
        match self.open().await {
            Ok(_) => Ok(true),
            Err(Refused::Postgres(e)) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
                Ok(false)
            }
            Err(refused) => Err(refused.into_connection_error()),
        }
    }

    async fn open(&self) -> Result<AsyncPgConnection, Refused> {
        match &self.tls {
            None => {
                let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                    .await
                    .map_err(Refused::Postgres)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection)
                    .await
                    .map_err(Refused::Setup)
            }
            Some(tls) => {
                let (client, connection) = tokio_postgres::connect(&self.url, tls.clone())
                    .await
                    .map_err(Refused::Postgres)?;
                AsyncPgConnection::try_from_client_and_connection(client, connection)
                    .await
                    .map_err(Refused::Setup)
            }
        }
    }
}

/// Why a connection could not be made.
enum Refused {
    /// By the server or on the way (its SQLSTATE, when it gave one).
    Postgres(tokio_postgres::Error),
    /// diesel's set-up on a made connection.
    Setup(ConnectionError),
}

impl Refused {
    fn into_connection_error(self) -> ConnectionError {
        match self {
            Refused::Postgres(e) => {
                ConnectionError::BadConnection(crate::telemetry::with_causes(&e))
            }
            Refused::Setup(e) => e,
        }
    }
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
        let (url, _) = split_url("postgres://db.example/r?sslmode=verify-full").expect("full");
        assert_eq!(url, "postgres://db.example/r?sslmode=require");
        let (url, wish) = split_url("postgres://db.example/r?sslmode=prefer").expect("prefer");
        assert_eq!(
            (url.as_str(), wish),
            ("postgres://db.example/r", TlsWish::Off)
        );
        let refused = split_url("postgres://db.example/r?sslmode=allow").expect_err("unknown");
        assert!(refused.contains("verify-full"), "{refused}");
        assert!(split_url("postgres://db.example/r?sslrootcert=/ca.pem").is_err());
        assert!(split_url("postgres:///r?host=%2Fvar%2Frun%2Fpostgresql&sslmode=require").is_err());
        assert!(split_url("postgres://%2Fvar%2Frun%2Fpostgresql/r?sslmode=require").is_err());
        assert!(split_url("postgres:///r?sslmode=require").is_err());
        assert!(split_url("postgres:///r?host=db.example&sslmode=require").is_ok());
        // Other parameters pass byte for byte (tokio-postgres reads `+` as is).
        let raw =
            "postgres://db.example/r?options=-c%20statement_timeout%3D5000&application_name=a+b";
        assert_eq!(split_url(raw).expect("kept").0, raw);
        let (url, wish) =
            split_url(&format!("{raw}&sslmode=require&sslrootcert=system")).expect("system");
        assert_eq!(url, format!("{raw}&sslmode=require"));
        assert_eq!(wish, TlsWish::Verified { root_file: None });
    }
}
