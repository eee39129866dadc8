//! Where each container's reading stands, and the checkpoint file that remembers it.
//!
//! Docker timestamps every line at nanosecond precision when its copier reads it, one copier
//! per stream, so *within one stream* timestamps never go backwards, while stdout and stderr
//! may interleave slightly out of order in the log. A position is therefore kept per stream:
//! "every line of this stream with a timestamp below `ts`, plus the first `n` lines at exactly
//! `ts`, was shipped". That is exact even when several lines share a timestamp, and needs no
//! byte offsets (the logs API has none).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::containers::LogStream;
use crate::pipeline::{AckLedger, LedgerWatch};

/// How far back the other stream's position is raised when one stream advances: Docker's two
/// copiers stamp and write lines microseconds apart, so a line of one stream is never written
/// more than this much later than a line of the other stream stamped after it. Keeping the
/// other stream at most this far behind keeps `since` near the present for a container that
/// only ever writes to one stream.
pub const STREAM_SKEW_NS: i64 = 1_000_000_000;

/// The position in one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamPos {
    /// Unix nanoseconds of the last shipped line (0: nothing yet).
    pub ts: i64,
    /// How many lines with exactly this timestamp were shipped.
    pub n: u32,
}

/// The checkpoint of one container: a position per stream. TTY containers use `stdout` only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerCursor {
    /// Position in standard output.
    pub stdout: StreamPos,
    /// Position in standard error.
    pub stderr: StreamPos,
}

impl DockerCursor {
    /// The position of one stream.
    pub fn get(&self, stream: LogStream) -> StreamPos {
        match stream {
            LogStream::Stdout => self.stdout,
            LogStream::Stderr => self.stderr,
        }
    }

    /// The position of one stream, to change.
    pub fn get_mut(&mut self, stream: LogStream) -> &mut StreamPos {
        match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        }
    }

    /// The logs API's `since` (whole Unix seconds, as bollard 0.21 takes it): the second of
    /// the older stream position, rounded down, so every unshipped line is at or after it.
    /// Lines before the exact positions are dropped by [`StreamTracker`]. 0 (everything) when
    /// nothing was shipped, or when the time does not fit an `i32` (past 2038).
    pub fn since_secs(&self) -> i32 {
        let ts = self.stdout.ts.min(self.stderr.ts).max(0);
        i32::try_from(ts / 1_000_000_000).unwrap_or(0)
    }

    /// The cursor to checkpoint: each stream raised to at least the other's timestamp minus
    /// [`STREAM_SKEW_NS`] (see there).
    pub fn with_skew_floor(&self) -> DockerCursor {
        let floor = |own: StreamPos, other: StreamPos| {
            let f = other.ts.saturating_sub(STREAM_SKEW_NS);
            if own.ts < f {
                StreamPos { ts: f, n: 0 }
            } else {
                own
            }
        };
        DockerCursor {
            stdout: floor(self.stdout, self.stderr),
            stderr: floor(self.stderr, self.stdout),
        }
    }
}

/// Decides, line by line, whether a stream's line is new, and keeps the stream's position.
///
/// Started from a checkpointed position, it drops what was already shipped: lines older than
/// the position, and the first `n` lines at its exact timestamp.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamTracker {
    pos: StreamPos,
    /// Lines at exactly `pos.ts` seen in this read.
    seen_at_ts: u32,
}

impl StreamTracker {
    /// A tracker resuming after `pos`.
    pub fn new(pos: StreamPos) -> Self {
        Self { pos, seen_at_ts: 0 }
    }

    /// The position after every line admitted so far.
    pub fn pos(&self) -> StreamPos {
        self.pos
    }

    /// True when a line with timestamp `ts` was not shipped before; advances the position.
    pub fn admit(&mut self, ts: i64) -> bool {
        if ts < self.pos.ts {
            return false;
        }
        if ts == self.pos.ts {
            self.seen_at_ts = self.seen_at_ts.saturating_add(1);
            if self.seen_at_ts <= self.pos.n {
                return false;
            }
            self.pos.n = self.seen_at_ts;
            return true;
        }
        self.pos = StreamPos { ts, n: 1 };
        self.seen_at_ts = 1;
        true
    }
}

/// One container's entry in `containers.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCheckpoint {
    /// The container's name when last seen, for people reading the file.
    pub name: String,
    /// What was acknowledged.
    pub cursor: DockerCursor,
}

/// The whole checkpoint file of a docker source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDoc {
    /// Format version; 1.
    pub version: u32,
    /// By full container id.
    pub containers: BTreeMap<String, ContainerCheckpoint>,
}

/// The file name in the source's data directory.
pub const CHECKPOINT_FILE: &str = "containers.json";

/// Every container's acknowledgement ledger, shared between the source (which adds and
/// removes containers) and the checkpoint writer (which snapshots their committed cursors).
#[derive(Clone, Default)]
pub struct LedgerRegistry {
    inner: Arc<Mutex<BTreeMap<String, Entry>>>,
    /// Every container's ledger reports here.
    watch: LedgerWatch,
}

#[derive(Clone)]
struct Entry {
    name: String,
    ledger: AckLedger<DockerCursor>,
}

