//! The logship pipeline config: schema, `${ENV}` interpolation, validation with
//! line/column diagnostics, and the component graph.
//!
//! # How a config is loaded
//!
//! [`load_file`] (or [`load_str`], which takes the environment as a function) runs five
//! stages; each stops the load with a [`ConfigError`] if it finds a mistake:
//!
//! 1. **load**: read the file (UTF-8). [`load_files`] takes several, merged into one
//!    pipeline after parsing (`merge` module).
//! 2. **interpolate**: replace `${VAR}`, `${VAR:-default}` and `$$` in the raw text, so a
//!    variable can stand for any value, numbers included. Values placed inside TOML strings
//!    are escaped (they can never end the string early); see the `interpolate` module docs.
//!    A map of every substitution is kept so later errors point into the original text.
//! 3. **parse**: TOML syntax, then each `[sources.<id>]`, `[transforms.<id>]` and
//!    `[sinks.<id>]` is decoded by its `type` into the structs of [`schema`], rejecting
//!    unknown keys at their own line.
//! 4. **validate**: label names Loki accepts, regexes and globs that compile, options that
//!    fit together (auth, TLS, compression), positive batch and request limits.
//! 5. **graph**: unique ids, inputs that exist, no cycles, at least one source and one sink;
//!    the result is a [`Graph`] the agent wires channels from. Mistakes that are legal but
//!    probably unintended (a source no sink reads, a label that looks high-cardinality)
//!    become [`LoadedConfig::warnings`].
//!
//! Every problem names the file, line and column in its `Display`
//! (`error: /etc/logship.toml:12:9: unknown field ...`), and [`ConfigError`] implements
//! [`miette::Diagnostic`] with the source and a labelled span, so
//! `miette::Report::new(err)` renders a pointed report. When a stage finds several mistakes
//! it reports them all (the first is the main diagnostic, the rest are `related`).
//!
//! # Example
//!
//! ```
//! use logship_config::{load_str, ComponentKind};
//!
//! let text = r#"
//! [sources.app]
//! type = "file"
//! include = ["/var/log/app/*.log"]
//!
//! [transforms.parse]
//! type = "json"
//! inputs = ["app"]
//! labels = { service = "service", level = "level" }
//!
//! [sinks.loki]
//! type = "loki"
//! inputs = ["parse"]
//! endpoint = "${LOKI_URL:-http://127.0.0.1:3100}"
//! "#;
//! let env = |name: &str| (name == "LOKI_URL").then(|| "http://loki:3100".to_owned());
//! let loaded = load_str(text, "example.toml", &env).unwrap();
//!
//! let order: Vec<String> = loaded.graph.topological_order().iter().map(|c| c.id.clone()).collect();
//! assert_eq!(order, ["app", "parse", "loki"]);
//! assert_eq!(loaded.graph.outputs_of("app"), ["parse"]);
//! assert_eq!(loaded.graph.kind_of("loki"), Some(ComponentKind::Sink));
//! assert!(loaded.warnings.is_empty());
//!
//! // A typo is an error that names its place.
//! let err = load_str(&text.replace("include", "incude"), "example.toml", &env).unwrap_err();
//! assert!(err.to_string().starts_with("error: example.toml:4:1: unknown field `incude`"));
//! ```

#![warn(missing_docs)]

mod decode;
mod error;
pub mod globs;
mod graph;
mod interpolate;
mod locate;
mod merge;
mod report;
pub mod schema;
mod suggest;
pub mod units;
mod validate;
mod wording;

use std::path::Path;

pub use error::{ConfigError, Problem, ProblemKind, Problems};
pub use graph::{ComponentId, ComponentKind, Graph};
pub use schema::Config;

use crate::locate::Locator;
use crate::report::{Issue, Reporter};

/// A config that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The typed config, defaults filled in.
    pub config: Config,
    /// Who reads from whom.
    pub graph: Graph,
    /// Legal but probably unintended things, each as `file:line:column: message`, in file
    /// order. The agent logs them at start-up; `logship validate` prints them.
    pub warnings: Vec<String>,
}

/// Loads and validates the config at `path`, interpolating from the process environment.
///
/// Errors name `path` as it is displayed, with line and column.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigError> {
    load_files(&[path])
}

