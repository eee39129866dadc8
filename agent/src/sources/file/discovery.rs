//! Which files a source reads: include globs minus exclude globs, matched with the same
//! [`FileGlob`] that `validate` checks, and the walk that finds them.
//!
//! A walk costs a `readdir` per directory under each glob's root, down to the depth the glob
//! can match (any depth for `**`), plus a `stat` per entry that is a symlink. It runs at
//! start-up and then only as a safety net (see [`watcher`](super::watcher)): how often files
//! are polled does not multiply it.

use std::collections::HashSet;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use logship_config::globs::FileGlob;
use notify::RecursiveMode;

/// How deep a `**` walk goes at most (and how many symlinked directories it follows in a row):
/// a guard against loops, far beyond any real log tree.
const MAX_DEPTH: usize = 32;

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
    include: Vec<FileGlob>,
    exclude: Vec<FileGlob>,
}

/// One root directory and the include globs below it.
struct Root {
    dir: PathBuf,
    /// Deepest level a match can have below `dir`; `None` for any.
    depth: Option<usize>,
    /// Indexes into `include`.
    globs: Vec<usize>,
}

impl Globs {
    /// Compiles the patterns.
    pub(super) fn new(include: &[String], exclude: &[String]) -> Result<Self, GlobError> {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| {
                    FileGlob::new(p).map_err(|e| GlobError {
                        pattern: p.clone(),
                        message: e.0,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// The include patterns, in config order.
    pub(super) fn patterns(&self) -> impl Iterator<Item = &str> {
        self.include.iter().map(FileGlob::pattern)
    }

    /// True when some include glob matches `path` and no exclude glob does.
    pub(super) fn matches(&self, path: &Path) -> bool {
        self.include.iter().any(|g| g.is_match(path))
            && !self.exclude.iter().any(|g| g.is_match(path))
    }

    /// The include globs that match `path` (ignoring excludes), as indexes.
    fn matching(&self, path: &Path, among: &[usize]) -> Option<usize> {
        among
            .iter()
            .copied()
            .find(|&i| self.include[i].is_match(path))
    }

    fn roots(&self) -> Vec<Root> {
        let mut roots: Vec<Root> = Vec::new();
        for (i, g) in self.include.iter().enumerate() {
            match roots.iter_mut().find(|r| r.dir == g.root()) {
                Some(r) => {
                    r.globs.push(i);
                    r.depth = match (r.depth, g.depth()) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                None => roots.push(Root {
                    dir: g.root().to_path_buf(),
                    depth: g.depth(),
                    globs: vec![i],
                }),
            }
        }
        roots
    }

    /// The directories to watch for changes, and whether recursively.
    pub(super) fn watch_roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        self.roots()
            .into_iter()
            .map(|r| {
                let mode = if r.depth == Some(1) {
                    RecursiveMode::NonRecursive
                } else {
                    RecursiveMode::Recursive
                };
                (r.dir, mode)
            })
            .collect()
    }

    /// Every file that matches now, each once, with how many files each include pattern
    /// matched (in config order).
    pub(super) fn walk(&self) -> (Vec<PathBuf>, Vec<usize>) {
        let mut found = Vec::new();
        let mut counts = vec![0; self.include.len()];
        let mut seen = HashSet::new();
        for root in self.roots() {
            let max = root.depth.unwrap_or(MAX_DEPTH).min(MAX_DEPTH);
            self.walk_dir(&root.dir, 1, max, &root.globs, &mut |path, glob| {
                counts[glob] += 1;
                if seen.insert(path.clone()) {
                    found.push(path);
                }
            });
        }
        found.sort_unstable_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        (found, counts)
    }

    /// The matching files under `dir`, a directory that just appeared below a root.
    pub(super) fn walk_new_dir(&self, dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for root in self.roots() {
            let Ok(rel) = dir.strip_prefix(&root.dir) else {
                continue;
            };
            let level = rel.components().count();
            let max = root.depth.unwrap_or(MAX_DEPTH).min(MAX_DEPTH);
            if level >= max {
                continue;
            }
            self.walk_dir(dir, level + 1, max, &root.globs, &mut |path, _| {
                found.push(path)
            });
        }
        found.sort();
        found.dedup();
        found
    }

    /// Reads `dir`, whose entries are at `level` below their root, reporting matching files
    /// and descending while `level < max`.
    fn walk_dir(
        &self,
        dir: &Path,
        level: usize,
        max: usize,
        globs: &[usize],
        found: &mut dyn FnMut(PathBuf, usize),
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return; // missing or unreadable: the next walk (or an event) tries again
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(mut kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) => kind = m.file_type(),
                    Err(_) => {
                        // A dangling link that matches is reported by the caller's open.
                        if let Some(g) = self.matching(&path, globs)
                            && !self.exclude.iter().any(|e| e.is_match(&path))
                        {
                            found(path, g);
                        }
                        continue;
                    }
                }
            }
            if kind.is_dir() {
                if level < max {
                    self.walk_dir(&path, level + 1, max, globs, found);
                }
            } else if let Some(g) = self.matching(&path, globs)
                && !self.exclude.iter().any(|e| e.is_match(&path))
            {
                found(path, g);
            }
        }
    }
}

/// Device and inode of a file's metadata.
pub(super) fn inode(meta: &fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, "x\n").unwrap();
    }

    #[test]
    fn walks_braces_stars_and_double_stars() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "app/a.log",
            "app/b.txt",
            "app/c.gz",
            "app/sub/d.log",
            "deep/x/y/z/e.log",
            "pods/ns_p_1/c/0.log",
            "pods/ns_p_1/c/0.log.20261130",
        ] {
            touch(&d.join(f));
        }
        let base = d.display();
        let g = Globs::new(
            &[
                format!("{base}/app/*.{{log,txt}}"),
                format!("{base}/deep/**/*.log"),
                format!("{base}/pods/*/*/*.log"),
                format!("{base}/nothing/*.log"),
            ],
            &[format!("{base}/app/b.*")],
        )
        .unwrap();
        let (found, counts) = g.walk();
        let rel: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(
            rel,
            ["app/a.log", "deep/x/y/z/e.log", "pods/ns_p_1/c/0.log"]
        );
        assert_eq!(counts, [1, 1, 1, 0]);
        assert!(g.matches(&d.join("app/new.txt")));
        assert!(!g.matches(&d.join("app/b.txt")), "excluded");
        assert!(
            !g.matches(&d.join("app/sub/d.log")),
            "* stays in one directory"
        );
    }

    #[test]
    fn a_new_directory_is_walked_from_its_level() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("pods/ns_new_2/app/0.log"));
        touch(&d.join("pods/ns_new_2/app/deeper/0.log"));
        let g = Globs::new(&[format!("{}/pods/*/*/*.log", d.display())], &[]).unwrap();
        assert_eq!(
            g.walk_new_dir(&d.join("pods/ns_new_2")),
            vec![d.join("pods/ns_new_2/app/0.log")]
        );
        assert_eq!(
            g.watch_roots(),
            vec![(d.join("pods"), RecursiveMode::Recursive)]
        );
    }

    #[test]
    fn symlinks_to_files_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        touch(&d.join("real/x.log"));
        fs::create_dir_all(d.join("links")).unwrap();
        std::os::unix::fs::symlink(d.join("real/x.log"), d.join("links/x.log")).unwrap();
        let g = Globs::new(&[format!("{}/links/*.log", d.display())], &[]).unwrap();
        assert_eq!(g.walk().0, vec![d.join("links/x.log")]);
        let meta = |p: &str| fs::metadata(d.join(p)).unwrap();
        assert_eq!(inode(&meta("links/x.log")), inode(&meta("real/x.log")));
    }
}
