//! Finding the files to tail: include globs minus exclude globs, re-run on a timer and
//! whenever inotify reports a change in a watched directory.

use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::SyncSender;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// A glob pattern did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid glob {pattern:?}: {message}")]
pub struct GlobError {
    /// The pattern as configured.
    pub pattern: String,
    /// What is wrong with it.
    pub message: String,
}

/// The include and exclude globs of one file source.
pub(super) struct Globs {
    include: Vec<String>,
    exclude: Vec<glob::Pattern>,
}

impl Globs {
    /// Compiles the patterns.
    pub(super) fn new(include: &[String], exclude: &[String]) -> Result<Self, GlobError> {
        for p in include {
            glob::Pattern::new(p).map_err(|e| GlobError {
                pattern: p.clone(),
                message: e.to_string(),
            })?;
        }
        let exclude = exclude
            .iter()
            .map(|p| {
                glob::Pattern::new(p).map_err(|e| GlobError {
                    pattern: p.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            include: include.to_vec(),
            exclude,
        })
    }

    /// Every path that matches now, sorted, without duplicates.
    pub(super) fn scan(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for pattern in &self.include {
            let Ok(paths) = glob::glob(pattern) else {
                continue;
            };
            for path in paths.flatten() {
                if !self.exclude.iter().any(|e| e.matches_path(&path)) {
                    out.push(path);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The directories to watch: each pattern's longest prefix without glob characters,
    /// recursively when the rest of the pattern spans directories.
    pub(super) fn watch_roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        self.include
            .iter()
            .map(|p| {
                let mut root = PathBuf::new();
                let mut rest = 0;
                for c in Path::new(p).components() {
                    let s = c.as_os_str().to_string_lossy();
                    if rest > 0 || s.contains(['*', '?', '[']) {
                        rest += 1;
                    } else if !matches!(c, Component::CurDir) {
                        root.push(c);
                    }
                }
                if rest == 0 {
                    // A literal path: watch its directory.
                    root.pop();
                }
                let mode = if rest > 1 {
                    RecursiveMode::Recursive
                } else {
                    RecursiveMode::NonRecursive
                };
                (root, mode)
            })
            .collect()
    }
}

/// Starts an inotify watcher on the glob roots that wakes the file server on any change.
/// Returns `None` (polling only) when the watcher cannot start; roots that do not exist yet
/// are picked up by polling.
pub(super) fn watch(globs: &Globs, wake: SyncSender<()>) -> Option<RecommendedWatcher> {
    let mut watcher =
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = wake.try_send(());
        }) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; falling back to polling");
                return None;
            }
        };
    for (root, mode) in globs.watch_roots() {
        if let Err(e) = watcher.watch(&root, mode) {
            tracing::debug!(root = %root.display(), error = %e, "not watching directory; polling covers it");
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_literal_prefixes() {
        let g = Globs::new(
            &[
                "/var/log/app/*.log*".into(),
                "/var/log/pods/*/*/*.log".into(),
                "/tmp/x.log".into(),
            ],
            &[],
        )
        .unwrap();
        let roots = g.watch_roots();
        assert_eq!(
            roots[0],
            (PathBuf::from("/var/log/app"), RecursiveMode::NonRecursive)
        );
        assert_eq!(
            roots[1],
            (PathBuf::from("/var/log/pods"), RecursiveMode::Recursive)
        );
        assert_eq!(
            roots[2],
            (PathBuf::from("/tmp"), RecursiveMode::NonRecursive)
        );
    }

    #[test]
    fn exclude_wins() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.log", "b.log", "c.gz"] {
            std::fs::write(dir.path().join(f), "x\n").unwrap();
        }
        let base = dir.path().display();
        let g = Globs::new(
            &[format!("{base}/*")],
            &[format!("{base}/*.gz"), format!("{base}/b.*")],
        )
        .unwrap();
        assert_eq!(g.scan(), vec![dir.path().join("a.log")]);
    }
}
