//! The background task that keeps a source's checkpoint file current.
//!
//! Cadence: the writer sleeps until an acknowledgement settles (the source's
//! [`LedgerWatch`] wakes it) or a slow safety tick passes, then writes the snapshot if it
//! changed. Acknowledgements that settle while a write is under way wake the next round at
//! once, so a burst costs one more write, not one each. The latest file trails what Loki
//! acknowledged by about one write (tens of microseconds), not by a fixed timer; the durable
//! file (fsynced) is written when the last durable write is `sync_interval` old, so a power
//! loss costs at most about that much re-sending (see [`CheckpointFile`]).
//!
//! Final write: once the source has stopped reading, the writer waits until nothing the
//! source emitted is still in flight (every chunk settled), or until `drained` says no
//! settlement will ever come (the sinks are gone), and writes one last time.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::CheckpointFile;
use crate::pipeline::LedgerWatch;
use crate::telemetry::Metrics;

/// A checkpoint value and how many of the source's chunks are still in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<T> {
    /// What the checkpoint file should hold now.
    pub value: T,
    /// Chunks emitted whose outcome is not known yet.
    pub in_flight: usize,
}

/// How a source's position reaches disk: the file, and a function that says what it should
/// hold now (cheap; called after every burst of acknowledgements).
pub struct Checkpointing<T> {
    /// The checkpoint file.
    pub file: CheckpointFile,
    /// The acknowledged position now.
    pub snapshot: Box<dyn Fn() -> Snapshot<T> + Send + Sync>,
}

impl<T> std::fmt::Debug for Checkpointing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointing")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// When the writer writes.
#[derive(Debug, Clone, Copy)]
pub struct Cadence {
    /// After an acknowledgement, wait this long for more before writing (zero by default).
    pub coalesce: Duration,
    /// Look at the snapshot at least this often, acknowledgement or not.
    pub safety_tick: Duration,
    /// Write the durable (fsynced) file at most this often; every other write goes to the
    /// latest file only.
    pub sync_interval: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            // None: a kill -9 between Loki's acknowledgement and this write re-sends the
            // whole acknowledged batch, so any gap is a window for duplicates (50 ms made a
            // batch of duplicates in about a quarter of the kill -9 tests, 5 ms in about one
            // in twenty). Acks come per batch, and acks that settle during a write are taken
            // by the next one, so writes stay at most a few hundred a second at full speed.
            coalesce: Duration::ZERO,
            safety_tick: Duration::from_secs(1),
            sync_interval: Duration::from_secs(1),
        }
    }
}

/// Keeps `checkpointing.file` current until `reading_done` is cancelled, then makes the final
/// write once the source's chunks have settled or `drained` is cancelled. A failed write is
/// logged, counted and retried at the next occasion; the data stays where it is.
pub async fn run_writer<T>(
    checkpointing: Checkpointing<T>,
    cadence: Cadence,
    watch: LedgerWatch,
    reading_done: CancellationToken,
    drained: CancellationToken,
    metrics: Arc<Metrics>,
) where
    T: Serialize + PartialEq + Send + 'static,
{
    let Checkpointing { file, snapshot } = checkpointing;
    let mut writer = Writer {
        file,
        last: None,
        synced: None,
        sync_interval: cadence.sync_interval,
        metrics,
    };
    loop {
        tokio::select! {
            () = watch.settled() => {}
            () = tokio::time::sleep(cadence.safety_tick) => {}
            () = reading_done.cancelled() => break,
        }
        if !cadence.coalesce.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(cadence.coalesce) => {}
                () = reading_done.cancelled() => break,
            }
        }
        writer.write(snapshot().value, Durability::WhenDue).await;
    }
    // Reading stopped: wait for what is in flight to settle, writing as it does.
    loop {
        let now = snapshot();
        if now.in_flight == 0 || drained.is_cancelled() {
            writer.write(now.value, Durability::Now).await;
            return;
        }
        writer.write(now.value, Durability::WhenDue).await;
        tokio::select! {
            () = watch.settled() => {}
            () = drained.cancelled() => {}
            // A settlement that raced the snapshot is seen at the next look.
            () = tokio::time::sleep(cadence.safety_tick) => {}
        }
    }
}

struct Writer<T> {
    file: CheckpointFile,
    /// What the files hold (the latest one, or the durable one when it is newer).
    last: Option<T>,
    /// When the durable file was last written, and whether it holds `last`.
    synced: Option<(Instant, bool)>,
    sync_interval: Duration,
    metrics: Arc<Metrics>,
}

/// Whether a write must reach the durable file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// When the last durable write is `sync_interval` old (or there was none yet, so that a
    /// latest file never exists without a durable one).
    WhenDue,
    /// Now (the final write).
    Now,
}

