//! The errors a config load reports: [`ConfigError`] and the located [`Problem`]s inside it.
//!
//! Every problem carries the file name, a 1-based line and column, and a byte span in the
//! ORIGINAL file text (before `${VAR}` interpolation), so both the one-line `Display`
//! (`error: /etc/logship.toml:12:9: unknown field ...`) and miette's graphical report point
//! at what the user wrote.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, Severity, SourceCode};

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    // The OS error is part of the message and deliberately not a `source`: a report that
    // prints the chain would say it twice.
    #[error("error: {}: cannot read the config file: {io}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        io: std::io::Error,
    },
    /// The file was read but is not a valid pipeline. Holds every problem found, in file
    /// order; never empty.
    #[error("{0}")]
    Invalid(Problems),
}

impl ConfigError {
    /// Every located problem, in file order (empty for [`ConfigError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid(problems) => problems.as_slice(),
        }
    }
}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            ConfigError::Read { .. } => Some(Box::new("logship::config::read")),
            ConfigError::Invalid(p) => p.code(),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid(p) => p.help(),
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid(p) => p.source_code(),
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid(p) => p.labels(),
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Invalid(p) => p.related(),
        }
    }
}

/// The problems of one failed load (never empty in practice). As a miette diagnostic the first is the main report and
/// the others are `related`; `Display` shows the first and counts the rest.
#[derive(Debug, Clone)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Wraps problems, sorted by position.
    pub(crate) fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| (p.span.start, p.span.end));
        Self(problems)
    }

    /// The problems, in file order.
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.0.first() else {
            return f.write_str("error: invalid config");
        };
        write!(f, "{first}")?;
        match self.0.len() {
            1 => Ok(()),
            2 => write!(f, " (and 1 more error)"),
            n => write!(f, " (and {} more errors)", n - 1),
        }
    }
}

impl std::error::Error for Problems {}

impl Diagnostic for Problems {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.first()?.code()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.first()?.help()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.first()?.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.0.first()?.labels()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.len() < 2 {
            return None;
        }
        Some(Box::new(self.0[1..].iter().map(|p| p as &dyn Diagnostic)))
    }
}

/// What sort of mistake a [`Problem`] is; also its miette code (`logship::config::<kind>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The text is not valid TOML.
    Syntax,
    /// A key the schema does not know (a typo, usually).
    UnknownField,
    /// A required key is absent.
    MissingField,
    /// A value of the wrong type, or not one of the allowed words.
    InvalidType,
    /// `type = "..."` names no known source, transform or sink.
    UnknownComponentType,
    /// `${VAR}` without a default, and `VAR` is not set.
    MissingEnvVar,
    /// A malformed `${...}`, or a value that cannot be placed where its `${...}` stands.
    BadInterpolation,
    /// Two components share an id (ids are unique across sources, transforms and sinks).
    DuplicateId,
    /// An id with characters outside `[A-Za-z0-9_-]`.
    InvalidId,
    /// No source, or no sink, is defined.
    MissingComponent,
    /// A sink or transform with `inputs = []`.
    EmptyInputs,
    /// An `inputs` entry that names no component.
    DanglingInput,
    /// An `inputs` entry that names a sink (sinks produce nothing to read).
    InputIsSink,
    /// The same id twice in one `inputs` list.
    DuplicateInput,
    /// Transforms that read from each other in a loop.
    Cycle,
    /// A Loki label (or structured-metadata) name that Loki would reject.
    InvalidLabelName,
    /// A regex that does not compile.
    InvalidRegex,
    /// A glob that does not compile.
    InvalidGlob,
    /// An endpoint that is not an `http://` or `https://` URL.
    InvalidUrl,
    /// Options that cannot be combined, or one that needs another.
    Conflict,
    /// A Loki sink can receive lines with more labels than its Loki accepts.
    TooManyLabels,
    /// Any other value the option does not accept (zero where a positive number is needed,
    /// an empty name, ...).
    InvalidValue,
}

impl ProblemKind {
    /// A stable snake_case name, used in the miette code.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Syntax => "syntax",
            ProblemKind::UnknownField => "unknown_field",
            ProblemKind::MissingField => "missing_field",
            ProblemKind::InvalidType => "invalid_type",
            ProblemKind::UnknownComponentType => "unknown_component_type",
            ProblemKind::MissingEnvVar => "missing_env_var",
            ProblemKind::BadInterpolation => "bad_interpolation",
            ProblemKind::DuplicateId => "duplicate_id",
            ProblemKind::InvalidId => "invalid_id",
            ProblemKind::MissingComponent => "missing_component",
            ProblemKind::EmptyInputs => "empty_inputs",
            ProblemKind::DanglingInput => "dangling_input",
            ProblemKind::InputIsSink => "input_is_sink",
            ProblemKind::DuplicateInput => "duplicate_input",
            ProblemKind::Cycle => "cycle",
            ProblemKind::InvalidLabelName => "invalid_label_name",
            ProblemKind::InvalidRegex => "invalid_regex",
            ProblemKind::InvalidGlob => "invalid_glob",
            ProblemKind::InvalidUrl => "invalid_url",
            ProblemKind::Conflict => "conflict",
            ProblemKind::TooManyLabels => "too_many_labels",
            ProblemKind::InvalidValue => "invalid_value",
        }
    }
}

/// One located mistake in a config file.
#[derive(Clone)]
pub struct Problem {
    pub(crate) kind: ProblemKind,
    pub(crate) message: String,
    pub(crate) origin: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) span: Range<usize>,
    pub(crate) label: String,
    pub(crate) secondary: Vec<(Range<usize>, String)>,
    pub(crate) help: Option<String>,
    /// The original text with secret values masked; shared by every problem of one load.
    pub(crate) source: Arc<NamedSource<Arc<str>>>,
}

impl Problem {
    /// What sort of mistake this is.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// The message, without location (`unknown field `incude`, expected one of ...`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file name (or the `origin` given to [`crate::load_str`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// 1-based line of the span's start in the original text.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in characters) of the span's start in the original text.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Byte range in the original text (before interpolation).
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// A hint on how to fix it, when there is one.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }
}

impl fmt::Debug for Problem {
    // The shared source text is left out: it is large and, although secrets are masked,
    // a Debug dump has no use for it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("kind", &self.kind)
            .field("origin", &self.origin)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("message", &self.message)
            .field("help", &self.help)
            .finish()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error: {}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(format!("logship::config::{}", self.kind.as_str())))
    }

    fn severity(&self) -> Option<Severity> {
        Some(Severity::Error)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&*self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.label.clone()),
            (self.span.start, self.span.end - self.span.start),
        );
        let others = self.secondary.iter().map(|(span, label)| {
            LabeledSpan::new_with_span(Some(label.clone()), (span.start, span.end - span.start))
        });
        Some(Box::new(std::iter::once(primary).chain(others)))
    }
}
