//! The file server: the one thread of a file source that discovers, reads and sends.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logship_config::schema::{FileDecoder, FileSourceConfig, ReadFrom};
use logship_parsers::cri::parse_cri_path;
use notify::RecommendedWatcher;
use prometheus::{IntCounter, IntGauge};

use super::FileSourceError;
use super::assemble::{Assembler, StreamLabels};
use super::discovery::{self, Globs};
use super::fingerprint::fingerprint;
use super::registry::{Registry, Resolution, StreamStatus};
use super::tailer::{Binding, Poll, Tailer};
use crate::containers::{ContainerConfigCache, ContainerInfo};
use crate::containers::{LabelPlan, LogStream};
use crate::context::ComponentContext;
use crate::pipeline::AckToken;
use crate::pipeline::Fanout;
use crate::pipeline::{Chunk, Event, LabelSet};
use crate::telemetry::ComponentMetrics;

/// Bytes read from one file per turn, so one busy file cannot starve the others. About a
/// thousand 250-byte lines: the size of one chunk.
const READ_BUDGET: usize = 256 * 1024;

/// Longest sleep when nothing happened; inotify usually wakes the server much sooner.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Shortest gap between two glob runs triggered by inotify.
const MIN_SCAN_GAP: Duration = Duration::from_millis(100);

/// The file server's state.
pub(super) struct FileServer {
    ctx: ComponentContext,
    globs: Globs,
    registry: Arc<Mutex<Registry>>,
    tailers: Vec<Tailer>,
    out: Fanout,
    wake: Receiver<()>,
    _watcher: Option<RecommendedWatcher>,
    source_labels: LabelSet,
    filename_label: Option<String>,
    decoder: FileDecoder,
    multiline: Option<logship_config::schema::MultilineConfig>,
    max_line_bytes: usize,
    read_from: ReadFrom,
    scan_interval: Duration,
    first_scan: bool,
    /// Paths whose problem was already reported, so a broken file is not logged every scan.
    reported: HashSet<PathBuf>,
    /// For `decoder = "docker"`: each container's `config.v2.json`, cached.
    containers: ContainerConfigCache,
    metrics: ComponentMetrics,
    truncated: IntCounter,
    parse_errors: IntCounter,
    file_errors: IntCounter,
    files_watched: IntGauge,
}

