//! The file server: the one thread of a file source that discovers, reads and sends.
//!
//! It does work only when there is a reason:
//!
//! - an **event** (inotify, through [`ChangeWatcher`]) for a path: the file at that path is
//!   looked at (opened if new, polled if open);
//! - a **timer**: a rotated file's grace, a multiline record's timeout, a file that may be a
//!   copy waiting for a decision;
//! - the **safety look**, every second: one `fstat` per open file, catching writes no event
//!   reported (network file systems, a lost event);
//! - the **rescan**, every `glob_interval_ms` (and when inotify overflowed): the globs are
//!   walked again and every match is checked against what is known.
//!
//! Polled files are read round-robin, each up to a budget per turn, so one busy file cannot
//! starve the others. Sending blocks while the pipeline is full: that is the backpressure.
//! At most `open_files_limit` files are open; beyond it the quietest files that are read to
//! their end are closed, and reopened from their offset (found again by device and inode) when
//! they change. A file deleted while it still has unread bytes is never closed early: its
//! descriptor is the only way left to those bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use logship_config::schema::{FileDecoder, FileSourceConfig, ReadFrom};
use prometheus::{IntCounter, IntGauge};

use super::FileSourceError;
use super::assemble::MultilineSpec;
use super::discovery::Globs;
use super::enrich::Enricher;
use super::registry::{Registry, StreamStatus};
use super::tailer::{Binding, Poll, Tailer};
use super::watcher::ChangeWatcher;
use crate::containers::ContainerConfigCache;
use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Event, Fanout, LabelSet};
use crate::telemetry::ComponentMetrics;

/// Bytes read from one file per turn, so one busy file cannot starve the others. About a
/// thousand 250-byte lines: the size of one chunk.
const READ_BUDGET: usize = 256 * 1024;

/// How often every open file gets a cheap `fstat`, for changes no event reported.
const SAFETY_LOOK: Duration = Duration::from_secs(1);

/// How long a file that starts exactly like another may wait to be told apart from a
/// copytruncate copy before it is read as a file of its own.
pub(super) const UNDECIDED_LIMIT: Duration = Duration::from_secs(5);

/// How often undecided files and files waiting for a descriptor are looked at again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// How often forgotten streams are expired from the registry.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// Identifies a tailer within the server.
pub(super) type TailerId = u64;

/// What a file source does with the files it finds, fixed at build time.
pub(super) struct Settings {
    pub source_labels: LabelSet,
    pub filename_label: Option<String>,
    pub decoder: FileDecoder,
    pub multiline: Option<MultilineSpec>,
    pub max_line_bytes: usize,
    pub read_from: ReadFrom,
    pub rescan_interval: Duration,
    pub open_files_limit: usize,
    pub ignore_older: Option<Duration>,
    /// What the source knows about files beyond their paths (kubernetes_logs: pods).
    pub enricher: Option<Arc<dyn Enricher>>,
}

/// The metric handles of one file source.
pub(super) struct ServerMetrics {
    pub component: ComponentMetrics,
    pub truncated: IntCounter,
    pub decode_errors: IntCounter,
    pub file_errors: IntCounter,
    pub files_open: IntGauge,
    pub files_waiting: IntGauge,
    pub deleted_unread: IntGauge,
    pub unread: IntGauge,
    pub rescans: prometheus::IntCounterVec,
}

