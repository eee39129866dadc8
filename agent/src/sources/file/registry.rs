//! Which content streams the source knows, and which stream a found file is.
//!
//! A *stream* is one file's content as the source reads it: located by device + inode, with
//! the offset up to which lines were handed downstream and the ledger of their
//! acknowledgements. Streams outlive the open files that read them: a file closed after
//! rotation or to stay under `open_files_limit`, a file truncated by copytruncate whose old
//! content now lives in a copy, or a checkpoint loaded at start-up are all streams without a
//! reader.
//!
//! **Identity is device + inode.** A found file whose inode belongs to a stream *is* that
//! stream (read on from its offset), unless its first line changed (the inode was reused, or
//! the file was truncated and rewritten while nobody watched). The first-line
//! [fingerprint](super::fingerprint) and the head signature only add knowledge:
//!
//! - a file on a *new* inode whose head is the head of an *orphaned* stream (one whose file
//!   was truncated) is the copy copytruncate left: it is read on from where the orphan
//!   stopped;
//! - a file on a new inode that starts like a stream being read *right now* may be such a copy
//!   before the truncation is seen: the server waits a bounded time, then reads it as new;
//! - in every other case a new inode is new content, read from its start. A second live file
//!   is never hidden, and never started at another file's offset.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fingerprint::HeadSig;
use crate::pipeline::{AckLedger, LedgerWatch};

/// Index of a stream in the registry.
pub(super) type StreamId = usize;

/// Streams not seen for this long are forgotten (their checkpoint with them), unless
/// something of theirs is still in flight.
const EXPIRE_AFTER: Duration = Duration::from_secs(3600);

/// What the reader of a stream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamStatus {
    /// A tailer has it open.
    Attached,
    /// Nobody reads it now; its file may grow again.
    Idle,
    /// Its inode no longer holds it (truncated, reused, gone); its remaining content may
    /// appear as a copy.
    Orphaned,
}

/// One content stream.
pub(super) struct StreamState {
    pub fingerprint: u64,
    pub head: Option<HeadSig>,
    pub dev: u64,
    pub ino: u64,
    pub path: PathBuf,
    /// Offset after the last line handed downstream.
    pub emitted: u64,
    pub ledger: AckLedger<u64>,
    pub status: StreamStatus,
    last_seen: Instant,
}

/// What to do with a file a scan or an event found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resolution {
    /// A tailer reads this inode already.
    AlreadyTailed,
    /// A known stream with nothing new to read; it is not opened until it grows.
    UpToDate,
    /// Read this file as `stream`, from `offset`.
    Attach { stream: StreamId, offset: u64 },
    /// It starts like `stream` (being read, or orphaned) but is too short, or too alike, to
    /// tell a copy from a second file yet: wait, bounded.
    Undecided { stream: StreamId },
    /// New content: the caller picks the start offset and calls [`Registry::create`].
    New,
}

/// A checkpoint entry as stored on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredStream {
    pub fingerprint: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadSig>,
    pub dev: u64,
    pub ino: u64,
    pub path: PathBuf,
    pub offset: u64,
}

/// What the checkpoint should hold now, and how far it trails what was read.
pub(super) struct RegistrySnapshot {
    pub streams: Vec<StoredStream>,
    /// Bytes emitted but not yet acknowledged.
    pub lag_bytes: u64,
    /// Chunks whose outcome is not known yet.
    pub in_flight: usize,
}

/// All known streams, indexed by inode and by fingerprint.
#[derive(Default)]
pub(super) struct Registry {
    streams: HashMap<StreamId, StreamState>,
    by_inode: HashMap<(u64, u64), StreamId>,
    by_fingerprint: HashMap<u64, Vec<StreamId>>,
    next_id: StreamId,
    /// Every stream's ledger reports here.
    watch: LedgerWatch,
}

impl Registry {
    /// A registry holding the streams of a checkpoint, all idle; ledgers report to `watch`.
    pub(super) fn from_checkpoint(stored: Vec<StoredStream>, watch: LedgerWatch) -> Self {
        let mut r = Self {
            watch,
            ..Self::default()
        };
        for s in stored {
            let id = r.insert(s.fingerprint, s.head, s.dev, s.ino, s.path, s.offset);
            if let Some(st) = r.streams.get_mut(&id) {
                st.status = StreamStatus::Idle;
            }
        }
        r
    }

    /// The stream that owns inode (`dev`, `ino`), if any.
    pub(super) fn by_inode(&self, dev: u64, ino: u64) -> Option<StreamId> {
        self.by_inode.get(&(dev, ino)).copied()
    }

