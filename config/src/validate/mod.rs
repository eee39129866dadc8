//! Checks on the typed config that serde cannot express: names Loki accepts, regexes and
//! globs that compile, options that fit together, and the shape of the component graph.
//! Every check runs, so one load reports all mistakes; findings point at the key or value
//! the user wrote, found by path through [`Locator`].

mod label_count;
mod names;
mod sinks;
mod sources;
mod tests;
mod transforms;

use std::collections::BTreeMap;
use std::ops::Range;

use crate::error::ProblemKind;
use crate::graph::{self, Graph};
use crate::locate::Locator;
use crate::report::Issue;
use crate::schema::{Config, MultilineConfig};

pub(crate) use names::label_name_problem;

/// What validation found.
pub(crate) struct Findings {
    pub issues: Vec<Issue>,
    /// Span (interpolated text) and message of each warning.
    pub warnings: Vec<(Range<usize>, String)>,
    pub graph: Graph,
}

/// Validates a decoded config and builds its graph.
pub(crate) fn validate(config: &Config, loc: &Locator<'_, '_>) -> Findings {
    let mut checker = Checker {
        loc,
        issues: Vec::new(),
        warnings: Vec::new(),
    };
    check_components(&mut checker, config);
    // Tests name components, so like the graph they are checked once all of them decoded.
    tests::check(&mut checker, config);
    let graph = graph::check_and_build(&mut checker, config);
    label_count::check(&mut checker, config, &graph);
    Findings {
        issues: checker.issues,
        warnings: checker.warnings,
        graph,
    }
}

/// Checks each component on its own, without the graph: what can still be said about a
/// config some of whose components did not decode (their inputs may name the missing ones).
pub(crate) fn validate_components(config: &Config, loc: &Locator<'_, '_>) -> Vec<Issue> {
    let mut checker = Checker {
        loc,
        issues: Vec::new(),
        warnings: Vec::new(),
    };
    check_components(&mut checker, config);
    checker.issues
}

fn check_components(checker: &mut Checker<'_, '_, '_>, config: &Config) {
    if config.data_dir.as_os_str().is_empty() {
        checker.non_empty(&["data_dir"], "");
    }
    for (id, source) in &config.sources {
        sources::check(checker, id, source);
    }
    for (id, transform) in &config.transforms {
        transforms::check(checker, id, transform);
    }
    for (id, sink) in &config.sinks {
        sinks::check(checker, id, sink);
    }
}

/// Collects findings, with helpers for the checks that several components share.
pub(crate) struct Checker<'l, 'a, 'i> {
    pub loc: &'l Locator<'a, 'i>,
    pub issues: Vec<Issue>,
    pub warnings: Vec<(Range<usize>, String)>,
}

impl Checker<'_, '_, '_> {
    /// Records an error.
    pub fn error(&mut self, issue: Issue) {
        self.issues.push(issue);
    }

    /// Records a warning at a span.
    pub fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.push((span, message.into()));
    }

    /// An error at the value of `path`.
    pub fn error_at_value(
        &mut self,
        kind: ProblemKind,
        path: &[&str],
        message: impl Into<String>,
        label: &str,
    ) {
        let span = self.loc.value(path);
        self.error(Issue::new(kind, span, message, label));
    }

    /// Requires a number to be positive.
    pub fn positive(&mut self, path: &[&str], value: u64) {
        if value == 0 {
            let name = path.last().copied().unwrap_or_default();
            self.error_at_value(
                ProblemKind::InvalidValue,
                path,
                format!("`{name}` must be greater than 0"),
                "zero",
            );
        }
    }

    /// Requires a string to be non-empty.
    pub fn non_empty(&mut self, path: &[&str], value: &str) {
        if value.is_empty() {
            let name = path.last().copied().unwrap_or_default();
            self.error_at_value(
                ProblemKind::InvalidValue,
                path,
                format!("`{name}` must not be empty"),
                "empty",
            );
        }
    }

    /// Compiles a regex, reporting a failure at the value. Returns it when valid.
    pub fn regex(&mut self, path: &[&str], pattern: &str) -> Option<regex::Regex> {
        match regex::Regex::new(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                let span = self.loc.value(path);
                // regex's message is multi-line ASCII art; keep its last line, the reason.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid regex");
                let reason = reason.trim().trim_start_matches("error:").trim().to_owned();
                self.error(
                    Issue::new(
                        ProblemKind::InvalidRegex,
                        span,
                        format!("invalid regex: {reason}"),
                        "does not compile",
                    )
                    .with_help("regexes use Rust `regex` syntax: https://docs.rs/regex/#syntax"),
                );
                None
            }
        }
    }

    /// Checks the keys of a map that become Loki label names (or structured-metadata names).
    pub fn label_names(&mut self, path: &[&str], map: &BTreeMap<String, String>, what: &str) {
        for name in map.keys() {
            if let Some(why) = label_name_problem(name) {
                let span = self.loc.key(&extend(path, name));
                self.error(
                    Issue::new(
                        ProblemKind::InvalidLabelName,
                        span,
                        format!("invalid {what} name `{name}`: {why}"),
                        "invalid name",
                    )
                    .with_help(
                        "Loki names match `[a-zA-Z_][a-zA-Z0-9_]*` and must not start with `__`",
                    ),
                );
            }
        }
    }

    /// Checks static labels: valid names and non-empty values (Loki drops empty labels).
    pub fn static_labels(&mut self, path: &[&str], map: &BTreeMap<String, String>) {
        self.label_names(path, map, "label");
        for (name, value) in map {
            if value.is_empty() {
                self.error_at_value(
                    ProblemKind::InvalidValue,
                    &extend(path, name),
                    format!("label `{name}` has an empty value, which Loki treats as no label"),
                    "empty",
                );
            }
        }
    }

    /// Checks an optional `multiline` table under `path`.
    pub fn multiline(&mut self, path: &[&str], multiline: Option<&MultilineConfig>) {
        let Some(m) = multiline else {
            return;
        };
        let base = extend(path, "multiline");
        self.regex(&extend(&base, "start_pattern"), &m.start_pattern);
        self.positive(&extend(&base, "timeout_ms"), m.timeout_ms);
        self.positive(&extend(&base, "max_lines"), m.max_lines as u64);
    }
}

/// `path` with one more segment.
pub(crate) fn extend<'p>(path: &[&'p str], segment: &'p str) -> Vec<&'p str> {
    let mut out = Vec::with_capacity(path.len() + 1);
    out.extend_from_slice(path);
    out.push(segment);
    out
}