impl LedgerRegistry {
    /// A registry holding the containers of a loaded checkpoint, each at its saved cursor;
    /// ledgers report to `watch`.
    pub fn from_doc(doc: &CheckpointDoc, watch: LedgerWatch) -> Self {
        let reg = Self {
            watch,
            ..Self::default()
        };
        for (id, c) in &doc.containers {
            reg.lock().insert(
                id.clone(),
                Entry {
                    name: c.name.clone(),
                    ledger: AckLedger::watched(c.cursor, reg.watch.clone()),
                },
            );
        }
        reg
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ledger of container `id`, created at the zero cursor if unknown; `name` is
    /// recorded for the file.
    pub fn ledger(&self, id: &str, name: &str) -> AckLedger<DockerCursor> {
        let mut map = self.lock();
        let entry = map.entry(id.to_owned()).or_insert_with(|| Entry {
            name: name.to_owned(),
            ledger: AckLedger::watched(DockerCursor::default(), self.watch.clone()),
        });
        if entry.name != name {
            entry.name = name.to_owned();
        }
        entry.ledger.clone()
    }

    /// The committed cursor of a known container.
    pub fn committed(&self, id: &str) -> Option<DockerCursor> {
        self.lock().get(id).map(|e| e.ledger.committed())
    }

    /// Forgets a container (it was destroyed: its log is gone).
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Ids of every container with a checkpoint.
    pub fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Chunks of every container whose outcome is not known yet.
    pub fn in_flight(&self) -> usize {
        self.lock().values().map(|e| e.ledger.in_flight()).sum()
    }

    /// What the checkpoint file should hold now.
    pub fn snapshot(&self) -> CheckpointDoc {
        let entries: Vec<(String, Entry)> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        CheckpointDoc {
            version: 1,
            containers: entries
                .into_iter()
                .map(|(id, e)| {
                    let cursor = e.ledger.committed().with_skew_floor();
                    (
                        id,
                        ContainerCheckpoint {
                            name: e.name,
                            cursor,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tracker_skips_shipped_lines_at_the_same_timestamp() {
        let mut t = StreamTracker::new(StreamPos { ts: 100, n: 2 });
        let admitted: Vec<bool> = [99, 100, 100, 100, 101, 101]
            .iter()
            .map(|&ts| t.admit(ts))
            .collect();
        assert_eq!(admitted, [false, false, false, true, true, true]);
        assert_eq!(t.pos(), StreamPos { ts: 101, n: 2 });
    }

    #[test]
    fn since_is_the_older_stream_rounded_down() {
        let c = DockerCursor {
            stdout: StreamPos {
                ts: 1_700_000_005_900_000_000,
                n: 1,
            },
            stderr: StreamPos {
                ts: 1_700_000_003_100_000_000,
                n: 4,
            },
        };
        assert_eq!(c.since_secs(), 1_700_000_003);
        assert_eq!(DockerCursor::default().since_secs(), 0);
    }

    #[test]
    fn skew_floor_raises_the_idle_stream_only() {
        let c = DockerCursor {
            stdout: StreamPos {
                ts: 10_000_000_000,
                n: 3,
            },
            stderr: StreamPos::default(),
        };
        let f = c.with_skew_floor();
        assert_eq!(f.stdout, c.stdout);
        assert_eq!(
            f.stderr,
            StreamPos {
                ts: 9_000_000_000,
                n: 0
            }
        );
        assert_eq!(f.with_skew_floor(), f);
    }

    #[test]
    fn snapshot_reports_committed_cursors() {
        let reg = LedgerRegistry::default();
        let ledger = reg.ledger("abc", "web");
        let cursor = DockerCursor {
            stdout: StreamPos { ts: 5, n: 1 },
            stderr: StreamPos { ts: 5, n: 0 },
        };
        let tok = ledger.token(cursor);
        assert_eq!(
            reg.snapshot().containers["abc"].cursor,
            DockerCursor::default()
        );
        tok.delivered();
        let doc = reg.snapshot();
        assert_eq!(doc.containers["abc"].cursor, cursor);
        let again = LedgerRegistry::from_doc(&doc, LedgerWatch::detached());
        assert_eq!(again.committed("abc"), Some(cursor));
        reg.remove("abc");
        assert!(reg.snapshot().containers.is_empty());
    }

    proptest! {
        /// Resuming from any position reached in a first read ships exactly the lines the
        /// first read had not yet admitted: nothing twice, nothing lost.
        #[test]
        fn resume_ships_exactly_the_rest(
            deltas in proptest::collection::vec(0i64..3, 1..60),
            cut in 0usize..60,
        ) {
            let mut ts = 1_000i64;
            let stamps: Vec<i64> = deltas.iter().map(|d| { ts += d; ts }).collect();
            let cut = cut.min(stamps.len());
            let mut first = StreamTracker::default();
            for &s in &stamps[..cut] {
                prop_assert!(first.admit(s));
            }
            let mut resumed = StreamTracker::new(first.pos());
            let shipped: Vec<i64> = stamps.iter().copied().filter(|&s| resumed.admit(s)).collect();
            prop_assert_eq!(shipped, stamps[cut..].to_vec());
        }
    }
}
