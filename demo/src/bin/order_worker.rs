//! `order-worker`: takes order jobs from the queue, charges the (simulated) payment provider
//! and settles each order exactly once.
//!
//! Environment: `LISTEN_ADDR` for `/metrics`, `/healthz` and profiles (default
//! `127.0.0.1:8081`), `DATABASE_URL`, `REDIS_URL`, `WORKER_ID` (the Redis consumer name;
//! default the host name), `WORKER_CONCURRENCY` (default 8), `JOB_VISIBILITY_TIMEOUT_MS`
//! (default 30000), the `PAYMENT_*` knobs of [`logship_demo::payment::PaymentConfig`], plus
//! the standard `OTEL_*` and `RUST_LOG`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use logship_demo::db::{Db, schema};
use logship_demo::metrics::Metrics;
use logship_demo::payment::PaymentConfig;
use logship_demo::queue::{DbQueue, GROUP, RedisQueue, STREAM};
use logship_demo::worker::{WorkerConfig, run_worker};
use logship_demo::{api, env, service, shutdown};

fn main() -> ExitCode {
    service::main_with("order-worker", run)
}

/// The Redis consumer name: stable across restarts of the same worker, so a restarted worker
/// finds the jobs it had in hand.
fn worker_id() -> String {
    env::var("WORKER_ID")
        .or_else(|| env::var("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "order-worker-1".to_owned())
}

async fn run() -> anyhow::Result<()> {
    let addr = env::addr_or("LISTEN_ADDR", "127.0.0.1:8081")?;
    let visibility = env::millis_or("JOB_VISIBILITY_TIMEOUT_MS", 30_000)?;
    let config = WorkerConfig {
        concurrency: env::parse_or("WORKER_CONCURRENCY", 8usize)?,
        consumer: GROUP.to_owned(),
        payment: PaymentConfig::from_env()?,
        drain_timeout: Duration::from_secs(10),
        inbox_retention: Duration::from_secs(7 * 24 * 3600),
    };
    let connect_deadline = env::millis_or("DATABASE_CONNECT_TIMEOUT_MS", 60_000)?;
    let metrics = Metrics::new();
    let db = Db::connect(&env::database_url(), metrics.clone(), connect_deadline).await?;
    schema::migrate(&db).await.context("creating the tables")?;

    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(trigger.on_signal());

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, "order-worker listening");
    let app = api::ops_router(db.clone(), metrics.clone());
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.wait().await })
            .await
    });

    match env::redis_url() {
        Some(url) => {
            let id = worker_id();
            let queue =
                RedisQueue::new(&url, STREAM, GROUP, &id, visibility).context("REDIS_URL")?;
            tracing::info!(worker_id = %id, "taking jobs from Redis");
            run_worker(db, queue, metrics, config, shutdown).await;
        }
        None => {
            tracing::info!("taking jobs from the database (no REDIS_URL)");
            let queue = DbQueue::new(db.clone(), visibility);
            run_worker(db, queue, metrics, config, shutdown).await;
        }
    }
    server
        .await
        .context("the HTTP server panicked")?
        .context("serving HTTP")?;
    Ok(())
}
