//! One open file: reads what is new, splits it into lines, and notices truncation, rotation
//! and deletion.
//!
//! A tailer costs nothing while its file is quiet: it holds no read buffer (one is allocated
//! for the bytes a read finds, sized to them, and given back once they are all lines), and it
//! is only polled when the server has a reason (an inotify event for its path, a safety look,
//! a timer).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use logship_parsers::lines::LineSplitter;

use super::assemble::Assembler;
use super::enrich::Extras;
use super::fingerprint::{FINGERPRINT_BYTES, HeadSig, fingerprint_of, head_of, read_head};
use super::registry::StreamId;
use crate::containers::ContainerInfo;
use crate::pipeline::{AckLedger, Event};

/// Bytes asked of the kernel per read at most.
const READ_SIZE: usize = 64 * 1024;

/// How long a file whose path no longer leads to it (renamed away, replaced, deleted) is kept
/// open after it reached its end, for a writer that has not reopened its log yet.
pub(super) const ROTATED_GRACE: Duration = Duration::from_secs(2);

/// The stream a tailer reads into.
pub(super) struct Binding {
    pub id: StreamId,
    pub fingerprint: u64,
    pub head: HeadSig,
    pub ledger: AckLedger<u64>,
}

/// What one poll of a tailer found.
pub(super) enum Poll {
    /// Read bytes and stopped at the budget: there is more.
    More,
    /// Read to the current end of the file (events may have been produced).
    CaughtUp,
    /// The file has no stream yet and now has a first line: its fingerprint and first bytes.
    NeedsStream(u64, Vec<u8>),
    /// The file was truncated or replaced in place. The stream it was bound to ended at the
    /// given cursor; its remaining content may be in a copy. The tailer now waits for its new
    /// content's first line.
    Truncated(Binding, u64),
    /// The file was renamed away or deleted and has been read to its end.
    Finished,
}

/// An open file being followed.
pub(super) struct Tailer {
    /// The path it was opened at.
    pub path: PathBuf,
    file: File,
    pub dev: u64,
    pub ino: u64,
    pub binding: Option<Binding>,
    buf: BytesMut,
    splitter: LineSplitter,
    pub assembler: Assembler,
    max_line_bytes: usize,
    /// File offset of `buf[0]`: everything before it has been split into lines.
    split_offset: u64,
    /// File offset of the next read.
    read_offset: u64,
    /// The cursor of the last chunk handed out.
    pub last_cursor: u64,
    /// The file's size at the last look.
    size: u64,
    /// Since when the path no longer leads to this file.
    gone_since: Option<Instant>,
    /// The file has no name left (deleted while open): what it holds is only reachable
    /// through this descriptor.
    pub deleted: bool,
    /// Opened after it was renamed away: read to its end, then closed.
    rotated: bool,
    /// Lines cut to `max_line_bytes` since the last poll.
    pub truncated_lines: u64,
    /// For `decoder = "docker"`: the container attributes the labels were made from.
    pub container: Option<Arc<ContainerInfo>>,
    /// What the source's enricher added to this file's lines (kubernetes_logs: its pod).
    pub extras: Option<Arc<Extras>>,
    /// When a read last found data (or the tailer was opened).
    pub last_data: Instant,
    /// Events of the last poll: the room the next chunk starts with, so a busy file's
    /// chunk of ~1,000 events is not grown (and moved) ten times over.
    pub last_chunk_events: usize,
}