    /// Decides what a found file is: its inode, `size`, first-line `fingerprint` and first
    /// bytes `head` (up to [`HEAD_BYTES`](super::fingerprint::HEAD_BYTES)).
    pub(super) fn resolve(
        &mut self,
        dev: u64,
        ino: u64,
        size: u64,
        fingerprint: u64,
        head: &[u8],
    ) -> Resolution {
        let now = Instant::now();
        let mut same_inode = None;
        if let Some(id) = self.by_inode(dev, ino)
            && let Some(s) = self.streams.get_mut(&id)
        {
            s.last_seen = now;
            if s.status == StreamStatus::Attached {
                return Resolution::AlreadyTailed;
            }
            if s.fingerprint == fingerprint && size >= s.emitted {
                return if size == s.emitted {
                    Resolution::UpToDate
                } else {
                    Resolution::Attach {
                        stream: id,
                        offset: s.emitted,
                    }
                };
            }
            // Reused, or truncated and rewritten while nobody read it: the old content is
            // not here any more (a copy may hold it).
            s.status = StreamStatus::Orphaned;
            same_inode = Some(id);
        }
        let candidates = self
            .by_fingerprint
            .get(&fingerprint)
            .cloned()
            .unwrap_or_default();
        for id in candidates {
            if Some(id) == same_inode {
                continue;
            }
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            match s.status {
                // Its own inode holds it: this file is another one.
                StreamStatus::Idle => continue,
                StreamStatus::Attached => match s.head.map(|h| h.matches(head)) {
                    Some(Some(false)) => continue,
                    // The same bytes so far: perhaps a copy whose original is about to be
                    // truncated.
                    _ => return Resolution::Undecided { stream: id },
                },
                StreamStatus::Orphaned => {
                    let same = match s.head {
                        Some(h) => h.matches(head),
                        // A checkpoint written before head signatures: the first line is
                        // all there is to go by.
                        None => Some(true),
                    };
                    match same {
                        Some(false) => continue,
                        None => return Resolution::Undecided { stream: id },
                        Some(true) if size < s.emitted => {
                            // Being copied still, or not its copy: wait and look again.
                            return Resolution::Undecided { stream: id };
                        }
                        Some(true) => {
                            s.last_seen = now;
                            return Resolution::Attach {
                                stream: id,
                                offset: s.emitted,
                            };
                        }
                    }
                }
            }
        }
        Resolution::New
    }

    /// Registers new content and returns its id, attached.
    pub(super) fn create(
        &mut self,
        fingerprint: u64,
        head: HeadSig,
        dev: u64,
        ino: u64,
        path: PathBuf,
        offset: u64,
    ) -> StreamId {
        // A stream that owned this inode before lost it (the caller saw it truncated or
        // reused); it stays findable by fingerprint as an orphan.
        if let Some(old) = self.by_inode.remove(&(dev, ino))
            && let Some(s) = self.streams.get_mut(&old)
            && s.status != StreamStatus::Orphaned
        {
            s.status = StreamStatus::Orphaned;
        }
        self.insert(fingerprint, Some(head), dev, ino, path, offset)
    }

