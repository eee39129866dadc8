//! File globs, the one definition `validate` and the running agent share, so a pattern that
//! passes `validate` is a pattern the agent matches.
//!
//! Syntax is [`globset`]'s: `*` and `?` within one path component, `**` across components,
//! `[abc]` character classes, `{a,b}` alternatives. A pattern must be an absolute path to a
//! file: a relative pattern, or one that ends with `/`, could never match a file the agent
//! reads, so it is an error rather than a source that silently tails nothing.
//!
//! ```
//! use logship_config::globs::FileGlob;
//!
//! let g = FileGlob::new("/var/log/pods/*/*/*.{log,txt}").unwrap();
//! assert!(g.is_match("/var/log/pods/ns_pod_uid/app/0.log"));
//! assert!(!g.is_match("/var/log/pods/ns_pod_uid/app/0.log.gz"));
//! assert_eq!(g.root(), std::path::Path::new("/var/log/pods"));
//! assert_eq!(g.depth(), Some(3));
//!
//! let any = FileGlob::new("/var/log/**/*.log").unwrap();
//! assert!(any.is_match("/var/log/a/b/c/x.log"));
//! assert_eq!(any.depth(), None); // any depth below the root
//!
//! assert!(FileGlob::new("logs/*.log").is_err());
//! ```

use std::path::{Component, Path, PathBuf};

/// Why a pattern cannot be a file glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GlobProblem(pub String);

/// One compiled include or exclude pattern.
#[derive(Debug, Clone)]
pub struct FileGlob {
    pattern: String,
    matcher: globset::GlobMatcher,
    root: PathBuf,
    depth: Option<usize>,
}

impl FileGlob {
    /// Compiles `pattern`, or says why it can match no file.
    pub fn new(pattern: &str) -> Result<Self, GlobProblem> {
        if pattern.is_empty() {
            return Err(GlobProblem("the glob is empty".into()));
        }
        if !pattern.starts_with('/') {
            return Err(GlobProblem(
                "the glob must be an absolute path (start with `/`)".into(),
            ));
        }
        if pattern.ends_with('/') {
            return Err(GlobProblem(
                "the glob ends with `/`, so it names directories, never files".into(),
            ));
        }
        if pattern.contains('\0') {
            return Err(GlobProblem("the glob contains a NUL character".into()));
        }
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| GlobProblem(e.kind().to_string()))?;
        let (root, depth) = split_root(pattern);
        Ok(Self {
            pattern: pattern.to_owned(),
            matcher: glob.compile_matcher(),
            root,
            depth,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when `path` matches.
    pub fn is_match(&self, path: impl AsRef<Path>) -> bool {
        self.matcher.is_match(path)
    }

    /// The longest leading directory without glob characters: where matches live, and what
    /// to watch.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many components below [`FileGlob::root`] a match has: `Some(n)` exactly, or `None`
    /// for any number (`**`, or an alternative that spans directories).
    pub fn depth(&self) -> Option<usize> {
        self.depth
    }
}

/// True when a path component holds glob syntax.
fn is_glob_component(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

/// The literal root of `pattern` and the depth of matches below it.
fn split_root(pattern: &str) -> (PathBuf, Option<usize>) {
    let mut root = PathBuf::new();
    let mut rest: Vec<String> = Vec::new();
    for c in Path::new(pattern).components() {
        let s = c.as_os_str().to_string_lossy();
        if !rest.is_empty() || is_glob_component(&s) {
            rest.push(s.into_owned());
        } else if !matches!(c, Component::CurDir) {
            root.push(c);
        }
    }
    if rest.is_empty() {
        // A literal path: its directory is the root, the file one level down.
        let file = root.file_name().map(|f| f.to_string_lossy().into_owned());
        root.pop();
        rest.extend(file);
    }
    // Braces may hold a `/` (`{a/b,c}`), which Path splits into odd components.
    let unbounded = rest.iter().any(|c| c == "**" || c.contains("**"))
        || pattern[root.as_os_str().len()..]
            .split('{')
            .skip(1)
            .any(|group| group.split('}').next().is_some_and(|g| g.contains('/')));
    (root, (!unbounded).then_some(rest.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_depths() {
        let cases = [
            ("/var/log/app/*.log*", "/var/log/app", Some(1)),
            ("/var/log/pods/*/*/*.log", "/var/log/pods", Some(3)),
            ("/tmp/x.log", "/tmp", Some(1)),
            ("/var/log/**/*.log", "/var/log", None),
            ("/var/log/{a/b,c}/*.log", "/var/log", None),
            ("/var/log/app/*.{log,txt}", "/var/log/app", Some(1)),
            ("/data/[ab]/x.log", "/data", Some(2)),
        ];
        for (pattern, root, depth) in cases {
            let g = FileGlob::new(pattern).unwrap();
            assert_eq!(g.root(), Path::new(root), "{pattern}");
            assert_eq!(g.depth(), depth, "{pattern}");
        }
    }

    #[test]
    fn matching_follows_shell_rules() {
        let g = FileGlob::new("/var/log/app/*.{log,txt}").unwrap();
        assert!(g.is_match("/var/log/app/a.log"));
        assert!(g.is_match("/var/log/app/a.txt"));
        assert!(
            !g.is_match("/var/log/app/sub/a.log"),
            "* stays in its component"
        );
        let g = FileGlob::new("/var/log/**/*.log").unwrap();
        assert!(g.is_match("/var/log/x.log"));
        assert!(g.is_match("/var/log/a/b/x.log"));
        let g = FileGlob::new("/data/[ab]/x.log").unwrap();
        assert!(g.is_match("/data/a/x.log"));
        assert!(!g.is_match("/data/c/x.log"));
    }

    #[test]
    fn patterns_that_match_no_file_are_refused() {
        for p in [
            "",
            "logs/*.log",
            "./x.log",
            "/var/log/",
            "/var/log/[",
            "/a/{b",
        ] {
            assert!(FileGlob::new(p).is_err(), "{p:?} should be refused");
        }
    }
}
