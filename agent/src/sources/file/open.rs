//! What a file the server found is, and opening it: the same stream again (read on), the copy
//! of an orphaned stream, a file that cannot be told from another one yet, or new content.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use logship_config::schema::ReadFrom;

use super::assemble::Assembler;
use super::enrich::Admission;
use super::fingerprint::{HeadSig, fingerprint_of, head_of};
use super::registry::Resolution;
use super::server::{FileServer, TailerId, UNDECIDED_LIMIT};
use super::tailer::{Binding, Tailer};

impl FileServer {
    /// Looks at the file now at `path` and opens it if there is something to read; a
    /// failure is reported once per path (then only counted).
    pub(super) fn consider_reporting(&mut self, path: &Path) {
        self.consider_found(path, std::fs::metadata(path));
    }

    /// [`FileServer::consider_reporting`] with the path's metadata already looked up.
    pub(super) fn consider_found(&mut self, path: &Path, meta: io::Result<std::fs::Metadata>) {
        if let Err(e) = self.consider(path, meta)
            && self.reported.insert(path.to_path_buf())
        {
            self.metrics.file_errors.inc();
            tracing::error!(component = %self.ctx.id, path = %path.display(), error = %e, "cannot tail file; skipping it for now, other files go on");
        }
    }

    fn consider(&mut self, path: &Path, meta: io::Result<std::fs::Metadata>) -> io::Result<()> {
        let meta = match meta {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Gone (rotated away, deleted, or a dangling link): its tailer, if any, was
                // poked by the event; nothing else to do.
                self.undecided.remove(path);
                self.waiting.remove(path);
                self.awaiting.remove(path);
                if path.symlink_metadata().is_ok() {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "dangling symlink"));
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            return Ok(());
        }
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        if let Some(&tid) = self.by_inode.get(&(dev, ino)) {
            // Open already (maybe under another name): make sure this path leads to it.
            let previous = self.by_path.insert(path.to_path_buf(), tid);
            if let Some(prev) = previous.filter(|&p| p != tid) {
                self.activate(prev); // the file that had this path was rotated away
            }
            self.activate(tid);
            self.undecided.remove(path);
            self.waiting.remove(path);
            return Ok(());
        }
        if let Some(&prev) = self.by_path.get(path) {
            // The path leads to another file than its tailer's: rotation. The old one drains.
            self.activate(prev);
        }
        if !self.admitted(path) {
            return Ok(());
        }
        // A closed stream on this inode with nothing new: no need to open it.
        let up_to_date = {
            let mut reg = self.registry();
            match reg.by_inode(dev, ino) {
                Some(stream) if reg.get(stream).is_some_and(|s| s.emitted == size) => {
                    reg.touch(stream);
                    true
                }
                _ => false,
            }
        };
        if up_to_date {
            self.undecided.remove(path);
            self.waiting.remove(path);
            return Ok(());
        }
        if !self.make_room() {
            if self.waiting.insert(path.to_path_buf()) {
                tracing::debug!(component = %self.ctx.id, path = %path.display(), "open_files_limit reached; the file waits for a descriptor");
            }
            return Ok(());
        }
        self.waiting.remove(path);
        let file = File::open(path)?;
        let head = head_of(&file)?;
        let Some(fp) = fingerprint_of(&head) else {
            return Ok(()); // its first line is still being written; the next event looks again
        };
        self.reported.remove(path);
        let resolution = self.registry().resolve(dev, ino, size, fp, &head);
        let (stream, offset) = match resolution {
            Resolution::AlreadyTailed | Resolution::UpToDate => {
                self.undecided.remove(path);
                return Ok(());
            }
            Resolution::Undecided { stream } if self.differs_from_live(stream, &head) => {
                self.new_stream(path, &file, fp, &head, dev, ino, size, &meta)?
            }
            Resolution::Undecided { stream } => {
                let since = *self
                    .undecided
                    .entry(path.to_path_buf())
                    .or_insert_with(Instant::now);
                if since.elapsed() < UNDECIDED_LIMIT {
                    tracing::debug!(component = %self.ctx.id, path = %path.display(), "starts exactly like a stream being read; waiting to see whether it is a copytruncate copy");
                    return Ok(());
                }
                let other = self.registry().get(stream).map(|s| s.path.clone());
                tracing::info!(component = %self.ctx.id, path = %path.display(), like = ?other, "starts like another file but was not its copy; reading it as a file of its own");
                self.new_stream(path, &file, fp, &head, dev, ino, size, &meta)?
            }
            Resolution::Attach { stream, offset } => (stream, offset),
            Resolution::New => self.new_stream(path, &file, fp, &head, dev, ino, size, &meta)?,
        };
        self.undecided.remove(path);
        if self
            .open_tailer(path, file, &head, fp, stream, offset)?
            .is_some()
        {
            tracing::info!(component = %self.ctx.id, path = %path.display(), offset, "tailing file");
        }
        Ok(())
    }

    /// Opens a tailer of `file` (at `path`, starting with `head` whose first line hashes to
    /// `fp`) bound to `stream` from `offset`, and schedules it. `None` when the stream is gone.
    fn open_tailer(
        &mut self,
        path: &Path,
        file: File,
        head: &[u8],
        fp: u64,
        stream: usize,
        offset: u64,
    ) -> io::Result<Option<TailerId>> {
        let meta = file.metadata()?;
        let (ledger, head_sig) = {
            let mut reg = self.registry();
            match reg.attach(stream, meta.dev(), meta.ino(), path.to_path_buf()) {
                Some(s) => (
                    s.ledger.clone(),
                    s.head.unwrap_or_else(|| HeadSig::of(head)),
                ),
                None => return Ok(None),
            }
        };
        let container = self.container_of(path);
        let extras = self.extras_of(path);
        let assembler = Assembler::new(
            self.settings.decoder,
            self.settings.multiline.as_ref(),
            self.labels_for(path, container.as_deref(), extras.as_deref()),
            self.settings.max_line_bytes,
        );
        let binding = Binding {
            id: stream,
            fingerprint: fp,
            head: head_sig,
            ledger,
        };
        let mut tailer = Tailer::new(
            path.to_path_buf(),
            file,
            assembler,
            self.settings.max_line_bytes,
            Some(binding),
            offset,
        )?;
        tailer.container = container;
        tailer.extras = extras;
        Ok(Some(self.add_tailer(tailer)))
    }

    /// Whether the source's enricher lets the file at `path` be read now. A file it asks to
    /// wait for is looked at again by the retry timer; the enricher bounds the wait.
    fn admitted(&mut self, path: &Path) -> bool {
        let Some(enricher) = self.settings.enricher.clone() else {
            return true;
        };
        // Only a file told to wait is remembered: a skipped file's every write costs no
        // allocation.
        let waited = self
            .awaiting
            .get(path)
            .map_or(Duration::ZERO, Instant::elapsed);
        let admission = enricher.admit(path, waited);
        if admission == Admission::Wait {
            self.awaiting
                .entry(path.to_path_buf())
                .or_insert_with(Instant::now);
        } else if !self.awaiting.is_empty() {
            self.awaiting.remove(path);
        }
        admission == Admission::Read
    }

    /// A file renamed from `from` to `to`, a name the globs do not match: if it is a stream
    /// nobody has open (closed to stay within `open_files_limit`), it is opened there and
    /// read to its end, like any rotated file, so lines its writer appended after the rename
    /// are not lost. (An open file is followed through its descriptor anyway.)
    pub(super) fn follow_rename(&mut self, from: &Path, to: &Path) {
        if self.globs.matches(to) || !self.globs.matches(from) {
            return; // seen at its new name anyway, or never ours
        }
        let Ok(meta) = std::fs::metadata(to) else {
            return;
        };
        let (dev, ino) = (meta.dev(), meta.ino());
        if self.by_inode.contains_key(&(dev, ino)) {
            return;
        }
        let (stream, offset) = {
            let reg = self.registry();
            let Some(stream) = reg.by_inode(dev, ino) else {
                return;
            };
            match reg.get(stream) {
                Some(s) => (stream, s.emitted),
                None => return,
            }
        };
        if let Err(e) = self.open_rotated(to, stream, offset) {
            tracing::warn!(component = %self.ctx.id, path = %to.display(), error = %e, "cannot follow a renamed file to read its last lines");
        }
    }

    /// Opens `path`, a file renamed away from a matching name, bound to `stream` from
    /// `offset`, to be read to its end and closed after the rotation grace.
    fn open_rotated(&mut self, path: &Path, stream: usize, offset: u64) -> io::Result<()> {
        let file = File::open(path)?;
        let head = head_of(&file)?;
        let Some(fp) = fingerprint_of(&head) else {
            return Ok(());
        };
        if self
            .registry()
            .get(stream)
            .is_none_or(|s| s.fingerprint != fp)
        {
            return Ok(()); // not the content it was
        }
        if let Some(id) = self.open_tailer(path, file, &head, fp, stream, offset)?
            && let Some(t) = self.tailers.get_mut(&id)
        {
            t.mark_rotated();
            tracing::info!(component = %self.ctx.id, path = %path.display(), offset, "following a renamed file to read its last lines");
        }
        Ok(())
    }

    /// True when `stream` is open and its file's first bytes differ from `head` where both
    /// have bytes: then a file starting with `head` is not its copy. Only a live file that
    /// still holds the stream's content can say so: one truncated since (its bytes no longer
    /// match the stream's head signature) says nothing, and the decision waits.
    fn differs_from_live(&self, stream: usize, head: &[u8]) -> bool {
        let Some((dev, ino, sig)) = self.registry().get(stream).map(|s| (s.dev, s.ino, s.head))
        else {
            return false;
        };
        let Some(live) = self
            .by_inode
            .get(&(dev, ino))
            .and_then(|t| self.tailers.get(t))
            .and_then(|t| t.head().ok())
        else {
            return false;
        };
        if sig.and_then(|sig| sig.matches(&live)) != Some(true) {
            return false;
        }
        let n = live.len().min(head.len());
        live[..n] != head[..n]
    }

    /// Registers new content found at `path` and says where to start reading it.
    #[allow(clippy::too_many_arguments)]
    fn new_stream(
        &mut self,
        path: &Path,
        file: &File,
        fp: u64,
        head: &[u8],
        dev: u64,
        ino: u64,
        size: u64,
        meta: &std::fs::Metadata,
    ) -> io::Result<(usize, u64)> {
        let from_end = self.first_scan && self.settings.read_from == ReadFrom::End;
        let too_old = self.settings.ignore_older.is_some_and(|limit| {
            meta.modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > limit)
        });
        let offset = if from_end || too_old {
            if too_old {
                tracing::info!(component = %self.ctx.id, path = %path.display(), "not written for longer than ignore_older_secs; only lines written from now on are read");
            }
            end_of_last_line(file, size)?
        } else {
            0
        };
        let stream =
            self.registry()
                .create(fp, HeadSig::of(head), dev, ino, path.to_path_buf(), offset);
        Ok((stream, offset))
    }
}

/// The offset just after the last newline before `size`, so that reading from the end
/// starts on a line boundary.
fn end_of_last_line(file: &File, size: u64) -> io::Result<u64> {
    const WINDOW: u64 = 64 * 1024;
    let start = size.saturating_sub(WINDOW);
    let mut buf = vec![0u8; usize::try_from(size - start).unwrap_or(0)];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], start + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(match memchr::memrchr(b'\n', &buf[..filled]) {
        Some(i) => start + i as u64 + 1,
        None => size,
    })
}
