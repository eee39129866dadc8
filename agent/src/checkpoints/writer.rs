//! The background task that keeps a checkpoint file current.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::CheckpointFile;
use crate::telemetry::Metrics;

/// Writes `snapshot()` to `file` every `interval` when it differs from the last write, and
/// once more after `shutdown` (the caller cancels it only after its sinks have finished, so
/// the last write holds every final acknowledgement). A failed write is logged, counted and
/// retried at the next tick; the data stays where it is.
pub fn spawn_writer<T, F>(
    file: CheckpointFile,
    interval: Duration,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    snapshot: F,
) -> JoinHandle<()>
where
    T: Serialize + PartialEq + Send + 'static,
    F: Fn() -> T + Send + 'static,
{
    tokio::spawn(async move {
        let mut last: Option<T> = None;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = ticker.tick() => false,
                _ = shutdown.cancelled() => true,
            };
            let value = snapshot();
            if last.as_ref() != Some(&value) {
                let file = file.clone();
                // fsync blocks; keep it off the async workers.
                let result = tokio::task::spawn_blocking(move || {
                    let r = file.store(&value);
                    (r, value)
                })
                .await;
                match result {
                    Ok((Ok(()), value)) => {
                        metrics.checkpoints_written.inc();
                        last = Some(value);
                    }
                    Ok((Err(e), _)) => {
                        metrics.checkpoint_errors.inc();
                        tracing::error!(error = %e, "checkpoint write failed; data stays unacknowledged on disk and is re-read after a restart");
                    }
                    Err(e) => {
                        metrics.checkpoint_errors.inc();
                        tracing::error!(error = %e, "checkpoint writer task failed");
                    }
                }
            }
            if stopping {
                break;
            }
        }
    })
}
