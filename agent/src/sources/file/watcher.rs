//! Noticing change by events: an inotify watch (the `notify` crate) on each glob root
//! collects the paths that changed, and wakes the file server.
//!
//! The watcher's thread only records: a set of changed paths (each once, however many writes
//! it saw), the directories that appeared, and whether the kernel's queue overflowed. The
//! server takes the whole record at once. When the record would grow past
//! [`MAX_PENDING`] paths, or the kernel drops events (`IN_Q_OVERFLOW`), it only says "look at
//! everything": the server then walks the globs again and looks at every open file, so no
//! event is needed for correctness, only for speed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use notify::event::{CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

/// Changed paths kept at most before the record collapses into "look at everything".
const MAX_PENDING: usize = 65_536;

/// What changed since the server last looked.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Files (or former files) whose content, name or existence changed.
    pub paths: HashSet<PathBuf>,
    /// Directories that appeared: files may have been created in them before their watch.
    pub new_dirs: HashSet<PathBuf>,
    /// Renames seen whole (old path, new path): a closed file renamed to a name the globs do
    /// not match is followed there, so its last lines are not lost.
    pub renames: Vec<(PathBuf, PathBuf)>,
    /// Events were lost: walk the globs and look at every file.
    pub overflow: bool,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.paths.is_empty()
            && self.new_dirs.is_empty()
            && self.renames.is_empty()
            && !self.overflow
    }
}

/// The inotify watch of one file source.
pub(super) struct ChangeWatcher {
    watcher: Option<RecommendedWatcher>,
    pending: Arc<Mutex<Changes>>,
    wake: Receiver<()>,
    /// Roots not watched yet (they did not exist, or the kernel refused); retried at each
    /// rescan.
    unwatched: Vec<(PathBuf, RecursiveMode)>,
}

impl ChangeWatcher {
    /// Starts watching `roots`. Without inotify (or for roots that cannot be watched) the
    /// server's periodic rescan and safety polls still find every change, later.
    pub(super) fn new(roots: Vec<(PathBuf, RecursiveMode)>) -> Self {
        let pending = Arc::new(Mutex::new(Changes::default()));
        let (wake_tx, wake) = sync_channel(1);
        let watcher = start(pending.clone(), wake_tx);
        let mut w = Self {
            watcher,
            pending,
            wake,
            unwatched: roots,
        };
        w.retry_unwatched();
        w
    }

    /// Tries again to watch the roots that could not be watched yet.
    pub(super) fn retry_unwatched(&mut self) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        self.unwatched.retain(|(root, mode)| match watcher.watch(root, *mode) {
            Ok(()) => {
                tracing::debug!(root = %root.display(), "watching directory");
                false
            }
            Err(e) => {
                tracing::debug!(root = %root.display(), error = %e, "not watching directory yet; rescans cover it");
                true
            }
        });
    }

    /// Waits until something changed or `timeout` passed.
    pub(super) fn wait(&self, timeout: Duration) {
        match self.wake.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
    }

    /// Takes everything recorded since the last call.
    pub(super) fn take(&self) -> Changes {
        std::mem::take(&mut *lock(&self.pending))
    }
}

fn lock(m: &Mutex<Changes>) -> MutexGuard<'_, Changes> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The notify watcher, whose callback records into `pending` and wakes the server.
fn start(pending: Arc<Mutex<Changes>>, wake: SyncSender<()>) -> Option<RecommendedWatcher> {
    let handler = move |res: notify::Result<notify::Event>| {
        let mut p = lock(&pending);
        let was_empty = p.is_empty();
        match res {
            Ok(event) if event.need_rescan() => p.overflow = true,
            Ok(event) => record(&mut p, event),
            Err(e) => {
                tracing::debug!(error = %e, "inotify error; looking at everything");
                p.overflow = true;
            }
        }
        drop(p);
        if was_empty {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = wake.try_send(());
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "inotify unavailable; changes are found by polling (slower)");
            None
        }
    }
}

fn record(p: &mut Changes, event: notify::Event) {
    if p.overflow {
        return;
    }
    let is_new_dir = matches!(event.kind, EventKind::Create(CreateKind::Folder));
    if matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both))
    ) && let [from, to] = &event.paths[..]
        && p.renames.len() < MAX_PENDING
    {
        p.renames.push((from.clone(), to.clone()));
    }
    // Our own reads open files too (IN_OPEN); they change nothing.
    if matches!(event.kind, EventKind::Access(_)) {
        return;
    }
    for path in event.paths {
        if p.paths.len() + p.new_dirs.len() >= MAX_PENDING {
            p.overflow = true;
            p.paths.clear();
            p.new_dirs.clear();
            p.renames.clear();
            return;
        }
        if is_new_dir {
            p.new_dirs.insert(path);
        } else if !p.paths.contains(Path::new(&path)) {
            p.paths.insert(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_for(w: &ChangeWatcher, mut done: impl FnMut(&Changes) -> bool) -> Changes {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = Changes::default();
        while Instant::now() < deadline {
            w.wait(Duration::from_millis(100));
            let c = w.take();
            all.paths.extend(c.paths);
            all.new_dirs.extend(c.new_dirs);
            all.overflow |= c.overflow;
            if done(&all) {
                return all;
            }
        }
        panic!("no such change within 10 s: {all:?}");
    }

    #[test]
    fn reports_writes_creations_and_new_directories() {
        let dir = tempfile::tempdir().unwrap();
        let w = ChangeWatcher::new(vec![(dir.path().to_path_buf(), RecursiveMode::Recursive)]);
        let file = dir.path().join("a.log");
        std::fs::write(&file, "x\n").unwrap();
        wait_for(&w, |c| c.paths.contains(&file));
        let sub = dir.path().join("pod");
        std::fs::create_dir(&sub).unwrap();
        wait_for(&w, |c| c.new_dirs.contains(&sub));
        // notify reports a new directory before it adds the directory's watch (notify 8.2,
        // `inotify.rs`: events first, then `add_watches`), so a write right after the report
        // can come too early to be seen; the server scans reported new directories for that.
        // What is checked here: once the watch is in place, writes inside are reported.
        let inner = sub.join("0.log");
        wait_for(&w, |c| {
            std::fs::write(&inner, "y\n").unwrap();
            c.paths.contains(&inner)
        });
    }

    #[test]
    fn a_root_that_appears_later_is_watched_after_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("later");
        let mut w = ChangeWatcher::new(vec![(root.clone(), RecursiveMode::NonRecursive)]);
        assert_eq!(w.unwatched.len(), 1);
        std::fs::create_dir(&root).unwrap();
        w.retry_unwatched();
        assert!(w.unwatched.is_empty());
        let file = root.join("a.log");
        std::fs::write(&file, "x\n").unwrap();
        wait_for(&w, |c| c.paths.contains(&file));
    }
}
