//! The transactional outbox and its relay.
//!
//! The API writes an order and its outbox message in one transaction
//! ([`crate::db::orders::insert_with_outbox`]); the relay, running inside the API process, then
//! claims unpublished messages, publishes each to the job queue and marks it published. A crash
//! between publishing and marking publishes the message again after its lease runs out, so
//! delivery is at-least-once and the worker's inbox removes the duplicates.
//!
//! Each publish is a producer span whose parent is the request that created the order (from
//! the stored `traceparent`), and the job carries the publish span's own `traceparent`, so the
//! worker's spans join the same trace.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::Notify;
use tracing::{Instrument, field};

use crate::db::{Backend, Db, DbError};
use crate::metrics::Metrics;
use crate::queue::{Job, JobQueue, QueueError};
use crate::shutdown::Shutdown;
use crate::telemetry::propagation::{context_from_traceparent, set_parent, traceparent_of};

/// A message to publish, as stored in the `outbox` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// UUID; becomes the job's message id and the worker's inbox key.
    pub message_id: String,
    /// The order it is about.
    pub aggregate_id: String,
    /// `order.created`.
    pub kind: String,
    /// JSON body.
    pub payload: String,
    /// The creating request's W3C `traceparent`.
    pub traceparent: Option<String>,
    /// When it was written (epoch ms).
    pub created_at_ms: i64,
}

const CLAIM_PG: &str = "UPDATE outbox SET lease_until_ms = $1, attempts = attempts + 1 \
    WHERE message_id IN (SELECT message_id FROM outbox \
        WHERE published_at_ms IS NULL AND (lease_until_ms IS NULL OR lease_until_ms < $2) \
        ORDER BY created_at_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
    RETURNING message_id, aggregate_id, kind, payload, traceparent, created_at_ms";

const CLAIM_SQLITE: &str = "UPDATE outbox SET lease_until_ms = $1, attempts = attempts + 1 \
    WHERE message_id IN (SELECT message_id FROM outbox \
        WHERE published_at_ms IS NULL AND (lease_until_ms IS NULL OR lease_until_ms < $2) \
        ORDER BY created_at_ms LIMIT $3) \
    RETURNING message_id, aggregate_id, kind, payload, traceparent, created_at_ms";

const MARK_PUBLISHED: &str =
    "UPDATE outbox SET published_at_ms = $1, lease_until_ms = NULL WHERE message_id = $2";

const RELEASE: &str = "UPDATE outbox SET lease_until_ms = NULL \
    WHERE message_id = $1 AND published_at_ms IS NULL";

const PRUNE: &str = "DELETE FROM outbox WHERE published_at_ms IS NOT NULL AND published_at_ms < $1";

/// A relay failure; the relay logs it, backs off and tries again.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The outbox table.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// How the relay paces itself.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Poll interval when nothing wakes it.
    pub poll: Duration,
    /// Messages claimed at once.
    pub batch: usize,
    /// How long a claim holds before another relay may take the message.
    pub lease: Duration,
    /// Longest pause after repeated failures.
    pub max_backoff: Duration,
    /// Published messages older than this are deleted.
    pub retention: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            batch: 100,
            lease: Duration::from_secs(30),
            max_backoff: Duration::from_secs(5),
            retention: Duration::from_secs(3600),
        }
    }
}

/// Publishes outbox messages until `shutdown`. `wake` is notified by the API after each
/// insert so that a new order is published at once rather than at the next poll.
pub async fn run_relay<Q: JobQueue>(
    db: Db,
    queue: Q,
    metrics: Metrics,
    config: RelayConfig,
    wake: Arc<Notify>,
    shutdown: Shutdown,
) {
    let mut backoff = config.poll;
    let mut last_prune = tokio::time::Instant::now();
    tracing::info!(queue = queue.system(), "outbox relay started");
    loop {
        match relay_batch(&db, &queue, &metrics, &config).await {
            Ok(n) => {
                backoff = config.poll;
                if n == config.batch {
                    continue;
                }
            }
            Err(e) => {
                backoff = (backoff * 2).min(config.max_backoff);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed; retrying");
            }
        }
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = tokio::time::Instant::now();
            prune(&db, config.retention).await;
        }
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
    }
    tracing::info!("outbox relay stopped");
}