/// Loads several config files as one pipeline, merged in order (as Vector does with several
/// `--config`): their components are pooled, an id defined in two files is an error, and
/// settings outside `[sources]`, `[transforms]` and `[sinks]` may be set by one file only.
/// Every problem names the file it is in.
pub fn load_files<P: AsRef<Path>>(paths: &[P]) -> Result<LoadedConfig, ConfigError> {
    let mut texts = Vec::with_capacity(paths.len());
    for path in paths {
        let path = path.as_ref();
        texts.push((path.display().to_string(), read_utf8(path)?));
    }
    let files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(o, t)| (o.as_str(), t.as_str()))
        .collect();
    load_texts(&files, &|name| std::env::var(name).ok())
}

fn read_utf8(path: &Path) -> Result<String, ConfigError> {
    let read_error = |io| ConfigError::Read {
        path: path.to_owned(),
        io,
    };
    let bytes = std::fs::read(path).map_err(read_error)?;
    String::from_utf8(bytes).map_err(|_| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is not UTF-8",
        ))
    })
}

/// Loads and validates config `text`. `origin` names it in messages (a file path, usually);
/// `env` answers `${VAR}` look-ups (`None` for unset).
pub fn load_str(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    load_texts(&[(origin, text)], env)
}

/// Loads several config texts, each `(origin, text)`, as one pipeline; see [`load_files`].
pub fn load_texts(
    files: &[(&str, &str)],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let fail = |mut problems: Vec<Problem>| {
        if problems.is_empty() {
            // Every failing stage reports an issue; never fail without a reason all the same.
            let origin = files.first().map_or("config", |(o, _)| o);
            let reporter = Reporter::new(origin, "");
            problems.push(reporter.problem_original(Issue::new(
                ProblemKind::Syntax,
                0..0,
                "invalid config",
                "here",
            )));
        }
        ConfigError::Invalid(Problems::new(problems))
    };

    // Interpolate and parse every file, reporting the mistakes of all of them.
    let mut problems = Vec::new();
    let mut located = report::Files::default();
    let mut texts = Vec::with_capacity(files.len());
    for (origin, text) in files {
        let reporter = Reporter::new(origin, text);
        match interpolate::interpolate(text, env) {
            Ok(interpolated) => {
                let base = located.push(reporter, interpolated.map, interpolated.text.len());
                texts.push((base, interpolated.text));
            }
            Err(issues) => {
                problems.extend(issues.into_iter().map(|i| reporter.problem_original(i)));
            }
        }
    }
    let mut merged = toml::de::DeTable::default();
    let mut issues = Vec::new();
    for (base, text) in &texts {
        match toml::de::DeTable::parse(text) {
            Ok(doc) => merge::merge_into(
                &mut merged,
                merge::shift_table(doc.into_inner(), *base),
                &mut issues,
            ),
            Err(e) => {
                let mut issue = syntax_issue(&e, text);
                issue.span = issue.span.start + base..issue.span.end + base;
                problems.extend(located.problem(issue));
            }
        }
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let doc = toml::Spanned::new(0..located.end(), merged);

    // Every mistake is reported in one run, in file order: what did not decode, then what
    // the components that did decode get wrong; the graph is checked once every component
    // decodes (an input may name one that did not).
    let locator = Locator::new(&doc);
    let decoded = decode::decode(&doc);
    issues.extend(decoded.issues);
    let config = decoded.config;
    let checked = if issues.is_empty() {
        let findings = validate::validate(&config, &locator);
        issues = findings.issues;
        Some((findings.warnings, findings.graph))
    } else {
        issues.extend(validate::validate_components(&config, &locator));
        None
    };
    let Some((mut warnings, graph)) = checked.filter(|_| issues.is_empty()) else {
        issues.sort_by_key(|i| (i.span.start, i.span.end));
        return Err(fail(
            issues
                .into_iter()
                .filter_map(|i| located.problem(i))
                .collect(),
        ));
    };
    warnings.sort_by_key(|(span, _)| span.start);
    let warnings = warnings
        .into_iter()
        .map(|(span, message)| located.warning(span, &message))
        .collect();
    Ok(LoadedConfig {
        config,
        graph,
        warnings,
    })
}

/// A TOML syntax error as an issue; names the key of a "duplicate key".
fn syntax_issue(e: &toml::de::Error, text: &str) -> Issue {
    let span = e.span().unwrap_or(0..0);
    let mut message = e.message().trim().to_owned();
    if message.starts_with("duplicate key")
        && let Some(key) = text.get(span.clone()).filter(|k| !k.is_empty())
    {
        message = format!("duplicate key `{key}`: it is already defined in this table");
    }
    Issue::new(ProblemKind::Syntax, span, message, "here")
}
