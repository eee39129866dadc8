//! Turns internal [`Issue`]s (a span plus words) into public [`Problem`]s and warning
//! strings: maps spans from the interpolated text back to the original file, computes line
//! and column, and masks secret values in the source text shown by miette.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use miette::NamedSource;
use regex::Regex;

use crate::error::{Problem, ProblemKind};
use crate::interpolate::SpanMap;

/// A mistake found by one stage, before it is located in the original file.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub kind: ProblemKind,
    /// Byte range; in interpolated-text coordinates unless the producer says otherwise.
    pub span: Range<usize>,
    pub message: String,
    /// Short text under the span in the graphical report.
    pub label: String,
    /// Further spans worth showing (e.g. where a duplicate id was first defined).
    pub secondary: Vec<(Range<usize>, String)>,
    pub help: Option<String>,
}

impl Issue {
    /// An issue with no secondary spans and no help.
    pub fn new(
        kind: ProblemKind,
        span: Range<usize>,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            span,
            message: message.into(),
            label: label.into(),
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary labelled span.
    pub fn with_secondary(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }
}

/// Everything needed to locate issues of one load in its original text.
pub(crate) struct Reporter {
    origin: String,
    original: Arc<str>,
    source: Arc<NamedSource<Arc<str>>>,
}

impl Reporter {
    /// `original` is the file text as read; the miette source is a masked copy of it.
    pub fn new(origin: &str, original: &str) -> Self {
        let masked: Arc<str> = Arc::from(mask_secrets(original));
        Self {
            origin: origin.to_owned(),
            original: Arc::from(original),
            source: Arc::new(NamedSource::new(origin, masked).with_language("toml")),
        }
    }

    /// Locates an issue whose spans are already in original-text coordinates.
    pub fn problem_original(&self, issue: Issue) -> Problem {
        let Issue {
            kind,
            span,
            message,
            label,
            secondary,
            help,
        } = issue;
        let span = self.clamp(span);
        let (line, column) = line_column(&self.original, span.start);
        Problem {
            kind,
            message,
            origin: self.origin.clone(),
            line,
            column,
            span,
            label,
            secondary: secondary
                .into_iter()
                .map(|(s, l)| (self.clamp(s), l))
                .collect(),
            help,
            source: Arc::clone(&self.source),
        }
    }

    /// Locates an issue whose spans refer to the interpolated text.
    pub fn problem(&self, map: &SpanMap, mut issue: Issue) -> Problem {
        issue.span = map.to_original(issue.span);
        for (span, _) in &mut issue.secondary {
            *span = map.to_original(span.clone());
        }
        self.problem_original(issue)
    }

    /// `origin:line:column` of an interpolated-text offset.
    pub fn location(&self, map: &SpanMap, offset: usize) -> String {
        let span = self.clamp(map.to_original(offset..offset));
        let (line, column) = line_column(&self.original, span.start);
        format!("{}:{line}:{column}", self.origin)
    }

    /// Formats a warning as `origin:line:column: message`.
    pub fn warning(&self, map: &SpanMap, span: Range<usize>, message: &str) -> String {
        let span = self.clamp(map.to_original(span));
        let (line, column) = line_column(&self.original, span.start);
        format!("{}:{line}:{column}: {message}", self.origin)
    }

    /// Keeps a span inside the text and on character boundaries, so miette can slice it.
    fn clamp(&self, span: Range<usize>) -> Range<usize> {
        let text = &*self.original;
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = span.end.clamp(start, text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        start..end
    }
}

/// The files of one load laid end to end in one offset space: file `i`'s interpolated text
/// starts at its `base`, so an issue found in the merged document (see [`crate::merge`])
/// finds its file by offset.
#[derive(Default)]
pub(crate) struct Files {
    files: Vec<FileText>,
    /// Where the next file starts.
    end: usize,
}

struct FileText {
    base: usize,
    reporter: Reporter,
    map: SpanMap,
}

impl Files {
    /// Adds a file whose interpolated text is `len` bytes long; returns its base offset.
    pub fn push(&mut self, reporter: Reporter, map: SpanMap, len: usize) -> usize {
        let base = self.end;
        self.files.push(FileText {
            base,
            reporter,
            map,
        });
        // One byte of gap, so a span at the very end of one file is not the next one's start.
        self.end = base + len + 1;
        base
    }

    /// One past the last offset of the last file.
    pub fn end(&self) -> usize {
        self.end
    }

    /// The file an offset falls in (the first for an offset before any).
    fn file(&self, offset: usize) -> Option<&FileText> {
        let after = self.files.partition_point(|f| f.base <= offset);
        self.files.get(after.saturating_sub(1))
    }

    /// Locates an issue whose spans are offsets of the merged document. A secondary span in
    /// another file cannot be drawn in this file's snippet; its location goes into the help.
    pub fn problem(&self, mut issue: Issue) -> Option<Problem> {
        let file = self.file(issue.span.start)?;
        let local = |span: &Range<usize>| {
            span.start.saturating_sub(file.base)..span.end.saturating_sub(file.base)
        };
        issue.span = local(&issue.span);
        let mut elsewhere = Vec::new();
        let mut secondary = Vec::new();
        for (span, label) in std::mem::take(&mut issue.secondary) {
            match self.file(span.start) {
                Some(other) if other.base != file.base => {
                    let at = span.start - other.base;
                    elsewhere.push(format!(
                        "{label}: {}",
                        other.reporter.location(&other.map, at)
                    ));
                }
                _ => secondary.push((local(&span), label)),
            }
        }
        issue.secondary = secondary;
        if !elsewhere.is_empty() {
            let mut help = elsewhere.join("; ");
            if let Some(more) = issue.help.take() {
                help = format!("{help}; {more}");
            }
            issue.help = Some(help);
        }
        Some(file.reporter.problem(&file.map, issue))
    }

    /// Formats a warning at a merged-document span as `origin:line:column: message`.
    pub fn warning(&self, span: Range<usize>, message: &str) -> String {
        match self.file(span.start) {
            Some(file) => {
                let local = span.start - file.base..span.end.saturating_sub(file.base);
                file.reporter.warning(&file.map, local, message)
            }
            None => message.to_owned(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Replaces the text of `password = "..."` and `token = "..."` values with `*`, byte for
/// byte, so a report that quotes nearby lines never shows a secret written inline. Offsets
/// stay valid because the length in bytes is unchanged.
fn mask_secrets(text: &str) -> String {
    static SECRET: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(
            r#"(?m)(?:^|[\s{,.])"?(?:password|token)"?\s*=\s*(?:"((?:[^"\\\n]|\\.)*)"|'([^'\n]*)')"#,
        )
        .ok()
    });
    let Some(re) = SECRET.as_ref() else {
        return text.to_owned();
    };
    let mut bytes = text.as_bytes().to_vec();
    for caps in re.captures_iter(text) {
        for group in [caps.get(1), caps.get(2)].into_iter().flatten() {
            for b in &mut bytes[group.range()] {
                *b = b'*';
            }
        }
    }
    // Whole characters were replaced by as many ASCII bytes, so this is still UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_counts_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 4), (1, 5));
        assert_eq!(line_column(text, 6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
    }

    #[test]
    fn secrets_are_masked_without_moving_offsets() {
        let text = "auth = { user = \"u\", password = \"hunter2\" }\n[x.auth]\ntoken = 'abc'\n";
        let masked = mask_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("hunter2"));
        assert!(!masked.contains("abc"));
        assert!(masked.contains("user = \"u\""));
        assert!(masked.contains("password = \"*******\""));
    }
}
