//! Wires configured components together with bounded channels, runs them, and stops them in
//! order: sources first, then (once their channels drain) transforms and sinks, and only then
//! the final checkpoint writes.

mod build;
mod fanout;

pub use build::{BuildError, Running, start};
pub use fanout::{Closed, Fanout};

use std::time::Duration;

use crate::context::ComponentContext;

/// How long sinks may take to flush after the sources stopped before the agent exits anyway
/// (what they did not deliver is not checkpointed and is read again next time).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs until `stop` resolves or every source has finished on its own (stdin closed), then
/// shuts down in order.
pub async fn run_until(
    mut running: Running,
    base: &ComponentContext,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        _ = stop => tracing::info!("shutting down: flushing sinks"),
        _ = all_done(&mut running.sources) => tracing::info!("every source finished; flushing sinks"),
    }
    base.shutdown.cancel();
    let drain = async {
        while running.transforms.join_next().await.is_some() {}
        while running.sinks.join_next().await.is_some() {}
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "sinks did not finish within {SHUTDOWN_GRACE:?}; undelivered lines will be read again at the next start"
        );
        running.sinks.abort_all();
        running.transforms.abort_all();
    }
    base.drained.cancel();
    if tokio::time::timeout(Duration::from_secs(5), all_done(&mut running.sources))
        .await
        .is_err()
    {
        running.sources.abort_all();
    }
}

async fn all_done(set: &mut tokio::task::JoinSet<()>) {
    while set.join_next().await.is_some() {}
}
