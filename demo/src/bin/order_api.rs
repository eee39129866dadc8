//! `order-api`: accepts orders over HTTP and relays their outbox messages to the job queue.
//!
//! Environment: `LISTEN_ADDR` (default `127.0.0.1:8080`), `DATABASE_URL` (default an SQLite
//! file), `REDIS_URL` (default: the database-backed queue), `OUTBOX_POLL_MS`,
//! `OUTBOX_LEASE_MS`, plus the standard `OTEL_*` and `RUST_LOG`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use logship_demo::api::{self, AppState};
use logship_demo::db::{Db, schema};
use logship_demo::metrics::Metrics;
use logship_demo::outbox::{RelayConfig, run_relay};
use logship_demo::queue::{DbQueue, GROUP, RedisQueue, STREAM};
use logship_demo::{env, service, shutdown};
use tokio::sync::Notify;

fn main() -> ExitCode {
    service::main_with("order-api", run)
}

async fn run() -> anyhow::Result<()> {
    let addr = env::addr_or("LISTEN_ADDR", "127.0.0.1:8080")?;
    let relay = RelayConfig {
        poll: env::millis_or("OUTBOX_POLL_MS", 250)?,
        lease: env::millis_or("OUTBOX_LEASE_MS", 30_000)?,
        ..RelayConfig::default()
    };
    let connect_deadline = env::millis_or("DATABASE_CONNECT_TIMEOUT_MS", 60_000)?;
    let metrics = Metrics::new();
    let db = Db::connect(&env::database_url(), metrics.clone(), connect_deadline).await?;
    schema::migrate(&db).await.context("creating the tables")?;

    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(trigger.on_signal());
    let wake = Arc::new(Notify::new());
    let relay_task = match env::redis_url() {
        Some(url) => {
            let queue = RedisQueue::new(&url, STREAM, GROUP, "order-api", relay.lease)
                .context("REDIS_URL")?;
            tokio::spawn(run_relay(
                db.clone(),
                queue,
                metrics.clone(),
                relay,
                wake.clone(),
                shutdown.clone(),
            ))
        }
        None => tokio::spawn(run_relay(
            db.clone(),
            DbQueue::new(db.clone(), relay.lease),
            metrics.clone(),
            relay,
            wake.clone(),
            shutdown.clone(),
        )),
    };

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, "order-api listening");
    let app = api::router(AppState {
        db,
        metrics,
        relay_wake: wake,
    });
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.wait().await })
        .await
        .context("serving HTTP")?;
    relay_task.await.context("the outbox relay panicked")?;
    Ok(())
}