impl<T: Serialize + PartialEq + Send + 'static> Writer<T> {
    /// Stores `value` unless the files already hold it: in the durable file when `sync`
    /// says so, else in the latest file.
    async fn write(&mut self, value: T, sync: Durability) {
        let changed = self.last.as_ref() != Some(&value);
        let durable = match self.synced {
            None => true,
            Some((at, holds_last)) => {
                (sync == Durability::Now || at.elapsed() >= self.sync_interval)
                    && (changed || !holds_last)
            }
        };
        if !changed && !durable {
            return;
        }
        let file = self.file.clone();
        // fsync blocks, and even a rename can wait on the disk; keep both off the workers.
        let result = tokio::task::spawn_blocking(move || {
            let r = if durable {
                file.store(&value)
            } else {
                file.store_latest(&value)
            };
            (r, value)
        })
        .await;
        match result {
            Ok((Ok(()), value)) => {
                self.metrics.checkpoints_written.inc();
                self.last = Some(value);
                match (&mut self.synced, durable) {
                    (_, true) => self.synced = Some((Instant::now(), true)),
                    (Some((_, holds_last)), false) => *holds_last = false,
                    (None, false) => {}
                }
            }
            Ok((Err(e), _)) => {
                self.metrics.checkpoint_errors.inc();
                tracing::error!(error = %e, "checkpoint write failed; data stays unacknowledged on disk and is re-read after a restart");
            }
            Err(e) => {
                self.metrics.checkpoint_errors.inc();
                tracing::error!(error = %e, "checkpoint writer task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::AckLedger;

    fn checkpointing(ledger: &AckLedger<u64>, file: CheckpointFile) -> Checkpointing<u64> {
        let ledger = ledger.clone();
        Checkpointing {
            file,
            snapshot: Box::new(move || Snapshot {
                value: ledger.committed(),
                in_flight: ledger.in_flight(),
            }),
        }
    }

    /// Waits (up to 5 s) until loading `file` gives `value`.
    async fn loads_within_5s(
        file: &CheckpointFile,
        value: u64,
    ) -> Result<(), tokio::time::error::Elapsed> {
        let loaded = async {
            while file.load::<u64>().unwrap() != Some(value) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), loaded).await
    }

    #[tokio::test]
    async fn writes_soon_after_an_acknowledgement_and_last_after_settling() {
        let dir = tempfile::tempdir().unwrap();
        let file = CheckpointFile::new(dir.path(), "c.json");
        let watch = LedgerWatch::detached();
        let ledger = AckLedger::watched(0u64, watch.clone());
        let (done, drained) = (CancellationToken::new(), CancellationToken::new());
        let cadence = Cadence {
            coalesce: Duration::from_millis(10),
            safety_tick: Duration::from_secs(3600),
            sync_interval: Duration::from_secs(3600),
        };
        let task = tokio::spawn(run_writer(
            checkpointing(&ledger, file.clone()),
            cadence,
            watch,
            done.clone(),
            drained.clone(),
            Arc::new(Metrics::new()),
        ));
        ledger.token(10).delivered();
        loads_within_5s(&file, 10)
            .await
            .expect("written without waiting for the safety tick");

        // The first write was durable; the next goes to the latest file only (the sync
        // interval is an hour here), and loading sees it.
        ledger.token(15).delivered();
        loads_within_5s(&file, 15)
            .await
            .expect("the latest file is written at once");
        assert_eq!(std::fs::read(file.path()).unwrap(), b"10");

        // Reading stops with one chunk in flight: the writer waits for it.
        let late = ledger.token(20);
        done.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !task.is_finished(),
            "the final write waits for the chunk in flight"
        );
        late.delivered();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the writer finished once the chunk settled")
            .unwrap();
        assert_eq!(file.load::<u64>().unwrap(), Some(20));
        // The final write is durable.
        assert_eq!(std::fs::read(file.path()).unwrap(), b"20");
        assert!(!file.latest_path().exists());
        assert!(!drained.is_cancelled());
    }

    #[tokio::test]
    async fn drained_ends_the_wait_for_chunks_that_never_settle() {
        let dir = tempfile::tempdir().unwrap();
        let file = CheckpointFile::new(dir.path(), "c.json");
        let watch = LedgerWatch::detached();
        let ledger = AckLedger::watched(0u64, watch.clone());
        ledger.token(10).delivered();
        let _stuck = ledger.token(20);
        let (done, drained) = (CancellationToken::new(), CancellationToken::new());
        done.cancel();
        let task = tokio::spawn(run_writer(
            checkpointing(&ledger, file.clone()),
            Cadence::default(),
            watch,
            done,
            drained.clone(),
            Arc::new(Metrics::new()),
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished());
        drained.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file.load::<u64>().unwrap(), Some(10));
    }
}
