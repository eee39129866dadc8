//! The worker's inbox: the ids of messages already handled. A message is recorded in the same
//! transaction as the change it causes, so a redelivered message finds its id here and changes
//! nothing: an exactly-once effect on top of at-least-once delivery.

use sqlx::{Any, Transaction};

use crate::db::{Db, DbError};

const SEEN: &str = "SELECT message_id FROM inbox WHERE message_id = $1 AND consumer = $2";

const RECORD: &str = "INSERT INTO inbox (message_id, consumer, received_at_ms) VALUES ($1, $2, $3) \
    ON CONFLICT (message_id, consumer) DO NOTHING";

const PRUNE: &str = "DELETE FROM inbox WHERE received_at_ms < $1";

/// Whether `consumer` already handled `message_id`: a cheap check before doing the work. The
/// insert in [`record`] is what decides, since two deliveries may race past this check.
pub async fn already_handled(db: &Db, message_id: &str, consumer: &str) -> Result<bool, DbError> {
    let row = db
        .timed("SELECT inbox", SEEN, async {
            sqlx::query(SEEN)
                .bind(message_id)
                .bind(consumer)
                .fetch_optional(db.pool())
                .await
        })
        .await?;
    Ok(row.is_some())
}

/// Records the message inside the caller's transaction. Returns `false` when it was already
/// there: the caller must roll back and acknowledge the message as a duplicate.
pub async fn record(
    db: &Db,
    tx: &mut Transaction<'static, Any>,
    message_id: &str,
    consumer: &str,
) -> Result<bool, DbError> {
    let done = db
        .timed("INSERT inbox", RECORD, async {
            sqlx::query(RECORD)
                .bind(message_id)
                .bind(consumer)
                .bind(crate::now_ms())
                .execute(&mut **tx)
                .await
        })
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes entries older than `cutoff_ms`: a message older than the queue's retention cannot
/// come back.
pub async fn prune(db: &Db, cutoff_ms: i64) -> Result<u64, DbError> {
    let done = db
        .timed_quiet("DELETE inbox", PRUNE, async {
            sqlx::query(PRUNE).bind(cutoff_ms).execute(db.pool()).await
        })
        .await?;
    Ok(done.rows_affected())
}