/// Claims one batch and publishes it; returns how many were claimed.
pub async fn relay_batch<Q: JobQueue>(
    db: &Db,
    queue: &Q,
    metrics: &Metrics,
    config: &RelayConfig,
) -> Result<usize, RelayError> {
    let mut batch = claim(db, config).await?;
    let claimed = batch.len();
    batch.sort_by_key(|m| m.created_at_ms);
    let mut rest = batch.into_iter();
    while let Some(message) = rest.next() {
        if let Err(e) = publish_one(db, queue, metrics, &message).await {
            // Give the unpublished messages back at once instead of waiting out their leases.
            for m in std::iter::once(message).chain(rest) {
                release(db, &m.message_id).await;
            }
            return Err(e);
        }
    }
    Ok(claimed)
}

async fn claim(db: &Db, config: &RelayConfig) -> Result<Vec<OutboxMessage>, DbError> {
    let sql = match db.backend() {
        Backend::Postgres => CLAIM_PG,
        Backend::Sqlite => CLAIM_SQLITE,
    };
    let now = crate::now_ms();
    let lease_until = now + i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX / 2);
    let rows = db
        .timed_quiet("UPDATE outbox", sql, async {
            sqlx::query(sql)
                .bind(lease_until)
                .bind(now)
                .bind(i64::try_from(config.batch).unwrap_or(100))
                .fetch_all(db.pool())
                .await
        })
        .await?;
    rows.iter()
        .map(|r| {
            let d = |source| DbError::Decode {
                operation: "UPDATE outbox",
                source,
            };
            Ok(OutboxMessage {
                message_id: r.try_get("message_id").map_err(d)?,
                aggregate_id: r.try_get("aggregate_id").map_err(d)?,
                kind: r.try_get("kind").map_err(d)?,
                payload: r.try_get("payload").map_err(d)?,
                traceparent: r.try_get("traceparent").map_err(d)?,
                created_at_ms: r.try_get("created_at_ms").map_err(d)?,
            })
        })
        .collect()
}

async fn publish_one<Q: JobQueue>(
    db: &Db,
    queue: &Q,
    metrics: &Metrics,
    message: &OutboxMessage,
) -> Result<(), RelayError> {
    let span = tracing::info_span!(
        "outbox.publish",
        otel.name = format!("publish {}", message.kind),
        otel.kind = "producer",
        otel.status_code = field::Empty,
        messaging.system = queue.system(),
        messaging.operation.type = "send",
        messaging.destination.name = "orders.jobs",
        messaging.message.id = %message.message_id,
        order_id = %message.aggregate_id,
        message_id = %message.message_id,
    );
    set_parent(
        &span,
        context_from_traceparent(message.traceparent.as_deref()),
    );
    async {
        let job = Job {
            message_id: message.message_id.clone(),
            kind: message.kind.clone(),
            order_id: message.aggregate_id.clone(),
            traceparent: traceparent_of(&tracing::Span::current()),
            created_at_ms: message.created_at_ms,
        };
        if let Err(e) = queue.publish(&job).await {
            tracing::Span::current().record("otel.status_code", "ERROR");
            tracing::warn!(error = %e, "publishing the job failed; it stays in the outbox");
            return Err(RelayError::Queue(e));
        }
        db.timed("UPDATE outbox", MARK_PUBLISHED, async {
            sqlx::query(MARK_PUBLISHED)
                .bind(crate::now_ms())
                .bind(&message.message_id)
                .execute(db.pool())
                .await
        })
        .await?;
        metrics.outbox_published.inc();
        tracing::info!("order published to the job queue");
        Ok(())
    }
    .instrument(span)
    .await
}

async fn release(db: &Db, message_id: &str) {
    let r = db
        .timed_quiet("UPDATE outbox", RELEASE, async {
            sqlx::query(RELEASE)
                .bind(message_id)
                .execute(db.pool())
                .await
        })
        .await;
    if let Err(e) = r {
        // The lease runs out by itself; releasing only makes the retry sooner.
        tracing::debug!(error = %e, "releasing an outbox lease failed");
    }
}

async fn prune(db: &Db, retention: Duration) {
    let cutoff = crate::now_ms() - i64::try_from(retention.as_millis()).unwrap_or(0);
    let r = db
        .timed_quiet("DELETE outbox", PRUNE, async {
            sqlx::query(PRUNE).bind(cutoff).execute(db.pool()).await
        })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "pruning the outbox failed");
    }
}