/// The file server's state.
pub(super) struct FileServer {
    pub(super) ctx: ComponentContext,
    pub(super) globs: Globs,
    pub(super) settings: Settings,
    pub(super) registry: Arc<Mutex<Registry>>,
    pub(super) watcher: ChangeWatcher,
    pub(super) tailers: HashMap<TailerId, Tailer>,
    next_tailer: TailerId,
    /// The tailer reading the file now at each path (a rotated file's tailer loses its path
    /// to the new file's).
    pub(super) by_path: HashMap<PathBuf, TailerId>,
    pub(super) by_inode: HashMap<(u64, u64), TailerId>,
    /// Tailers to poll, in turn; `queued` says who is in it.
    active: VecDeque<TailerId>,
    queued: HashSet<TailerId>,
    /// Tailers with a deadline (see [`Tailer::deadline`]).
    timed: HashSet<TailerId>,
    /// Files that start like another stream, since when; decided or read as new within
    /// [`UNDECIDED_LIMIT`].
    pub(super) undecided: HashMap<PathBuf, Instant>,
    /// Files not opened because `open_files_limit` was reached.
    pub(super) waiting: HashSet<PathBuf>,
    /// Files the enricher asked to wait for (a new pod not in the watch yet), since when.
    pub(super) awaiting: HashMap<PathBuf, Instant>,
    /// The enricher's generation the open files' extras were taken at.
    pub(super) extras_generation: u64,
    pub(super) first_scan: bool,
    /// Paths whose problem was already reported, so a broken file is not logged every scan.
    pub(super) reported: HashSet<PathBuf>,
    /// For `decoder = "docker"`: each container's `config.v2.json`, cached.
    pub(super) containers: ContainerConfigCache,
    pub(super) metrics: ServerMetrics,
    out: Fanout,
}

impl FileServer {
    pub(super) fn new(
        config: &FileSourceConfig,
        ctx: ComponentContext,
        registry: Arc<Mutex<Registry>>,
        enricher: Option<Arc<dyn Enricher>>,
        out: Fanout,
    ) -> Result<Self, FileSourceError> {
        let globs = Globs::new(&config.include, &config.exclude)?;
        let multiline = config
            .multiline
            .as_ref()
            .map(MultilineSpec::new)
            .transpose()?;
        let watcher = ChangeWatcher::new(globs.watch_roots());
        let id = &*ctx.id;
        let m = &ctx.metrics;
        Ok(Self {
            metrics: ServerMetrics {
                component: m.component(id),
                truncated: m.truncated_lines.with_label_values(&[id]),
                decode_errors: m.decode_errors.with_label_values(&[id]),
                file_errors: m.file_errors.with_label_values(&[id]),
                files_open: m.files_watched.with_label_values(&[id]),
                files_waiting: m.files_waiting.with_label_values(&[id]),
                deleted_unread: m.files_deleted_unread_bytes.with_label_values(&[id]),
                unread: m.source_unread_bytes.with_label_values(&[id]),
                rescans: m.file_rescans.clone(),
            },
            settings: Settings {
                source_labels: LabelSet::new(
                    config.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ),
                filename_label: Some(config.filename_label.clone()).filter(|l| !l.is_empty()),
                decoder: config.decoder,
                multiline,
                max_line_bytes: config.max_line_bytes,
                read_from: config.read_from,
                rescan_interval: Duration::from_millis(config.glob_interval_ms.max(10)),
                open_files_limit: config.open_files_limit.max(1),
                ignore_older: config.ignore_older_secs.map(Duration::from_secs),
                enricher,
            },
            globs,
            registry,
            watcher,
            tailers: HashMap::new(),
            next_tailer: 0,
            by_path: HashMap::new(),
            by_inode: HashMap::new(),
            active: VecDeque::new(),
            queued: HashSet::new(),
            timed: HashSet::new(),
            undecided: HashMap::new(),
            waiting: HashSet::new(),
            awaiting: HashMap::new(),
            extras_generation: 0,
            first_scan: true,
            reported: HashSet::new(),
            containers: ContainerConfigCache::default(),
            out,
            ctx,
        })
    }

