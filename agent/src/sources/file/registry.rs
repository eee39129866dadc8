//! Which content streams the source knows, and which file each found path belongs to.
//!
//! A *stream* is one file's content, identified by its [fingerprint](super::fingerprint)
//! and located by device + inode. Streams outlive the open files that read them: a file
//! closed after rotation, a file truncated by copytruncate whose old content now lives in a
//! copy, or a checkpoint loaded at start-up are all streams without a reader. When a scan finds
//! a path, [`Registry::resolve`] decides whether it is a stream already being read, the next
//! part of a known stream (rename, copy) or new content.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::pipeline::{AckLedger, LedgerWatch};

/// Index of a stream in the registry.
pub(super) type StreamId = usize;

/// Streams not seen for this long are forgotten (their checkpoint with them).
const EXPIRE_AFTER: Duration = Duration::from_secs(3600);

/// What the reader of a stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamStatus {
    /// A tailer has it open.
    Attached,
    /// Nobody reads it; its file may grow again (or a renamed copy of it may appear).
    Idle,
    /// Its file was truncated (copytruncate); its remaining content may appear as a copy.
    Orphaned,
}

/// One content stream.
pub(super) struct StreamState {
    pub fingerprint: u64,
    pub dev: u64,
    pub ino: u64,
    pub path: PathBuf,
    /// Offset after the last line handed downstream.
    pub emitted: u64,
    pub ledger: AckLedger<u64>,
    pub status: StreamStatus,
    last_seen: Instant,
}

/// What to do with a path a scan found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resolution {
    /// Its stream is being read already.
    AlreadyTailed,
    /// Same content as a stream being read from another inode that has not been truncated
    /// (yet): wait; if the original is truncated this is its copy.
    Defer,
    /// A known stream with nothing new to read.
    UpToDate,
    /// Read this file as `stream`, from `offset`.
    Attach { stream: StreamId, offset: u64 },
    /// New content: the caller picks the start offset and calls [`Registry::create`].
    New,
}

/// A checkpoint entry as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredStream {
    pub fingerprint: u64,
    pub dev: u64,
    pub ino: u64,
    pub path: PathBuf,
    pub offset: u64,
}

/// All known streams.
#[derive(Default)]
pub(super) struct Registry {
    streams: HashMap<StreamId, StreamState>,
    next_id: StreamId,
    /// Every stream's ledger reports here.
    watch: LedgerWatch,
}

/// What the checkpoint should hold now, and how far it trails what was read.
pub(super) struct RegistrySnapshot {
    pub streams: Vec<StoredStream>,
    /// Bytes emitted but not yet acknowledged.
    pub lag_bytes: u64,
    /// Chunks whose outcome is not known yet.
    pub in_flight: usize,
}

impl Registry {
    /// A registry holding the streams of a checkpoint, all idle; ledgers report to `watch`.
    pub(super) fn from_checkpoint(stored: Vec<StoredStream>, watch: LedgerWatch) -> Self {
        let mut r = Self {
            watch,
            ..Self::default()
        };
        for s in stored {
            let id = r.insert(s.fingerprint, s.dev, s.ino, s.path, s.offset);
            if let Some(st) = r.streams.get_mut(&id) {
                st.status = StreamStatus::Idle;
            }
        }
        r
    }

    /// True when a tailer reads the file with this device and inode.
    pub(super) fn is_attached(&self, dev: u64, ino: u64) -> bool {
        self.streams
            .values()
            .any(|s| s.status == StreamStatus::Attached && s.dev == dev && s.ino == ino)
    }

    /// Decides what a found file (`dev`, `ino`, `size`, first-line `fingerprint`) is.
    pub(super) fn resolve(
        &mut self,
        dev: u64,
        ino: u64,
        size: u64,
        fingerprint: u64,
    ) -> Resolution {
        if self.is_attached(dev, ino) {
            return Resolution::AlreadyTailed;
        }
        let now = Instant::now();
        let mut same_inode = None;
        let mut live_elsewhere = false;
        let mut waiting_elsewhere = None;
        for (&id, s) in &self.streams {
            if s.fingerprint != fingerprint {
                continue;
            }
            if s.dev == dev && s.ino == ino {
                same_inode = Some(id);
            } else if s.status == StreamStatus::Attached {
                live_elsewhere = true;
            } else if waiting_elsewhere.is_none() {
                waiting_elsewhere = Some(id);
            }
        }
        if let Some(id) = same_inode {
            let Some(s) = self.streams.get_mut(&id) else {
                return Resolution::New;
            };
            s.last_seen = now;
            if size > s.emitted {
                return Resolution::Attach {
                    stream: id,
                    offset: s.emitted,
                };
            }
            if size == s.emitted {
                return Resolution::UpToDate;
            }
            // Smaller than what was read, yet the same first line: truncated and rewritten
            // while nobody watched. The old content is gone; read the new from the start.
            s.status = StreamStatus::Orphaned;
            return Resolution::New;
        }
        if live_elsewhere {
            return Resolution::Defer;
        }
        if let Some(id) = waiting_elsewhere {
            let Some(s) = self.streams.get_mut(&id) else {
                return Resolution::New;
            };
            s.last_seen = now;
            if size <= s.emitted {
                return Resolution::UpToDate;
            }
            return Resolution::Attach {
                stream: id,
                offset: s.emitted,
            };
        }
        Resolution::New
    }

    /// Registers new content and returns its id, attached.
    pub(super) fn create(
        &mut self,
        fingerprint: u64,
        dev: u64,
        ino: u64,
        path: PathBuf,
        offset: u64,
    ) -> StreamId {
        self.insert(fingerprint, dev, ino, path, offset)
    }

