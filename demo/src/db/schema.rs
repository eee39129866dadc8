//! The tables, created at start-up by whichever service comes first. The DDL is portable
//! between PostgreSQL and SQLite: `TEXT` ids, `BIGINT` epoch-millisecond times, JSON as text.

use super::{Backend, Db, DbError};

/// Orders, their outbox (messages to publish), the worker's inbox (messages already handled),
/// and the jobs table that is the queue when there is no Redis.
const STATEMENTS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS orders (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        status TEXT NOT NULL,
        total_cents BIGINT NOT NULL,
        currency TEXT NOT NULL,
        items TEXT NOT NULL,
        failure_reason TEXT,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS outbox (
        message_id TEXT PRIMARY KEY,
        aggregate_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        traceparent TEXT,
        created_at_ms BIGINT NOT NULL,
        published_at_ms BIGINT,
        lease_until_ms BIGINT,
        attempts BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS outbox_unpublished
        ON outbox (created_at_ms) WHERE published_at_ms IS NULL",
    "CREATE TABLE IF NOT EXISTS inbox (
        message_id TEXT NOT NULL,
        consumer TEXT NOT NULL,
        received_at_ms BIGINT NOT NULL,
        PRIMARY KEY (message_id, consumer)
    )",
    "CREATE TABLE IF NOT EXISTS jobs (
        message_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        enqueued_at_ms BIGINT NOT NULL,
        lease_until_ms BIGINT,
        deliveries BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS jobs_by_age ON jobs (enqueued_at_ms)",
];

/// An arbitrary constant both services use as the PostgreSQL advisory-lock key, so two
/// processes starting together do not race on `CREATE TABLE`.
const MIGRATION_LOCK: i64 = 0x006c_6f67_7368_6970;

/// Creates the tables if they do not exist.
pub async fn migrate(db: &Db) -> Result<(), DbError> {
    let q = |operation: &'static str| move |source| DbError::Query { operation, source };
    let mut conn = db.pool().acquire().await.map_err(q("acquire"))?;
    match db.backend() {
        Backend::Postgres => {
            // Wrapped so the result is an integer: `Any` cannot carry a `void` column.
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await
                .map_err(q("pg_advisory_lock"))?;
        }
        Backend::Sqlite => {
            // WAL lets the API read while the worker writes; the setting is kept in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&mut *conn)
                .await
                .map_err(q("PRAGMA journal_mode"))?;
        }
    }
    let mut result = Ok(());
    for sql in STATEMENTS {
        if let Err(e) = sqlx::query(*sql).execute(&mut *conn).await {
            result = Err(DbError::Query {
                operation: "CREATE",
                source: e,
            });
            break;
        }
    }
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS l")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(q("pg_advisory_unlock"))?;
    }
    result
}