    pub(super) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs until shutdown. Blocks the calling (dedicated) thread.
    pub(super) fn run(mut self, rt: &tokio::runtime::Handle) {
        let mut next_rescan = Instant::now();
        let mut next_safety = Instant::now() + SAFETY_LOOK;
        let mut next_retry = Instant::now();
        let mut next_expire = Instant::now() + EXPIRE_EVERY;
        loop {
            if self.ctx.shutdown.is_cancelled() {
                break;
            }
            let changes = self.watcher.take();
            let now = Instant::now();
            if changes.overflow || now >= next_rescan {
                let reason = if self.first_scan {
                    "start"
                } else if changes.overflow {
                    tracing::info!(component = %self.ctx.id, "inotify lost events; walking the globs again");
                    "overflow"
                } else {
                    "timer"
                };
                self.metrics
                    .rescans
                    .with_label_values(&[&self.ctx.id, reason])
                    .inc();
                self.rescan();
                next_rescan = Instant::now() + self.settings.rescan_interval;
                next_safety = now; // look at every open file too
            }
            for dir in &changes.new_dirs {
                for path in self.globs.walk_new_dir(dir) {
                    self.consider_reporting(&path);
                }
            }
            for path in &changes.paths {
                self.on_changed(path);
            }
            for (from, to) in &changes.renames {
                self.follow_rename(from, to);
            }
            if now >= next_safety {
                self.safety_look();
                next_safety = now + SAFETY_LOOK;
            }
            if now >= next_retry && self.has_pending() {
                self.retry_pending();
                next_retry = now + RETRY_EVERY;
            }
            self.refresh_extras();
            self.activate_due(now);
            if now >= next_expire {
                self.registry().expire();
                next_expire = now + EXPIRE_EVERY;
            }
            if self.poll_round(rt).is_err() {
                break;
            }
            self.update_gauges();
            if self.active.is_empty() {
                let mut until = next_rescan.min(next_safety);
                if self.has_pending() {
                    until = until.min(next_retry);
                }
                if let Some(t) = self.earliest_deadline() {
                    until = until.min(t);
                }
                let wait = until.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    self.watcher.wait(wait);
                }
            }
        }
        let cursors: Vec<_> = self
            .tailers
            .values()
            .filter_map(|t| t.binding.as_ref().map(|b| (b.id, t.last_cursor)))
            .collect();
        let mut reg = self.registry();
        for (id, cursor) in cursors {
            reg.detach(id, cursor, StreamStatus::Idle);
        }
    }

    /// A path an event named changed: look at the file now there, and at the file that was.
    fn on_changed(&mut self, path: &Path) {
        if let Some(&tid) = self.by_path.get(path) {
            self.activate(tid);
        }
        if self.settings.decoder == FileDecoder::Docker
            && path.file_name() == Some(std::ffi::OsStr::new(crate::containers::CONFIG_FILE))
        {
            self.refresh_container_labels(path.parent());
            return;
        }
        if self.globs.matches(path) {
            self.consider_reporting(path);
        }
    }

    /// Walks the globs: opens what is new or has grown, and pokes open files whose path now
    /// leads elsewhere (rotated, deleted).
    fn rescan(&mut self) {
        self.watcher.retry_unwatched();
        let first = self.first_scan;
        let (paths, counts) = self.globs.walk();
        if first {
            for (pattern, n) in self.globs.patterns().zip(&counts) {
                if *n == 0 {
                    tracing::warn!(component = %self.ctx.id, glob = pattern, "no file matches this include glob now; files that appear later are picked up");
                }
            }
        }
        let found: HashSet<&PathBuf> = paths.iter().collect();
        let stale: Vec<TailerId> = self
            .by_path
            .iter()
            .filter(|(p, _)| !found.contains(p))
            .map(|(_, &t)| t)
            .collect();
        for t in stale {
            self.activate(t);
        }
        // Files whose inode the registry knows first: resuming them settles which streams
        // are orphaned before any other file could be taken for their copy.
        let mut known = Vec::new();
        let mut other = Vec::new();
        let mut seen = HashSet::new();
        for path in paths {
            let meta = std::fs::metadata(&path);
            match &meta {
                Ok(m) => {
                    let (dev, ino) = super::discovery::inode(m);
                    seen.insert((dev, ino));
                    if self.registry().by_inode(dev, ino).is_some() {
                        known.push((path, meta));
                    } else {
                        other.push((path, meta));
                    }
                }
                Err(_) => other.push((path, meta)),
            }
        }
        // Oldest first: a backlog of rotated files (`0.log.<date>`, then `0.log`) is read in
        // the order it was written, as Loki's out-of-order window prefers.
        let written = |(_, meta): &(PathBuf, std::io::Result<std::fs::Metadata>)| {
            meta.as_ref().ok().and_then(|m| m.modified().ok())
        };
        known.sort_by_key(written);
        other.sort_by_key(written);
        for (path, meta) in known {
            self.consider_found(&path, meta);
        }
        if first {
            self.registry().orphan_unseen(&seen);
        }
        for (path, meta) in other {
            self.consider_found(&path, meta);
        }
        self.first_scan = false;
        if first {
            self.refresh_container_labels(None);
        }
    }

    /// `fstat` of every open file; those that changed are polled.
    fn safety_look(&mut self) {
        let changed: Vec<TailerId> = self
            .tailers
            .iter_mut()
            .filter_map(|(&id, t)| t.has_changed().unwrap_or(true).then_some(id))
            .collect();
        for id in changed {
            self.activate(id);
        }
    }

    /// Looks again at undecided files and at files waiting for a descriptor.
    /// Whether files wait to be looked at again (see [`FileServer::retry_pending`]).
    fn has_pending(&self) -> bool {
        !self.undecided.is_empty() || !self.waiting.is_empty() || !self.awaiting.is_empty()
    }

    fn retry_pending(&mut self) {
        let mut paths: Vec<PathBuf> = self.undecided.keys().cloned().collect();
        paths.extend(self.awaiting.keys().cloned());
        let mut waiting: Vec<PathBuf> = self.waiting.drain().collect();
        waiting.sort();
        paths.extend(waiting);
        for path in paths {
            self.consider_reporting(&path);
        }
    }

    pub(super) fn activate(&mut self, id: TailerId) {
        if self.tailers.contains_key(&id) && self.queued.insert(id) {
            self.active.push_back(id);
        }
    }

    fn activate_due(&mut self, now: Instant) {
        let due: Vec<TailerId> = self
            .timed
            .iter()
            .filter(|id| {
                self.tailers
                    .get(id)
                    .and_then(Tailer::deadline)
                    .is_none_or(|d| d <= now)
            })
            .copied()
            .collect();
        for id in due {
            self.timed.remove(&id);
            self.activate(id);
        }
    }

    fn earliest_deadline(&self) -> Option<Instant> {
        self.timed
            .iter()
            .filter_map(|id| self.tailers.get(id).and_then(Tailer::deadline))
            .min()
    }

    /// Registers an opened tailer and schedules its first poll.
    pub(super) fn add_tailer(&mut self, tailer: Tailer) -> TailerId {
        let id = self.next_tailer;
        self.next_tailer += 1;
        self.by_path.insert(tailer.path.clone(), id);
        self.by_inode.insert((tailer.dev, tailer.ino), id);
        self.tailers.insert(id, tailer);
        self.activate(id);
        id
    }

    /// Closes tailer `id`, leaving its stream in the registry with `status`.
    fn close(&mut self, id: TailerId, status: StreamStatus) {
        let Some(t) = self.tailers.remove(&id) else {
            return;
        };
        if let Some(b) = &t.binding {
            self.registry().detach(b.id, t.last_cursor, status);
        }
        self.by_path.retain(|_, v| *v != id);
        if self.by_inode.get(&(t.dev, t.ino)) == Some(&id) {
            self.by_inode.remove(&(t.dev, t.ino));
        }
        self.queued.remove(&id);
        self.timed.remove(&id);
    }

    /// True when a file may be opened now, closing the quietest closable file if the limit is
    /// reached.
    pub(super) fn make_room(&mut self) -> bool {
        if self.tailers.len() < self.settings.open_files_limit {
            return true;
        }
        let quietest = self
            .tailers
            .iter()
            .filter(|(id, t)| !self.queued.contains(id) && t.is_closable(Duration::ZERO))
            .min_by_key(|(_, t)| t.last_data)
            .map(|(&id, _)| id);
        match quietest {
            Some(id) => {
                tracing::debug!(component = %self.ctx.id, path = %self.tailers[&id].path.display(), "closing a quiet file to stay within open_files_limit; it is reopened when it changes");
                self.close(id, StreamStatus::Idle);
                true
            }
            None => false,
        }
    }

    /// Gives every active tailer one turn.
    fn poll_round(&mut self, rt: &tokio::runtime::Handle) -> Result<(), Stopped> {
        let read_ns = now_ns();
        for _ in 0..self.active.len() {
            let Some(id) = self.active.pop_front() else {
                break;
            };
            self.queued.remove(&id);
            let Some(t) = self.tailers.get_mut(&id) else {
                continue;
            };
            let mut events = Vec::with_capacity(t.last_chunk_events);
            let outcome = t.poll(READ_BUDGET, read_ns, &mut events);
            t.last_chunk_events = events.len();
            self.account(id);
            match outcome {
                Ok(Poll::More) => {
                    self.send(id, events, rt)?;
                    self.note_head(id);
                    self.activate(id);
                }
                Ok(Poll::CaughtUp) => {
                    self.send(id, events, rt)?;
                    self.note_head(id);
                    if self.tailers.get(&id).and_then(Tailer::deadline).is_some() {
                        self.timed.insert(id);
                    }
                }
                Ok(Poll::NeedsStream(fp, head)) => self.bind_new_content(id, fp, &head),
                Ok(Poll::Truncated(old, cursor)) => {
                    if let Some(t) = self.tailers.get(&id) {
                        tracing::info!(component = %self.ctx.id, path = %t.path.display(), "file truncated (copytruncate?); reading its new content from the start");
                    }
                    // The old content may reappear as a copy; it continues from `cursor`.
                    self.registry()
                        .detach(old.id, cursor, StreamStatus::Orphaned);
                    self.activate(id);
                    // A copy seen before the truncation can be told now.
                    self.retry_pending();
                }
                Ok(Poll::Finished) => {
                    self.send(id, events, rt)?;
                    if let Some(t) = self.tailers.get(&id) {
                        tracing::debug!(component = %self.ctx.id, path = %t.path.display(), "rotated or deleted file read to its end; closing");
                    }
                    self.close(id, StreamStatus::Idle);
                }
                Err(e) => {
                    self.metrics.file_errors.inc();
                    if let Some(t) = self.tailers.get(&id) {
                        tracing::error!(component = %self.ctx.id, path = %t.path.display(), error = %e, "cannot read file; closing it (it is retried at the next scan)");
                    }
                    self.close(id, StreamStatus::Idle);
                }
            }
        }
        Ok(())
    }

    /// The tailer's new content got its first line: a new stream on the same inode.
    fn bind_new_content(&mut self, id: TailerId, fp: u64, head: &[u8]) {
        let Some(t) = self.tailers.get(&id) else {
            return;
        };
        let (dev, ino, path) = (t.dev, t.ino, t.path.clone());
        let sig = super::fingerprint::HeadSig::of(head);
        let mut reg = self.registry();
        let stream = reg.create(fp, sig, dev, ino, path, 0);
        let ledger = reg.get(stream).map(|s| s.ledger.clone());
        drop(reg);
        if let (Some(ledger), Some(t)) = (ledger, self.tailers.get_mut(&id)) {
            t.bind(Binding {
                id: stream,
                fingerprint: fp,
                head: sig,
                ledger,
            });
        }
        self.activate(id);
    }

    /// Records a longer head signature when the file grew past the old one.
    fn note_head(&mut self, id: TailerId) {
        let Some(t) = self.tailers.get_mut(&id) else {
            return;
        };
        if let Ok(Some(head)) = t.grown_head() {
            t.set_head(head);
            if let Some(stream) = t.binding.as_ref().map(|b| b.id) {
                self.registry().set_head(stream, head);
            }
        }
    }

    /// Moves counters gathered by tailer `id` into metrics.
    fn account(&mut self, id: TailerId) {
        let Some(t) = self.tailers.get_mut(&id) else {
            return;
        };
        let truncated = t.truncated_lines + t.assembler.truncated;
        if truncated > 0 {
            self.metrics.truncated.inc_by(truncated);
            t.truncated_lines = 0;
            t.assembler.truncated = 0;
        }
        if t.assembler.decode_errors > 0 {
            self.metrics.decode_errors.inc_by(t.assembler.decode_errors);
            t.assembler.decode_errors = 0;
        }
    }

    /// Sends tailer `id`'s events as one chunk whose token carries the tailer's cursor. An
    /// empty chunk is still sent when the cursor moved (bytes consumed without a line, e.g.
    /// the discarded tail of an overlong line), so the checkpoint follows.
    fn send(
        &mut self,
        id: TailerId,
        events: Vec<Event>,
        rt: &tokio::runtime::Handle,
    ) -> Result<(), Stopped> {
        let Some(t) = self.tailers.get_mut(&id) else {
            return Ok(());
        };
        let Some(b) = &t.binding else { return Ok(()) };
        let cursor = t.cursor();
        if events.is_empty() && cursor <= t.last_cursor {
            return Ok(());
        }
        let ack = b.ledger.token(cursor);
        let stream = b.id;
        t.last_cursor = cursor;
        self.registry().progress(stream, cursor);
        let bytes: usize = events.iter().map(|e| e.line.len()).sum();
        let m = &self.metrics.component;
        m.received_events.inc_by(events.len() as u64);
        m.received_bytes.inc_by(bytes as u64);
        m.sent_events.inc_by(events.len() as u64);
        m.sent_bytes.inc_by(bytes as u64);
        let chunk = Chunk { events, ack };
        let shutdown = self.ctx.shutdown.clone();
        let out = &mut self.out;
        let tailers = &self.tailers;
        let deleted_unread = &self.metrics.deleted_unread;
        rt.block_on(async move {
            let send = out.send(chunk);
            tokio::pin!(send);
            // Most sends find room at once; only a full pipeline starts the gauge timer.
            if let Some(r) = futures::FutureExt::now_or_never(&mut send) {
                return r.map_err(|_| Stopped);
            }
            // While the pipeline is full, keep saying what deleted files still hold.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    r = &mut send => return r.map_err(|_| Stopped),
                    () = shutdown.cancelled() => return Err(Stopped),
                    _ = tick.tick() => {
                        let unread: u64 = tailers.values().map(Tailer::deleted_unread_now).sum();
                        deleted_unread.set(i64::try_from(unread).unwrap_or(i64::MAX));
                    }
                }
            }
        })
    }

    fn update_gauges(&self) {
        self.metrics.files_open.set(self.tailers.len() as i64);
        self.metrics.files_waiting.set(self.waiting.len() as i64);
        let (mut unread, mut deleted_unread) = (0u64, 0u64);
        for t in self.tailers.values() {
            unread += t.unread();
            if t.deleted {
                deleted_unread += t.unread();
            }
        }
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.unread.set(gauge(unread));
        self.metrics.deleted_unread.set(gauge(deleted_unread));
    }
}

/// Sending stopped: shutdown, or every downstream component is gone.
pub(super) struct Stopped;

pub(super) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
