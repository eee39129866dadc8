//! The job queue as a database table, for running without Redis. Jobs are claimed with a
//! lease (`lease_until_ms`); a job whose lease ran out is claimed again, which is how a job of
//! a worker that died comes back. On PostgreSQL concurrent workers skip each other's rows with
//! `FOR UPDATE SKIP LOCKED`; SQLite has a single writer and needs no row locks.

use std::time::Duration;

use sqlx::Row;

use super::{Delivery, Job, JobQueue, QueueError, decode_job, encode_job};
use crate::db::{Backend, Db, DbError};

const PUBLISH: &str = "INSERT INTO jobs (message_id, body, enqueued_at_ms, deliveries) \
    VALUES ($1, $2, $3, 0) ON CONFLICT (message_id) DO NOTHING";

const CLAIM_PG: &str = "UPDATE jobs SET lease_until_ms = $1, deliveries = deliveries + 1 \
    WHERE message_id IN (SELECT message_id FROM jobs \
        WHERE lease_until_ms IS NULL OR lease_until_ms < $2 \
        ORDER BY enqueued_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
    RETURNING message_id, body";

const CLAIM_SQLITE: &str = "UPDATE jobs SET lease_until_ms = $1, deliveries = deliveries + 1 \
    WHERE message_id IN (SELECT message_id FROM jobs \
        WHERE lease_until_ms IS NULL OR lease_until_ms < $2 \
        ORDER BY enqueued_at_ms LIMIT $3) \
    RETURNING message_id, body";

const ACK: &str = "DELETE FROM jobs WHERE message_id = $1";

/// How long `receive` waits between empty polls.
const POLL: Duration = Duration::from_millis(100);

/// How long `receive` keeps polling before returning nothing.
const WAIT: Duration = Duration::from_secs(1);

/// A queue in the `jobs` table.
#[derive(Clone)]
pub struct DbQueue {
    db: Db,
    visibility: Duration,
}

impl DbQueue {
    /// A queue whose claimed jobs come back after `visibility` without an ack.
    pub fn new(db: Db, visibility: Duration) -> Self {
        Self { db, visibility }
    }

    async fn claim(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let sql = match self.db.backend() {
            Backend::Postgres => CLAIM_PG,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let now = crate::now_ms();
        let lease = now + i64::try_from(self.visibility.as_millis()).unwrap_or(i64::MAX / 2);
        // Polls find nothing most of the time: they get a debug-level span so that an idle
        // queue does not fill the trace store with one-span traces.
        let rows = self
            .db
            .timed_quiet("UPDATE jobs", sql, async {
                sqlx::query(sql)
                    .bind(lease)
                    .bind(now)
                    .bind(i64::try_from(max).unwrap_or(1))
                    .fetch_all(self.db.pool())
                    .await
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let d = |source| DbError::Decode {
                operation: "UPDATE jobs",
                source,
            };
            let message_id: String = row.try_get("message_id").map_err(d)?;
            let body: String = row.try_get("body").map_err(d)?;
            match decode_job(&body) {
                Some(job) => out.push(Delivery {
                    job,
                    receipt: message_id,
                }),
                None => {
                    tracing::error!(message_id, "job body is not a job; dropping it");
                    self.delete(&message_id).await?;
                }
            }
        }
        Ok(out)
    }

    async fn delete(&self, message_id: &str) -> Result<(), QueueError> {
        self.db
            .timed("DELETE jobs", ACK, async {
                sqlx::query(ACK)
                    .bind(message_id)
                    .execute(self.db.pool())
                    .await
            })
            .await?;
        Ok(())
    }
}

impl JobQueue for DbQueue {
    fn system(&self) -> &'static str {
        "database"
    }

    async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        let body = encode_job(job);
        self.db
            .timed("INSERT jobs", PUBLISH, async {
                sqlx::query(PUBLISH)
                    .bind(&job.message_id)
                    .bind(body)
                    .bind(crate::now_ms())
                    .execute(self.db.pool())
                    .await
            })
            .await?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.claim(max).await?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.delete(&delivery.receipt).await
    }
}
