//! The database: one `sqlx::Any` pool over PostgreSQL or an embedded SQLite file.
//!
//! The schema and almost every statement are the same on both; the few differences (row locks
//! with `FOR UPDATE SKIP LOCKED`, how a write transaction begins) are chosen by [`Backend`].
//! Times are stored as epoch milliseconds and ids as text so that `Any` can carry every column.
//!
//! Every statement runs through [`Db::timed`], which gives it a client span (named like
//! `INSERT orders`) and a `db_query_duration_seconds` observation.

pub mod orders;
pub mod schema;

use std::future::Future;
use std::time::{Duration, Instant};

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};
use tracing::{Instrument, field};

use crate::metrics::{Metrics, current_exemplar};

/// A database error, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names a database this build does not speak.
    #[error("unsupported database URL (use postgres://... or sqlite://...): {0}")]
    UnsupportedUrl(String),
    /// Connecting failed until the deadline.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL without its password.
        url: String,
        /// The last error.
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("{operation} failed: {source}")]
    Query {
        /// The operation, such as `INSERT orders`.
        operation: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored row did not decode.
    #[error("bad row from {operation}: {source}")]
    Decode {
        /// The operation that read it.
        operation: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL: row locks, concurrent writers.
    Postgres,
    /// SQLite: one writer at a time, no row locks.
    Sqlite,
}

impl Backend {
    /// The backend a URL names.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(DbError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// The `db.system.name` span attribute.
    pub fn system(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{}://{}{}", &url[..scheme_end], masked, &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// The shared pool plus what every statement needs to be observed.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    metrics: Metrics,
}

impl Db {
    /// Connects, retrying until `deadline` elapses (PostgreSQL may still be starting when the
    /// services start, as in Docker Compose).
    pub async fn connect(url: &str, metrics: Metrics, deadline: Duration) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let started = Instant::now();
        let max = match backend {
            Backend::Postgres => 10,
            Backend::Sqlite => 4,
        };
        loop {
            let attempt = AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await;
            match attempt {
                Ok(pool) => {
                    tracing::info!(
                        database = %redact_url(url),
                        system = backend.system(),
                        "database connected"
                    );
                    return Ok(Self {
                        pool,
                        backend,
                        metrics,
                    });
                }
                Err(e) if started.elapsed() < deadline => {
                    tracing::warn!(
                        database = %redact_url(url),
                        error = %e,
                        "database not reachable yet, retrying"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(source) => {
                    return Err(DbError::Connect {
                        url: redact_url(url),
                        source,
                    });
                }
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for statements that need no transaction.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a transaction never fails half-way for want of it.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DbError> {
        let r = match self.backend {
            Backend::Postgres => self.pool.begin().await,
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
        };
        r.map_err(|source| DbError::Query {
            operation: "BEGIN",
            source,
        })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.timed("SELECT 1", "SELECT 1", async {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Runs one statement inside a client span named `operation`, records its latency, and
    /// marks the span as failed when the statement fails.
    pub async fn timed<T, F>(
        &self,
        operation: &'static str,
        sql: &str,
        fut: F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let (op_name, collection) = operation.split_once(' ').unwrap_or((operation, ""));
        let span = tracing::info_span!(
            "db.query",
            otel.name = operation,
            otel.kind = "client",
            otel.status_code = field::Empty,
            db.system.name = self.backend.system(),
            db.operation.name = op_name,
            db.collection.name = collection,
            db.query.text = sql,
        );
        self.observe(span, operation, fut).await
    }

    /// Like [`Db::timed`] with a debug-level span, for polls that run every few hundred
    /// milliseconds and usually find nothing: at the default `info` level they are measured
    /// but not traced, so an idle service does not fill the trace store.
    pub async fn timed_quiet<T, F>(
        &self,
        operation: &'static str,
        sql: &str,
        fut: F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let (op_name, collection) = operation.split_once(' ').unwrap_or((operation, ""));
        let span = tracing::debug_span!(
            "db.query",
            otel.name = operation,
            otel.kind = "client",
            otel.status_code = field::Empty,
            db.system.name = self.backend.system(),
            db.operation.name = op_name,
            db.collection.name = collection,
            db.query.text = sql,
        );
        self.observe(span, operation, fut).await
    }

    async fn observe<T, F>(
        &self,
        span: tracing::Span,
        operation: &'static str,
        fut: F,
    ) -> Result<T, DbError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let started = Instant::now();
        let result = fut.instrument(span.clone()).await;
        let exemplar = span.in_scope(current_exemplar);
        self.metrics
            .observe_query(operation, started.elapsed(), exemplar);
        result.map_err(|source| {
            span.record("otel.status_code", "ERROR");
            span.in_scope(|| tracing::warn!(error = %source, operation, "statement failed"));
            DbError::Query { operation, source }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("sqlite://x.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert!(Backend::from_url("mysql://u:secret@h/db").is_err());
    }

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://orders:s3cret@db:5432/orders"),
            "postgres://orders:***@db:5432/orders"
        );
        assert_eq!(
            redact_url("postgres://orders@db/orders"),
            "postgres://orders@db/orders"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        let err = Backend::from_url("mysql://u:secret@h/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