    fn insert(
        &mut self,
        fingerprint: u64,
        head: Option<HeadSig>,
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
                head,
                dev,
                ino,
                path,
                emitted: offset,
                ledger: AckLedger::watched(offset, self.watch.clone()),
                status: StreamStatus::Attached,
                last_seen: Instant::now(),
            },
        );
        self.by_inode.insert((dev, ino), id);
        self.by_fingerprint.entry(fingerprint).or_default().push(id);
        id
    }

    /// Marks `id` read by a tailer of the file (`dev`, `ino`) at `path` (its own inode, or the
    /// copy of an orphan).
    pub(super) fn attach(
        &mut self,
        id: StreamId,
        dev: u64,
        ino: u64,
        path: PathBuf,
    ) -> Option<&StreamState> {
        let old = {
            let s = self.streams.get(&id)?;
            (s.dev, s.ino)
        };
        if old != (dev, ino) {
            if self.by_inode.get(&old) == Some(&id) {
                self.by_inode.remove(&old);
            }
            // Whatever owned the copy's inode before is not here any more.
            if let Some(prev) = self.by_inode.insert((dev, ino), id)
                && prev != id
                && let Some(p) = self.streams.get_mut(&prev)
            {
                p.status = StreamStatus::Orphaned;
            }
        }
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
            if status == StreamStatus::Orphaned && self.by_inode.get(&(s.dev, s.ino)) == Some(&id) {
                self.by_inode.remove(&(s.dev, s.ino));
            }
        }
    }

    /// Records progress of an attached stream.
    pub(super) fn progress(&mut self, id: StreamId, emitted: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.emitted = emitted;
            s.last_seen = Instant::now();
        }
    }

    /// Records a longer head signature for `id` (the file grew past its old length).
    pub(super) fn set_head(&mut self, id: StreamId, head: HeadSig) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.head = Some(head);
        }
    }

    /// Marks a stream seen (its file still exists), so it does not expire.
    pub(super) fn touch(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.last_seen = Instant::now();
        }
    }

    /// The stream `id`.
    pub(super) fn get(&self, id: StreamId) -> Option<&StreamState> {
        self.streams.get(&id)
    }

    /// After the first full scan: checkpointed streams whose inode was not found anywhere lost
    /// their file; their content may be found as a copy (moved to another file system,
    /// copied before the original was truncated while the agent was down).
    pub(super) fn orphan_unseen(&mut self, seen: &std::collections::HashSet<(u64, u64)>) {
        let mut lost = Vec::new();
        for (&id, s) in &mut self.streams {
            if s.status == StreamStatus::Idle && !seen.contains(&(s.dev, s.ino)) {
                s.status = StreamStatus::Orphaned;
                lost.push((s.dev, s.ino, id));
            }
        }
        for (dev, ino, id) in lost {
            if self.by_inode.get(&(dev, ino)) == Some(&id) {
                self.by_inode.remove(&(dev, ino));
            }
        }
    }

    /// Forgets streams nobody has seen for a long time and nothing is in flight for.
    pub(super) fn expire(&mut self) {
        let now = Instant::now();
        let gone: Vec<StreamId> = self
            .streams
            .iter()
            .filter(|(_, s)| {
                s.status != StreamStatus::Attached
                    && now.duration_since(s.last_seen) >= EXPIRE_AFTER
                    && s.ledger.in_flight() == 0
            })
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            let Some(s) = self.streams.remove(&id) else {
                continue;
            };
            if self.by_inode.get(&(s.dev, s.ino)) == Some(&id) {
                self.by_inode.remove(&(s.dev, s.ino));
            }
            if let Some(ids) = self.by_fingerprint.get_mut(&s.fingerprint) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.by_fingerprint.remove(&s.fingerprint);
                }
            }
        }
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
                    head: s.head,
                    dev: s.dev,
                    ino: s.ino,
                    path: s.path.clone(),
                    offset,
                }
            })
            .collect();
        // A stable order, so that an unchanged registry makes an equal snapshot (and no
        // write). By inode: comparing paths component by component would cost more than
        // everything else the idle agent does.
        out.sort_unstable_by_key(|s| (s.dev, s.ino, s.offset));
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

    const A: &[u8] = b"banner\nfirst file's line\n";
    const B: &[u8] = b"banner\nsecond file's line, and a longer one\n";

    fn fp(head: &[u8]) -> u64 {
        super::super::fingerprint::fingerprint_of(head).unwrap()
    }

    fn create(r: &mut Registry, head: &[u8], ino: u64, offset: u64) -> StreamId {
        r.create(fp(head), HeadSig::of(head), 1, ino, "f".into(), offset)
    }

    #[test]
    fn rename_rotation_is_the_same_stream() {
        let mut r = Registry::default();
        assert_eq!(r.resolve(1, 10, 100, fp(A), A), Resolution::New);
        let a = create(&mut r, A, 10, 0);
        assert_eq!(r.resolve(1, 10, 100, fp(A), A), Resolution::AlreadyTailed);
        r.detach(a, 100, StreamStatus::Idle);
        assert_eq!(r.resolve(1, 10, 100, fp(A), A), Resolution::UpToDate);
        assert_eq!(
            r.resolve(1, 10, 120, fp(A), A),
            Resolution::Attach {
                stream: a,
                offset: 100
            }
        );
    }

    #[test]
    fn a_second_live_file_with_the_same_first_line_is_new_content() {
        let mut r = Registry::default();
        create(&mut r, A, 10, 0);
        assert_eq!(fp(A), fp(B));
        assert_eq!(r.resolve(1, 11, B.len() as u64, fp(B), B), Resolution::New);
    }

    #[test]
    fn a_shorter_lookalike_cannot_be_told_by_the_registry_alone() {
        let mut r = Registry::default();
        let b = create(&mut r, B, 10, 0);
        // The server compares it with the live file's bytes.
        assert_eq!(
            r.resolve(1, 11, A.len() as u64, fp(A), A),
            Resolution::Undecided { stream: b }
        );
    }

    #[test]
    fn a_file_that_starts_exactly_like_a_live_one_waits_for_a_decision() {
        let mut r = Registry::default();
        let a = create(&mut r, A, 10, 0);
        // Only the banner so far: could be a copy in progress.
        assert_eq!(
            r.resolve(1, 11, 7, fp(b"banner\n"), b"banner\n"),
            Resolution::Undecided { stream: a }
        );
    }

    #[test]
    fn an_idle_stream_never_lends_its_offset_to_another_file() {
        let mut r = Registry::default();
        let a = create(&mut r, A, 10, 0);
        r.detach(a, A.len() as u64, StreamStatus::Idle);
        // A copy of A's bytes on another inode, while A's inode still holds A: another file.
        assert_eq!(r.resolve(1, 11, A.len() as u64, fp(A), A), Resolution::New);
    }

    #[test]
    fn copytruncate_copy_continues_where_the_original_stopped() {
        let mut r = Registry::default();
        let a = create(&mut r, A, 10, 0);
        assert_eq!(
            r.resolve(1, 11, A.len() as u64, fp(A), A),
            Resolution::Undecided { stream: a },
            "the copy appears before the truncation is seen"
        );
        r.detach(a, 20, StreamStatus::Orphaned);
        assert_eq!(
            r.resolve(1, 11, A.len() as u64, fp(A), A),
            Resolution::Attach {
                stream: a,
                offset: 20
            }
        );
        // The truncated original starts again with the same banner: new content, its own.
        r.attach(a, 1, 11, "f.1".into());
        let new_start = b"banner\nafter the truncation, a new line\n";
        assert_eq!(
            r.resolve(1, 10, new_start.len() as u64, fp(new_start), new_start),
            Resolution::New
        );
    }

    #[test]
    fn an_orphan_is_not_claimed_by_a_lookalike() {
        let mut r = Registry::default();
        let a = create(&mut r, A, 10, 0);
        r.detach(a, 20, StreamStatus::Orphaned);
        assert_eq!(r.resolve(1, 12, B.len() as u64, fp(B), B), Resolution::New);
    }

    #[test]
    fn inode_reuse_is_new_content() {
        let mut r = Registry::default();
        let a = create(&mut r, A, 10, 0);
        r.detach(a, 30, StreamStatus::Idle);
        let other = b"something else\n";
        assert_eq!(r.resolve(1, 10, 50, fp(other), other), Resolution::New);
        let b = create(&mut r, other, 10, 0);
        assert_eq!(r.by_inode(1, 10), Some(b));
        assert_eq!(r.get(a).unwrap().status, StreamStatus::Orphaned);
    }

    #[test]
    fn checkpointed_streams_resume_by_inode() {
        let stored = vec![StoredStream {
            fingerprint: fp(A),
            head: Some(HeadSig::of(A)),
            dev: 1,
            ino: 10,
            path: "app.log".into(),
            offset: 20,
        }];
        let mut r = Registry::from_checkpoint(stored.clone(), LedgerWatch::detached());
        match r.resolve(1, 10, 100, fp(A), A) {
            Resolution::Attach { offset, .. } => assert_eq!(offset, 20),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.snapshot().streams, stored);
        // Copytruncate while the agent was down: the original inode holds new content, the
        // copy (another inode) carries the old.
        let mut r = Registry::from_checkpoint(stored, LedgerWatch::detached());
        let new_start = b"fresh\n";
        assert_eq!(
            r.resolve(1, 10, 5, fp(new_start), new_start),
            Resolution::New
        );
        match r.resolve(1, 12, 100, fp(A), A) {
            Resolution::Attach { offset, .. } => assert_eq!(offset, 20),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unseen_checkpointed_streams_become_orphans() {
        let stored = vec![StoredStream {
            fingerprint: fp(A),
            head: Some(HeadSig::of(A)),
            dev: 1,
            ino: 10,
            path: "app.log".into(),
            offset: 20,
        }];
        let mut r = Registry::from_checkpoint(stored, LedgerWatch::detached());
        r.orphan_unseen(&Default::default());
        match r.resolve(1, 99, 100, fp(A), A) {
            Resolution::Attach { offset, .. } => assert_eq!(offset, 20),
            other => panic!("{other:?}"),
        }
    }
}