impl FileServer {
    pub(super) fn new(
        config: &FileSourceConfig,
        ctx: ComponentContext,
        registry: Arc<Mutex<Registry>>,
        out: Fanout,
    ) -> Result<Self, FileSourceError> {
        let globs = Globs::new(&config.include, &config.exclude)?;
        let (wake_tx, wake) = sync_channel(1);
        let watcher = discovery::watch(&globs, wake_tx);
        let id = &*ctx.id;
        let m = &ctx.metrics;
        Ok(Self {
            metrics: m.component(id),
            truncated: m.truncated_lines.with_label_values(&[id]),
            parse_errors: m.parse_errors.with_label_values(&[id]),
            file_errors: m.file_errors.with_label_values(&[id]),
            files_watched: m.files_watched.with_label_values(&[id]),
            source_labels: LabelSet::new(
                config.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            filename_label: Some(config.filename_label.clone()).filter(|l| !l.is_empty()),
            decoder: config.decoder,
            multiline: config.multiline.clone(),
            max_line_bytes: config.max_line_bytes,
            read_from: config.read_from,
            scan_interval: Duration::from_millis(config.glob_interval_ms.max(10)),
            first_scan: true,
            reported: HashSet::new(),
            containers: ContainerConfigCache::default(),
            globs,
            registry,
            tailers: Vec::new(),
            out,
            wake,
            _watcher: watcher,
            ctx,
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs until shutdown. Blocks the calling (dedicated) thread.
    pub(super) fn run(mut self, rt: &tokio::runtime::Handle) {
        let mut last_scan: Option<Instant> = None;
        let mut woken = false;
        let mut last_expire = Instant::now();
        loop {
            if self.ctx.shutdown.is_cancelled() {
                break;
            }
            let scan_due = match last_scan {
                None => true,
                Some(t) => {
                    t.elapsed() >= self.scan_interval || (woken && t.elapsed() >= MIN_SCAN_GAP)
                }
            };
            if scan_due {
                self.scan();
                last_scan = Some(Instant::now());
            }
            if last_expire.elapsed() >= Duration::from_secs(60) {
                self.registry().expire();
                last_expire = Instant::now();
            }
            let busy = match self.poll_all(rt) {
                Ok(busy) => busy,
                Err(Stopped) => break,
            };
            woken = false;
            if !busy {
                match self.wake.recv_timeout(IDLE_POLL) {
                    Ok(()) => woken = true,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        std::thread::sleep(IDLE_POLL);
                    }
                }
            }
        }
        let cursors: Vec<_> = self
            .tailers
            .iter()
            .filter_map(|t| t.binding.as_ref().map(|b| (b.id, t.last_cursor)))
            .collect();
        let mut reg = self.registry();
        for (id, cursor) in cursors {
            reg.detach(id, cursor, StreamStatus::Idle);
        }
    }

    /// Gives every tailer one turn. Returns whether any read data.
    fn poll_all(&mut self, rt: &tokio::runtime::Handle) -> Result<bool, Stopped> {
        let mut busy = false;
        let read_ns = now_ns();
        let mut i = 0;
        while i < self.tailers.len() {
            let mut events = Vec::new();
            let outcome = self.tailers[i].poll(READ_BUDGET, read_ns, &mut events);
            self.account(i);
            let keep = match outcome {
                Ok(Poll::Data) => {
                    busy = true;
                    self.send(i, events, rt)?;
                    true
                }
                Ok(Poll::Idle) => {
                    self.send(i, events, rt)?;
                    true
                }
                Ok(Poll::NeedsStream(fp)) => {
                    let t = &self.tailers[i];
                    let (dev, ino, path) = (t.dev, t.ino, t.path.clone());
                    let mut reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
                    let id = reg.create(fp, dev, ino, path, 0);
                    let ledger = reg.get(id).map(|s| s.ledger.clone());
                    drop(reg);
                    if let Some(ledger) = ledger {
                        self.tailers[i].bind(Binding {
                            id,
                            fingerprint: fp,
                            ledger,
                        });
                    }
                    busy = true;
                    true
                }
                Ok(Poll::Truncated(old, cursor)) => {
                    tracing::info!(path = %self.tailers[i].path.display(), "file truncated (copytruncate?); reading its new content from the start");
                    // The old content may reappear as a copy; it continues from `cursor`.
                    self.registry()
                        .detach(old.id, cursor, StreamStatus::Orphaned);
                    busy = true;
                    true
                }
                Ok(Poll::Finished) => {
                    self.send(i, events, rt)?;
                    let t = &self.tailers[i];
                    tracing::debug!(path = %t.path.display(), "rotated file read to its end; closing");
                    if let Some(b) = &t.binding {
                        let (id, cursor) = (b.id, t.last_cursor);
                        self.registry().detach(id, cursor, StreamStatus::Idle);
                    }
                    false
                }
                Err(e) => {
                    let t = &self.tailers[i];
                    self.file_errors.inc();
                    tracing::error!(path = %t.path.display(), error = %e, "cannot read file; closing it (it is retried at the next scan)");
                    if let Some(b) = &t.binding {
                        let (id, cursor) = (b.id, t.last_cursor);
                        self.registry().detach(id, cursor, StreamStatus::Idle);
                    }
                    false
                }
            };
            if keep {
                i += 1;
            } else {
                self.tailers.swap_remove(i);
            }
        }
        self.files_watched.set(self.tailers.len() as i64);
        Ok(busy)
    }

    /// Moves counters gathered by tailer `i` into metrics.
    fn account(&mut self, i: usize) {
        let t = &mut self.tailers[i];
        let truncated = t.truncated_lines + t.assembler.truncated;
        if truncated > 0 {
            self.truncated.inc_by(truncated);
            t.truncated_lines = 0;
            t.assembler.truncated = 0;
        }
        if t.assembler.decode_errors > 0 {
            self.parse_errors.inc_by(t.assembler.decode_errors);
            t.assembler.decode_errors = 0;
        }
    }

    /// Sends tailer `i`'s events as one chunk whose token carries the tailer's cursor. An
    /// empty chunk is still sent when the cursor moved (bytes consumed without a line, e.g.
    /// the discarded tail of an overlong line), so the checkpoint follows.
    fn send(
        &mut self,
        i: usize,
        events: Vec<Event>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), Stopped> {
        let t = &mut self.tailers[i];
        let Some(b) = &t.binding else { return Ok(()) };
        let cursor = t.cursor();
        if events.is_empty() && cursor <= t.last_cursor {
            return Ok(());
        }
        let ack: AckToken = b.ledger.token(cursor);
        let id = b.id;
        t.last_cursor = cursor;
        let path = t.path.clone();
        self.registry().progress(id, cursor, &path);
        let bytes: usize = events.iter().map(|e| e.line.len()).sum();
        self.metrics.received_events.inc_by(events.len() as u64);
        self.metrics.received_bytes.inc_by(bytes as u64);
        self.metrics.sent_events.inc_by(events.len() as u64);
        self.metrics.sent_bytes.inc_by(bytes as u64);
        let chunk = Chunk { events, ack };
        let shutdown = self.ctx.shutdown.clone();
        let out = &mut self.out;
        rt.block_on(async move {
            tokio::select! {
                r = out.send(chunk) => r.map_err(|_| Stopped),
                _ = shutdown.cancelled() => Err(Stopped),
            }
        })
    }

    /// Runs the globs and opens every file that is new content or more of a known stream.
    fn scan(&mut self) {
        self.refresh_container_labels();
        let first = std::mem::replace(&mut self.first_scan, false);
        for path in self.globs.scan() {
            if let Err(e) = self.consider(&path, first)
                && self.reported.insert(path.clone())
            {
                self.file_errors.inc();
                tracing::error!(path = %path.display(), error = %e, "cannot tail file; skipping it, other files go on");
            }
        }
    }

    fn consider(&mut self, path: &Path, first_scan: bool) -> io::Result<()> {
        let meta = std::fs::metadata(path)?;
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
        // A tailer may hold the file without a stream for a moment (truncated, waiting for
        // its new first line), so ask the tailers, not only the registry.
        if self.tailers.iter().any(|t| t.dev == dev && t.ino == ino)
            || self.registry().is_attached(dev, ino)
        {
            return Ok(());
        }
        let file = File::open(path)?;
        let Some(fp) = fingerprint(&file)? else {
            return Ok(()); // first line still being written
        };
        self.reported.remove(path);
        let resolution = self.registry().resolve(dev, ino, size, fp);
        let (id, offset) = match resolution {
            Resolution::AlreadyTailed | Resolution::UpToDate => return Ok(()),
            Resolution::Defer => {
                tracing::debug!(path = %path.display(), "same first line as a file being read; waiting to see whether it is a copytruncate copy");
                return Ok(());
            }
            Resolution::Attach { stream, offset } => (stream, offset),
            Resolution::New => {
                let offset = if first_scan && self.read_from == ReadFrom::End {
                    end_of_last_line(&file, size)?
                } else {
                    0
                };
                let id = self
                    .registry()
                    .create(fp, dev, ino, path.to_path_buf(), offset);
                (id, offset)
            }
        };
        let ledger = {
            let mut reg = self.registry();
            match reg.attach(id, dev, ino, path.to_path_buf()) {
                Some(s) => s.ledger.clone(),
                None => return Ok(()),
            }
        };
        let container = self.container_of(path);
        let assembler = Assembler::new(
            self.decoder,
            self.multiline.as_ref(),
            self.labels_for(path, container.as_deref()),
            self.max_line_bytes,
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let binding = Binding {
            id,
            fingerprint: fp,
            ledger,
        };
        let tailer = Tailer::new(
            path.to_path_buf(),
            file,
            assembler,
            self.max_line_bytes,
            Some(binding),
            offset,
        )?;
        tracing::info!(path = %path.display(), offset, "tailing file");
        let mut tailer = tailer;
        tailer.container = container;
        self.tailers.push(tailer);
        Ok(())
    }

    /// For `decoder = "docker"`: the attributes of the container whose log `path` is, from its
    /// `config.v2.json`. A missing or unreadable config is reported once; the lines still ship
    /// with the file's labels.
    fn container_of(&mut self, path: &Path) -> Option<Arc<ContainerInfo>> {
        if self.decoder != FileDecoder::Docker {
            return None;
        }
        match self.containers.lookup(path) {
            Ok(info) => Some(info),
            Err(e) => {
                if self.reported.insert(path.with_extension("config")) {
                    tracing::warn!(path = %path.display(), error = %e, "no container attributes for this log; shipping it with the file's labels");
                }
                None
            }
        }
    }

    /// Renamed containers: Docker rewrites `config.v2.json`; lines read from then on carry the
    /// new name.
    fn refresh_container_labels(&mut self) {
        if self.decoder != FileDecoder::Docker {
            return;
        }
        for i in 0..self.tailers.len() {
            let path = self.tailers[i].path.clone();
            let Some(info) = self.container_of(&path) else {
                continue;
            };
            let changed = match &self.tailers[i].container {
                Some(old) => !Arc::ptr_eq(old, &info),
                None => true,
            };
            if changed {
                let labels = self.labels_for(&path, Some(&info));
                let t = &mut self.tailers[i];
                t.assembler.set_labels(labels);
                t.container = Some(info);
            }
        }
    }

    /// The labels of a file's lines: the source's static labels, the file name, and what the
    /// decoder knows (CRI: namespace, pod, container; docker: the container's name and compose
    /// labels; both: the stream).
    fn labels_for(&self, path: &Path, container: Option<&ContainerInfo>) -> StreamLabels {
        let mut extra: Vec<(String, String)> = Vec::new();
        if let Some(l) = &self.filename_label {
            extra.push((l.clone(), path.to_string_lossy().into_owned()));
        }
        let path_text = path.to_string_lossy();
        if self.decoder == FileDecoder::Cri
            && let Some(p) = parse_cri_path(&path_text)
        {
            extra.push(("namespace".into(), p.namespace.to_string()));
            extra.push(("pod".into(), p.pod.to_string()));
            extra.push(("container".into(), p.container.to_string()));
        }
        let base = self
            .source_labels
            .merged(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(info) = container {
            // The same labels the API path gives the same container.
            let plan = LabelPlan::default_docker();
            let with = |stream| {
                let own = plan.stream_labels(info, stream).labels;
                base.merged(own.pairs().iter().map(|(k, v)| (&**k, &**v)))
            };
            return StreamLabels {
                stdout: with(LogStream::Stdout),
                stderr: with(LogStream::Stderr),
            };
        }
        match self.decoder {
            FileDecoder::None => StreamLabels {
                stdout: base.clone(),
                stderr: base,
            },
            FileDecoder::Docker | FileDecoder::Cri => StreamLabels {
                stdout: base.merged([("stream", "stdout")]),
                stderr: base.merged([("stream", "stderr")]),
            },
        }
    }
}

/// Sending stopped: shutdown, or every downstream component is gone.
struct Stopped;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The offset just after the last newline before `size`, so that `read_from = "end"` starts
/// on a line boundary.
fn end_of_last_line(file: &File, size: u64) -> io::Result<u64> {
    const WINDOW: u64 = 64 * 1024;
    let start = size.saturating_sub(WINDOW);
    let mut buf = vec![0u8; (size - start) as usize];
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
