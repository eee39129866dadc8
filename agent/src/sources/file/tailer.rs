//! One open file: reads new bytes, splits them into lines, and notices truncation and
//! rotation.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use logship_parsers::lines::LineSplitter;

use super::assemble::Assembler;
use super::fingerprint::{FINGERPRINT_BYTES, fingerprint_of, read_head};
use super::registry::StreamId;
use crate::containers::ContainerInfo;
use crate::pipeline::AckLedger;
use crate::pipeline::Event;

/// Bytes asked of the kernel per read.
const READ_SIZE: usize = 64 * 1024;

/// How long a rotated-away file is kept open after it reached its end, for a writer that has
/// not reopened its log yet.
const ROTATED_GRACE: Duration = Duration::from_secs(2);

/// The stream a tailer reads into.
pub(super) struct Binding {
    pub id: StreamId,
    pub fingerprint: u64,
    pub ledger: AckLedger<u64>,
}

/// What one poll of a tailer found.
pub(super) enum Poll {
    /// Read bytes (events may have been produced).
    Data,
    /// Nothing new.
    Idle,
    /// The file has no stream yet and now has a first line with this fingerprint.
    NeedsStream(u64),
    /// The file was truncated or replaced in place. The stream it was bound to ended at the
    /// given cursor; its remaining content may be in a copy. The tailer now waits for its new
    /// content's first line.
    Truncated(Binding, u64),
    /// The file was renamed away or deleted and has been read to its end.
    Finished,
}

/// An open file being followed.
pub(super) struct Tailer {
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
    at_eof: bool,
    rotated_at: Option<Instant>,
    /// Lines cut to `max_line_bytes` since the last poll.
    pub truncated_lines: u64,
    /// For `decoder = "docker"`: the container attributes the labels were made from.
    pub container: Option<Arc<ContainerInfo>>,
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
            file,
            binding,
            buf: BytesMut::with_capacity(READ_SIZE * 2),
            splitter: LineSplitter::new(max_line_bytes),
            assembler,
            max_line_bytes,
            split_offset: offset,
            read_offset: offset,
            last_cursor: offset,
            at_eof: false,
            rotated_at: None,
            truncated_lines: 0,
            container: None,
        })
    }

    /// Binds a stream found for this file's new content.
    pub(super) fn bind(&mut self, binding: Binding) {
        self.binding = Some(binding);
    }

    /// The offset up to which every line has been handed out.
    pub(super) fn cursor(&self) -> u64 {
        self.assembler.safe_cursor(self.split_offset)
    }

    /// Reads up to `budget` bytes and appends the events they complete to `events`.
    pub(super) fn poll(
        &mut self,
        budget: usize,
        read_ns: i64,
        events: &mut Vec<Event>,
    ) -> io::Result<Poll> {
        if self.binding.is_none() {
            let mut head = [0u8; FINGERPRINT_BYTES];
            let n = read_head(&self.file, &mut head)?;
            return Ok(match fingerprint_of(&head[..n]) {
                Some(fp) => Poll::NeedsStream(fp),
                None => Poll::Idle,
            });
        }
        if self.at_eof && self.was_truncated()? {
            let cursor = self.last_cursor;
            if let Some(old) = self.reset_after_truncation() {
                return Ok(Poll::Truncated(old, cursor));
            }
        }
        let mut read = 0;
        while read < budget {
            let len = self.buf.len();
            self.buf.resize(len + READ_SIZE, 0);
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
                self.at_eof = true;
                break;
            }
            self.at_eof = false;
            self.read_offset += n as u64;
            read += n;
            self.split(read_ns, events);
        }
        if read > 0 {
            return Ok(Poll::Data);
        }
        self.assembler.flush_stale(events);
        if self.rotated_or_deleted()? {
            let since = *self.rotated_at.get_or_insert_with(Instant::now);
            if since.elapsed() >= ROTATED_GRACE {
                self.assembler.flush_all(events);
                return Ok(Poll::Finished);
            }
        }
        Ok(if events.is_empty() {
            Poll::Idle
        } else {
            Poll::Data
        })
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

    /// True when the file shrank below what was read, or its first line is no longer the
    /// one it had (truncated and rewritten past the old size between two looks).
    fn was_truncated(&self) -> io::Result<bool> {
        let Some(b) = &self.binding else {
            return Ok(false);
        };
        let len = self.file.metadata()?.len();
        if len < self.read_offset {
            return Ok(true);
        }
        let mut head = [0u8; FINGERPRINT_BYTES];
        let n = read_head(&self.file, &mut head)?;
        Ok(fingerprint_of(&head[..n]) != Some(b.fingerprint))
    }

    fn reset_after_truncation(&mut self) -> Option<Binding> {
        let old = self.binding.take();
        self.buf.clear();
        self.splitter = LineSplitter::new(self.max_line_bytes);
        let mut discard = Vec::new();
        // Held-back pieces belong to the old content; its copy will be read from the cursor.
        self.assembler.flush_all(&mut discard);
        self.split_offset = 0;
        self.read_offset = 0;
        self.last_cursor = 0;
        self.at_eof = false;
        self.rotated_at = None;
        old
    }

    /// True when the path no longer leads to this file (renamed away, replaced, deleted).
    fn rotated_or_deleted(&self) -> io::Result<bool> {
        if self.file.metadata()?.nlink() == 0 {
            return Ok(true);
        }
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.dev() != self.dev || m.ino() != self.ino),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }
}
