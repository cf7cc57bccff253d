//! The PostgreSQL pool: creating the database if missing, migrations, and
//! the errors that say which server failed and how to start it.

use std::num::NonZeroUsize;

use diesel::result::Error as DieselError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::redact_url;
use super::tls::PgTarget;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
/// How long getting a connection may take.
const POOL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Advisory lock key serialising migrations across processes.
const MIGRATION_LOCK: i64 = 0x0072_6563_6569_7074;
/// Advisory lock class (first key) serialising database creation on the
/// server; the second key is the hash of the database's name.
const CREATE_LOCK: i32 = 0x7265_6365;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "PostgreSQL did not answer at {url} ({source}) — is it running? \
         try `pg_isready -d {url}` and check DATABASE_URL"
    )]
    Unreachable {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("migrations failed on {url}: {reason}")]
    Migration { url: String, reason: String },
    #[error("DATABASE_URL `{url}` {reason}")]
    Tls { url: String, reason: String },
    #[error("DATABASE_URL `{0}` names no database")]
    NoDatabaseName(String),
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("receipt {0} holds a value this version cannot read ({1}); was it written by hand?")]
    Corrupt(uuid::Uuid, String),
    #[error("could not encode a value for the database: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A cloneable handle on the connection pool.
#[derive(Clone)]
pub struct Db {
    pool: Pool<AsyncPgConnection>,
    url: String,
}

impl Db {
    /// Create the database if it is missing, apply migrations, open a
    /// pool of at most `max_connections` connections.
    pub async fn connect(url: &str, max_connections: NonZeroUsize) -> Result<Self, DbError> {
        let target = PgTarget::new(url).map_err(|reason| DbError::Tls {
            url: redact_url(url),
            reason,
        })?;
        create_database_if_missing(&target).await?;
        // No `SELECT 1` before every use of a pooled connection (diesel-async's
        // default): that doubled the round trips of an upload's one INSERT.
        // A connection the server closed (a restart, an outage) is still
        // found at checkout and replaced, without a query.
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        // Every pooled connection is made as DATABASE_URL asks (TLS or not).
        let made = target.clone();
        config.custom_setup = Box::new(move |_url| {
            let target = made.clone();
            Box::pin(async move { target.establish().await })
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            target.url(),
            config,
        );
        // Bounded waits: an unreachable server answers 503, never a hang.
        let pool = Pool::builder(manager)
            .max_size(max_connections.get())
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| unreachable_err(url, e))?;
        let db = Self {
            pool,
            url: url.to_string(),
        };
        db.migrate().await?;
        Ok(db)
    }

    /// A pooled connection, or `Unreachable` naming the server.
    pub async fn conn(&self) -> Result<Object<AsyncPgConnection>, DbError> {
        self.pool
            .get()
            .await
            .map_err(|e| unreachable_err(&self.url, e))
    }

    /// Apply pending migrations. Several processes may start at once, so
    /// they take turns under a PostgreSQL advisory lock. diesel's harness is
    /// synchronous and uses `block_in_place`, so it runs on a blocking thread.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .await?;
        let migrated = tokio::task::spawn_blocking(move || {
            let mut harness = AsyncMigrationHarness::new(conn);
            let outcome = harness
                .run_pending_migrations(MIGRATIONS)
                .map(|_| ())
                .map_err(|e| e.to_string());
            (harness.into_inner(), outcome)
        })
        .await;
        let migration_error = |reason: String| DbError::Migration {
            url: redact_url(&self.url),
            reason,
        };
        let (mut conn, outcome) = migrated.map_err(|e| migration_error(e.to_string()))?;
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .await?;
        outcome.map_err(migration_error)
    }

    /// True when a trivial query answers (readiness).
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await?;
        Ok(())
    }
}

fn unreachable_err(url: &str, source: impl std::error::Error + Send + Sync + 'static) -> DbError {
    DbError::Unreachable {
        url: redact_url(url),
        source: Box::new(source),
    }
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

/// Create our database if absent. When ours answers (or refuses us for
/// another reason, which is the error), nothing else is touched: a role or
/// a pooler (PgBouncer) may admit only our database. When the server says
/// it does not exist, connect to its `postgres` database; any number of
/// processes may start at once against a missing database: they take turns
/// under an advisory lock on the server (held by this session, released
/// when it ends), so one creates it and the others find it made.
async fn create_database_if_missing(target: &PgTarget) -> Result<(), DbError> {
    let url = target.url();
    let parsed = url::Url::parse(url).map_err(|_| DbError::NoDatabaseName(redact_url(url)))?;
    let name = parsed.path().trim_start_matches('/').to_string();
    if name.is_empty() {
        return Err(DbError::NoDatabaseName(redact_url(url)));
    }
    if target
        .database_exists()
        .await
        .map_err(|e| unreachable_err(url, e))?
    {
        return Ok(());
    }
    let mut admin = target
        .with_database("postgres")
        .establish()
        .await
        .map_err(|e| unreachable_err(url, e))?;
    diesel::sql_query("SELECT pg_advisory_lock($1, hashtext($2))")
        .bind::<diesel::sql_types::Integer, _>(CREATE_LOCK)
        .bind::<diesel::sql_types::Text, _>(&name)
        .execute(&mut admin)
        .await?;
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut admin)
            .await?;
    if !found.exists {
        let quoted = name.replace('"', "\"\"");
        let created = diesel::sql_query(format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut admin)
            .await;
        // A process of an older version (which takes no lock) may have won
        // the race: "already exists" or a duplicate in pg_database.
        if let Err(e) = created
            && !created_by_another(&e)
        {
            return Err(e.into());
        }
    }
    Ok(())
}

fn created_by_another(error: &DieselError) -> bool {
    use diesel::result::DatabaseErrorKind;
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    ) || error.to_string().contains("already exists")
}
