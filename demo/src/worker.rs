//! The order worker: takes jobs from the queue, charges the payment provider, and settles the
//! order, recording the message in the inbox in the same transaction.
//!
//! One receiving task fills a bounded channel; `concurrency` tasks take jobs from it. A job is
//! acknowledged only after its transaction commits (or when it turns out to be a duplicate), so
//! a worker killed mid-job leaves the job pending in the queue and it is handled again, once.
//!
//! Each job's span continues the trace in the job's `traceparent`: the order's request, its
//! publish and its processing are one trace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc};
use tracing::{Instrument, field};

use crate::db::orders::{self, OrderStatus};
use crate::db::{Db, DbError};
use crate::inbox;
use crate::metrics::{Metrics, current_exemplar};
use crate::payment::{self, PaymentConfig, PaymentOutcome};
use crate::queue::{Delivery, JobQueue};
use crate::shutdown::Shutdown;
use crate::telemetry::propagation::{context_from_traceparent, set_parent};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs handled at once.
    pub concurrency: usize,
    /// The inbox's consumer name: the logical consumer, the same for every worker instance.
    pub consumer: String,
    /// The payment simulation.
    pub payment: PaymentConfig,
    /// How long to wait for jobs in hand at shutdown.
    pub drain_timeout: Duration,
    /// Inbox entries older than this are pruned.
    pub inbox_retention: Duration,
}

/// How one job ended, as counted in `worker_jobs_processed_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Order paid.
    Paid,
    /// Order failed.
    Failed,
    /// Already handled; acknowledged and skipped.
    Duplicate,
    /// The order does not exist or was settled without an inbox entry; acknowledged.
    Skipped,
}

impl JobOutcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            JobOutcome::Paid => "paid",
            JobOutcome::Failed => "failed",
            JobOutcome::Duplicate => "duplicate",
            JobOutcome::Skipped => "skipped",
        }
    }
}

/// Handles jobs until `shutdown`, then finishes the jobs in hand (up to `drain_timeout`).
pub async fn run_worker<Q: JobQueue>(
    db: Db,
    queue: Q,
    metrics: Metrics,
    config: WorkerConfig,
    shutdown: Shutdown,
) {
    let concurrency = config.concurrency.max(1);
    let (tx, rx) = mpsc::channel::<Delivery>(concurrency);
    let rx = Arc::new(Mutex::new(rx));
    let config = Arc::new(config);
    let mut handlers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (rx, db, queue, metrics, config) = (
            rx.clone(),
            db.clone(),
            queue.clone(),
            metrics.clone(),
            config.clone(),
        );
        handlers.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(delivery) = next else { break };
                process(&db, &queue, &metrics, &config, delivery).await;
            }
        });
    }
    tracing::info!(queue = queue.system(), concurrency, "worker started");

    let mut backoff = Duration::from_millis(200);
    let mut last_prune = Instant::now();
    while !shutdown.is_down() {
        let received = tokio::select! {
            _ = shutdown.wait() => break,
            r = queue.receive(concurrency) => r,
        };
        match received {
            Ok(deliveries) => {
                backoff = Duration::from_millis(200);
                for d in deliveries {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "receiving jobs failed; retrying");
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        if last_prune.elapsed() > Duration::from_secs(600) {
            last_prune = Instant::now();
            let cutoff =
                crate::now_ms() - i64::try_from(config.inbox_retention.as_millis()).unwrap_or(0);
            if let Err(e) = inbox::prune(&db, cutoff).await {
                tracing::warn!(error = %e, "pruning the inbox failed");
            }
        }
    }
    drop(tx);
    tracing::info!("worker stopping; finishing jobs in hand");
    let drained = tokio::time::timeout(config.drain_timeout, async {
        while handlers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("jobs still running at shutdown; they will be redelivered");
        handlers.abort_all();
    }
    tracing::info!("worker stopped");
}

/// Handles one delivery inside its job span, counts it, and acknowledges it unless it failed.
async fn process<Q: JobQueue>(
    db: &Db,
    queue: &Q,
    metrics: &Metrics,
    config: &WorkerConfig,
    delivery: Delivery,
) {
    let job = &delivery.job;
    let span = tracing::info_span!(
        "job",
        otel.name = format!("process {}", job.kind),
        otel.kind = "consumer",
        otel.status_code = field::Empty,
        messaging.system = queue.system(),
        messaging.operation.type = "process",
        messaging.destination.name = "orders.jobs",
        messaging.message.id = %job.message_id,
        order_id = %job.order_id,
        message_id = %job.message_id,
    );
    set_parent(&span, context_from_traceparent(job.traceparent.as_deref()));
    let started = Instant::now();
    let result = handle(db, metrics, config, &delivery)
        .instrument(span.clone())
        .await;
    let exemplar = span.in_scope(current_exemplar);
    metrics
        .job_duration
        .observe(started.elapsed().as_secs_f64(), exemplar, None);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            metrics.job_outcome("error");
            span.in_scope(|| {
                tracing::error!(error = %e, "job failed; it will be delivered again");
            });
            return;
        }
    };
    metrics.job_outcome(outcome.label());
    if let Err(e) = queue.ack(&delivery).instrument(span.clone()).await {
        span.in_scope(|| {
            tracing::warn!(error = %e, "acknowledging the job failed; it will come back as a duplicate");
        });
    }
}

async fn handle(
    db: &Db,
    metrics: &Metrics,
    config: &WorkerConfig,
    delivery: &Delivery,
) -> Result<JobOutcome, DbError> {
    let job = &delivery.job;
    let waited_ms = crate::now_ms().saturating_sub(job.created_at_ms);
    tracing::info!(waited_ms, "job received");
    if inbox::already_handled(db, &job.message_id, &config.consumer).await? {
        tracing::info!("duplicate message: already handled, skipping");
        return Ok(JobOutcome::Duplicate);
    }
    let Some(order) = orders::get(db, &job.order_id).await? else {
        tracing::error!("job names an order that does not exist; dropping it");
        return Ok(JobOutcome::Skipped);
    };
    if order.status != OrderStatus::Pending {
        tracing::warn!(
            status = order.status.as_str(),
            "order already settled; skipping"
        );
        return Ok(JobOutcome::Skipped);
    }

    let outcome = payment::charge(&order.id, order.total_cents, &config.payment, metrics).await;
    let (status, reason) = match &outcome {
        PaymentOutcome::Paid { .. } => (OrderStatus::Paid, None),
        PaymentOutcome::Failed { reason, .. } => (OrderStatus::Failed, Some(reason.as_str())),
    };

    let mut tx = db.begin().await?;
    if !inbox::record(db, &mut tx, &job.message_id, &config.consumer).await? {
        // Another delivery of the same message got here first.
        drop(tx);
        tracing::info!("duplicate message: handled concurrently, skipping");
        return Ok(JobOutcome::Duplicate);
    }
    let changed = orders::settle(db, &mut tx, &order.id, status, reason).await?;
    db.timed("COMMIT", "COMMIT", tx.commit()).await?;
    if !changed {
        tracing::warn!("order was settled meanwhile; inbox recorded, nothing changed");
        return Ok(JobOutcome::Skipped);
    }
    match outcome {
        PaymentOutcome::Paid { attempts } => {
            tracing::info!(attempts, total_cents = order.total_cents, "order paid");
            Ok(JobOutcome::Paid)
        }
        PaymentOutcome::Failed { attempts, reason } => {
            tracing::error!(attempts, reason, "order payment failed");
            Ok(JobOutcome::Failed)
        }
    }
}