    fn insert(
        &mut self,
        fingerprint: u64,
        dev: u64,
        ino: u64,
        path: PathBuf,
        offset: u64,
    ) -> StreamId {
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(
            id,
            StreamState {
                fingerprint,
                dev,
                ino,
                path,
                emitted: offset,
                ledger: AckLedger::watched(offset, self.watch.clone()),
                status: StreamStatus::Attached,
                last_seen: Instant::now(),
            },
        );
        id
    }

    /// Marks `id` read by a tailer of the file (`dev`, `ino`) at `path`.
    pub(super) fn attach(
        &mut self,
        id: StreamId,
        dev: u64,
        ino: u64,
        path: PathBuf,
    ) -> Option<&StreamState> {
        let s = self.streams.get_mut(&id)?;
        s.dev = dev;
        s.ino = ino;
        s.path = path;
        s.status = StreamStatus::Attached;
        s.last_seen = Instant::now();
        Some(s)
    }

    /// The tailer of `id` stopped after emitting everything up to `emitted`.
    pub(super) fn detach(&mut self, id: StreamId, emitted: u64, status: StreamStatus) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.emitted = emitted;
            s.status = status;
            s.last_seen = Instant::now();
        }
    }

    /// Records progress of an attached stream (for lag metrics and resolution of copies).
    pub(super) fn progress(&mut self, id: StreamId, emitted: u64, path: &std::path::Path) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.emitted = emitted;
            s.last_seen = Instant::now();
            if s.path != path {
                s.path = path.to_path_buf();
            }
        }
    }

    /// The stream `id`.
    pub(super) fn get(&self, id: StreamId) -> Option<&StreamState> {
        self.streams.get(&id)
    }

    /// Forgets streams nobody has seen for a long time and nothing is in flight for.
    pub(super) fn expire(&mut self) {
        let now = Instant::now();
        self.streams.retain(|_, s| {
            s.status == StreamStatus::Attached
                || now.duration_since(s.last_seen) < EXPIRE_AFTER
                || s.ledger.in_flight() > 0
        });
    }

    /// What the checkpoint file should hold now, and how far it trails what was read.
    pub(super) fn snapshot(&self) -> RegistrySnapshot {
        let mut lag = 0;
        let mut in_flight = 0;
        let mut out: Vec<StoredStream> = self
            .streams
            .values()
            .map(|s| {
                let offset = s.ledger.committed();
                lag += s.emitted.saturating_sub(offset);
                in_flight += s.ledger.in_flight();
                StoredStream {
                    fingerprint: s.fingerprint,
                    dev: s.dev,
                    ino: s.ino,
                    path: s.path.clone(),
                    offset,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.path, a.fingerprint).cmp(&(&b.path, b.fingerprint)));
        RegistrySnapshot {
            streams: out,
            lag_bytes: lag,
            in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rotation_is_the_same_stream() {
        let mut r = Registry::default();
        assert_eq!(r.resolve(1, 10, 100, 0xaa), Resolution::New);
        let a = r.create(0xaa, 1, 10, "app.log".into(), 0);
        // Renamed to app.log.1: same inode, still attached.
        assert_eq!(r.resolve(1, 10, 100, 0xaa), Resolution::AlreadyTailed);
        // Drained and closed; later scans find nothing new.
        r.detach(a, 100, StreamStatus::Idle);
        assert_eq!(r.resolve(1, 10, 100, 0xaa), Resolution::UpToDate);
        // The writer still appended to the renamed file: read on.
        assert_eq!(
            r.resolve(1, 10, 120, 0xaa),
            Resolution::Attach {
                stream: a,
                offset: 100
            }
        );
    }

    #[test]
    fn copytruncate_copy_continues_where_the_original_stopped() {
        let mut r = Registry::default();
        let a = r.create(0xaa, 1, 10, "app.log".into(), 0);
        // The copy appears before the tailer noticed the truncation: wait.
        assert_eq!(r.resolve(1, 11, 500, 0xaa), Resolution::Defer);
        r.detach(a, 300, StreamStatus::Orphaned);
        assert_eq!(
            r.resolve(1, 11, 500, 0xaa),
            Resolution::Attach {
                stream: a,
                offset: 300
            }
        );
    }

    #[test]
    fn inode_reuse_is_new_content() {
        let mut r = Registry::default();
        let a = r.create(0xaa, 1, 10, "app.log".into(), 0);
        r.detach(a, 300, StreamStatus::Idle);
        assert_eq!(r.resolve(1, 10, 50, 0xbb), Resolution::New);
    }

    #[test]
    fn checkpointed_streams_resume_by_fingerprint() {
        let stored = vec![StoredStream {
            fingerprint: 0xaa,
            dev: 1,
            ino: 10,
            path: "app.log".into(),
            offset: 40,
        }];
        let mut r = Registry::from_checkpoint(stored.clone(), LedgerWatch::detached());
        match r.resolve(1, 10, 100, 0xaa) {
            Resolution::Attach { offset, .. } => assert_eq!(offset, 40),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.snapshot().streams, stored);
        // Copytruncate while the agent was down: the copy (another inode) carries the content.
        let mut r = Registry::from_checkpoint(stored, LedgerWatch::detached());
        assert_eq!(r.resolve(1, 10, 5, 0xcc), Resolution::New);
        match r.resolve(1, 12, 100, 0xaa) {
            Resolution::Attach { offset, .. } => assert_eq!(offset, 40),
            other => panic!("{other:?}"),
        }
    }
}