impl Tailer {
    /// A tailer for an already opened file, reading from `offset`.
    pub(super) fn new(
        path: PathBuf,
        file: File,
        assembler: Assembler,
        max_line_bytes: usize,
        binding: Option<Binding>,
        offset: u64,
    ) -> io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            file,
            binding,
            buf: BytesMut::new(),
            splitter: LineSplitter::new(max_line_bytes),
            assembler,
            max_line_bytes,
            split_offset: offset,
            read_offset: offset,
            last_cursor: offset,
            gone_since: None,
            deleted: false,
            rotated: false,
            truncated_lines: 0,
            container: None,
            extras: None,
            last_data: Instant::now(),
            last_chunk_events: 0,
        })
    }

    /// Treats the file as rotated away already: it is read to its end and finished after the
    /// grace, whatever its path says (it was opened at a name the globs do not match).
    pub(super) fn mark_rotated(&mut self) {
        self.gone_since = Some(Instant::now());
        self.rotated = true;
    }

    /// Binds a stream found for this file's new content.
    pub(super) fn bind(&mut self, binding: Binding) {
        self.binding = Some(binding);
    }

    /// The offset up to which every line has been handed out.
    pub(super) fn cursor(&self) -> u64 {
        self.assembler.safe_cursor(self.split_offset)
    }

    /// Bytes on disk not read yet, as of the last look.
    pub(super) fn unread(&self) -> u64 {
        self.size.saturating_sub(self.read_offset)
    }

    /// True when the file's size differs from what was read: a cheap `fstat`, for the safety
    /// look that catches changes no event reported. Also notes whether it was deleted.
    pub(super) fn has_changed(&mut self) -> io::Result<bool> {
        let meta = self.file.metadata()?;
        self.deleted = meta.nlink() == 0;
        self.size = meta.len();
        Ok(meta.len() != self.read_offset)
    }

    /// The unread bytes of the file if it has been deleted (one `fstat`, no change to the
    /// tailer): what only this descriptor can still reach.
    pub(super) fn deleted_unread_now(&self) -> u64 {
        match self.file.metadata() {
            Ok(m) if m.nlink() == 0 => m.len().saturating_sub(self.read_offset),
            _ => 0,
        }
    }

    /// When this tailer must be looked at again even if nothing happens: a rotated file's
    /// grace, or a multiline record's timeout.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let grace = self.gone_since.map(|t| t + ROTATED_GRACE);
        match (grace, self.assembler.stale_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the tailer can be closed and reopened later from its checkpoint with
    /// nothing lost: bound, read to the end, no partial line or record held back, the file
    /// still at its path, and quiet for `idle`.
    pub(super) fn is_closable(&self, idle: Duration) -> bool {
        self.binding.is_some()
            && self.buf.is_empty()
            && self.read_offset == self.size
            && self.cursor() == self.split_offset
            && self.last_cursor == self.split_offset
            && self.gone_since.is_none()
            && !self.deleted
            && !self.rotated
            && self.last_data.elapsed() >= idle
    }

    /// Reads up to `budget` bytes and appends the events they complete to `events`.
    pub(super) fn poll(
        &mut self,
        budget: usize,
        read_ns: i64,
        events: &mut Vec<Event>,
    ) -> io::Result<Poll> {
        let meta = self.file.metadata()?;
        self.size = meta.len();
        self.deleted = meta.nlink() == 0;
        let Some(binding) = &self.binding else {
            let mut head = [0u8; FINGERPRINT_BYTES];
            let n = read_head(&self.file, &mut head)?;
            return Ok(match fingerprint_of(&head[..n]) {
                Some(fp) => Poll::NeedsStream(fp, head_of(&self.file)?),
                None => Poll::CaughtUp,
            });
        };
        if self.was_truncated(binding.fingerprint)? {
            let cursor = self.last_cursor;
            if let Some(old) = self.reset_after_truncation() {
                return Ok(Poll::Truncated(old, cursor));
            }
        }
        let mut read = 0;
        while read < budget {
            let want = (budget - read).min(READ_SIZE).min(
                usize::try_from(self.size.saturating_sub(self.read_offset)).unwrap_or(usize::MAX),
            );
            if want == 0 {
                break;
            }
            let len = self.buf.len();
            self.buf.resize(len + want, 0);
            let n = match self.file.read_at(&mut self.buf[len..], self.read_offset) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            };
            self.buf.truncate(len + n);
            if n == 0 {
                // Shorter than fstat said: truncated under us; the next poll sees it.
                break;
            }
            self.read_offset += n as u64;
            read += n;
            self.split(read_ns, events);
        }
        if read > 0 {
            self.last_data = Instant::now();
            // A rotated file's grace counts from its last data.
            self.gone_since = self.rotated.then(Instant::now);
            if self.buf.is_empty() {
                // Every byte became a line: give the buffer back while the file is quiet.
                self.buf = BytesMut::new();
            }
            return Ok(if self.read_offset < self.size {
                Poll::More
            } else {
                Poll::CaughtUp
            });
        }
        self.assembler.flush_stale(events);
        if self.deleted || self.rotated || self.rotated_away()? {
            let since = *self.gone_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= ROTATED_GRACE {
                self.assembler.flush_all(events);
                return Ok(Poll::Finished);
            }
        } else {
            self.gone_since = None;
        }
        Ok(Poll::CaughtUp)
    }

    /// The head signature of the file now, when the bound stream's is shorter than the
    /// file and not yet complete (the file grew past it).
    pub(super) fn grown_head(&self) -> io::Result<Option<HeadSig>> {
        let Some(b) = &self.binding else {
            return Ok(None);
        };
        if b.head.is_complete() || u64::from(b.head.len) >= self.read_offset {
            return Ok(None);
        }
        let head = HeadSig::of(&head_of(&self.file)?);
        Ok((head.len > b.head.len).then_some(head))
    }

    /// The file's first bytes (up to [`HEAD_BYTES`](super::fingerprint::HEAD_BYTES)).
    pub(super) fn head(&self) -> io::Result<Vec<u8>> {
        head_of(&self.file)
    }

    /// Records a longer head signature in the binding.
    pub(super) fn set_head(&mut self, head: HeadSig) {
        if let Some(b) = &mut self.binding {
            b.head = head;
        }
    }

    fn split(&mut self, read_ns: i64, events: &mut Vec<Event>) {
        let base = self.split_offset;
        let mut line_start = base;
        let assembler = &mut self.assembler;
        let mut truncated = 0;
        let consumed = self.splitter.split(&mut self.buf, |line| {
            if line.truncated {
                truncated += 1;
            }
            assembler.push(line.line, line_start, read_ns, events);
            line_start = base + line.end as u64;
        });
        self.split_offset += consumed as u64;
        self.truncated_lines += truncated;
    }

    /// True when the file shrank below what was read, or (at the end of what was read) its
    /// first line is no longer the one it had: truncated and rewritten past the old size
    /// between two looks.
    fn was_truncated(&self, fingerprint: u64) -> io::Result<bool> {
        if self.size < self.read_offset {
            return Ok(true);
        }
        if self.buf.is_empty() && self.size > self.read_offset && self.read_offset > 0 {
            let mut head = [0u8; FINGERPRINT_BYTES];
            let n = read_head(&self.file, &mut head)?;
            return Ok(fingerprint_of(&head[..n]) != Some(fingerprint));
        }
        Ok(false)
    }

    fn reset_after_truncation(&mut self) -> Option<Binding> {
        let old = self.binding.take();
        self.buf = BytesMut::new();
        self.splitter = LineSplitter::new(self.max_line_bytes);
        let mut discard = Vec::new();
        // Held-back pieces belong to the old content; its copy will be read from the cursor.
        self.assembler.flush_all(&mut discard);
        self.split_offset = 0;
        self.read_offset = 0;
        self.last_cursor = 0;
        self.gone_since = None;
        old
    }

    /// True when the path no longer leads to this file (renamed away, replaced, deleted).
    fn rotated_away(&self) -> io::Result<bool> {
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.dev() != self.dev || m.ino() != self.ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }
}
