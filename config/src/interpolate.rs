//! `${VAR}` interpolation of the raw file text, before TOML parsing.
//!
//! Substituting before parsing is what lets a variable stand for any value, numbers included
//! (`max_bytes = ${MAX}`). To keep a value from changing the TOML around it, the scanner
//! tracks whether each `${...}` sits inside a string, and:
//!
//! - in a `"basic"` or `"""multi-line basic"""` string, the value is escaped (`"`, `\` and
//!   control characters), so it is always exactly the string's content;
//! - in a `'literal'` or `'''multi-line literal'''` string, where TOML has no escapes, a value
//!   that cannot be written there (a `'`, a control character) is an error;
//! - outside strings (`key = ${VAR}`), the value is inserted verbatim, as TOML.
//!
//! Syntax: `${NAME}`; `${NAME:-default}` (the default when `NAME` is unset or empty, as in a
//! shell; the default may itself contain `${...}`, and is taken literally, not as TOML);
//! `$$` is a literal `$`. Names match `[A-Za-z_][A-Za-z0-9_]*`. A `$` followed by anything
//! else is left alone. Comments are not interpolated, so a comment may mention `${VAR}`.
//!
//! Every substitution is recorded in a [`SpanMap`], so a span in the interpolated text (a
//! TOML error, a validation finding) maps back to the original text.

use std::ops::Range;

use crate::error::ProblemKind;
use crate::report::Issue;

/// How deep `${A:-${B:-...}}` defaults may nest; deeper is surely a mistake.
const MAX_DEPTH: usize = 8;

/// The interpolated text and the map back to the original.
#[derive(Debug)]
pub(crate) struct Interpolated {
    pub text: String,
    pub map: SpanMap,
}

/// One replaced piece: `orig` in the original text became `out` in the interpolated text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subst {
    orig: Range<usize>,
    out: Range<usize>,
}

/// Maps byte offsets of the interpolated text back to the original text. Text outside a
/// substitution maps one to one; a span touching a substitution widens to the whole
/// `${...}` that produced it.
#[derive(Debug, Default, Clone)]
pub(crate) struct SpanMap {
    /// Sorted by position, non-overlapping.
    subs: Vec<Subst>,
}

impl SpanMap {
    /// The original span of an interpolated-text span.
    pub fn to_original(&self, span: Range<usize>) -> Range<usize> {
        let start = self.start_to_original(span.start);
        let end = self.end_to_original(span.end.max(span.start));
        start..end.max(start)
    }

    fn start_to_original(&self, o: usize) -> usize {
        // Substitutions wholly before `o` (an empty one at `o` counts as "at", not "before").
        let idx = self
            .subs
            .partition_point(|s| s.out.start < o && s.out.end <= o);
        if let Some(s) = self.subs.get(idx)
            && s.out.start <= o
        {
            return s.orig.start;
        }
        self.shift_after(idx, o)
    }

    fn end_to_original(&self, o: usize) -> usize {
        // Substitutions that begin before `o`, plus empty ones exactly at `o`.
        let idx = self
            .subs
            .partition_point(|s| s.out.start < o || (s.out.start == o && s.out.end == o));
        match idx.checked_sub(1).map(|i| &self.subs[i]) {
            Some(s) if o < s.out.end => s.orig.end,
            _ => self.shift_after(idx, o),
        }
    }

    /// Maps `o`, which lies after the first `idx` substitutions and inside none.
    fn shift_after(&self, idx: usize, o: usize) -> usize {
        match idx.checked_sub(1).map(|i| &self.subs[i]) {
            Some(s) => o - s.out.end + s.orig.end,
            None => o,
        }
    }
}

/// Where the scanner is in the TOML text; decides how a value is placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Keys, numbers, punctuation: the value goes in verbatim.
    Bare,
    /// After `#`: nothing is interpolated.
    Comment,
    /// `"..."`.
    Basic,
    /// `'...'`.
    Literal,
    /// `"""..."""`.
    MultiBasic,
    /// `'''...'''`; the offset is where the string's body starts.
    MultiLiteral(usize),
}

/// A parsed `${NAME}` or `${NAME:-default}` starting at some `$`.
struct Expr {
    /// Byte offset just past the closing `}`.
    end: usize,
    name: Range<usize>,
    default: Option<Range<usize>>,
}

/// Interpolates a whole file. On failure returns every problem found, with spans in the
/// original text.
pub(crate) fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<Issue>> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut subs = Vec::new();
    let mut issues = Vec::new();
    let mut ctx = Context::Bare;
    let mut copied = 0; // text[copied..i] is still to be copied to `out`
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if ctx == Context::Comment {
            if b == b'\n' {
                ctx = Context::Bare;
            }
            i += 1;
            continue;
        }
        if b == b'$' {
            match bytes.get(i + 1) {
                Some(b'$') => {
                    out.push_str(&text[copied..i]);
                    let at = out.len();
                    out.push('$');
                    subs.push(Subst {
                        orig: i..i + 2,
                        out: at..at + 1,
                    });
                    i += 2;
                    copied = i;
                    continue;
                }
                Some(b'{') => {
                    out.push_str(&text[copied..i]);
                    let end = match parse_expr(text, i) {
                        Ok(expr) => {
                            let at = out.len();
                            if let Some(value) = resolve(text, &expr, i, env, 0, &mut issues) {
                                match place(&value, ctx, i) {
                                    Ok(()) => push_placed(&mut out, &value, ctx),
                                    Err(why) => issues.push(cannot_place(text, &expr, i, why)),
                                }
                            }
                            subs.push(Subst {
                                orig: i..expr.end,
                                out: at..out.len(),
                            });
                            expr.end
                        }
                        Err((issue, resume)) => {
                            issues.push(*issue);
                            resume
                        }
                    };
                    i = end;
                    copied = i;
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            }
        }
        i = step(bytes, i, &mut ctx);
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    out.push_str(&text[copied..]);
    Ok(Interpolated {
        text: out,
        map: SpanMap { subs },
    })
}

/// Advances the TOML lexer state over the byte at `i` (not a `$`); returns the next index.
fn step(bytes: &[u8], i: usize, ctx: &mut Context) -> usize {
    let b = bytes[i];
    let run = |q: u8| bytes[i..].iter().take_while(|&&c| c == q).count();
    match *ctx {
        Context::Comment => {
            if b == b'\n' {
                *ctx = Context::Bare;
            }
            i + 1
        }
        Context::Bare => match b {
            b'#' => {
                *ctx = Context::Comment;
                i + 1
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                *ctx = Context::MultiBasic;
                i + 3
            }
            b'"' => {
                *ctx = Context::Basic;
                i + 1
            }
            b'\'' if bytes[i..].starts_with(b"'''") => {
                *ctx = Context::MultiLiteral(i + 3);
                i + 3
            }
            b'\'' => {
                *ctx = Context::Literal;
                i + 1
            }
            _ => i + 1,
        },
        // An escape also hides a following `$`: `"\${X}"` is not interpolated (and TOML
        // rejects `\$`), so a value can never complete an escape sequence.
        Context::Basic | Context::MultiBasic if b == b'\\' => i + 2,
        Context::Basic => {
            if b == b'"' || b == b'\n' {
                *ctx = Context::Bare;
            }
            i + 1
        }
        Context::Literal => {
            if b == b'\'' || b == b'\n' {
                *ctx = Context::Bare;
            }
            i + 1
        }
        Context::MultiBasic if b == b'"' => {
            let n = run(b'"');
            if n >= 3 {
                *ctx = Context::Bare;
            }
            i + n
        }
        Context::MultiLiteral(_) if b == b'\'' => {
            let n = run(b'\'');
            if n >= 3 {
                *ctx = Context::Bare;
            }
            i + n
        }
        Context::MultiBasic | Context::MultiLiteral(_) => i + 1,
    }
}

/// Parses the `${...}` at `start`. On error, returns the issue and where to resume.
fn parse_expr(text: &str, start: usize) -> Result<Expr, (Box<Issue>, usize)> {
    let bytes = text.as_bytes();
    let name_start = start + 2;
    let mut i = name_start;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    let name = name_start..i;
    let unclosed = || {
        (
            Box::new(
                Issue::new(
                    ProblemKind::BadInterpolation,
                    start..start + 2,
                    "`${` is not closed by `}`",
                    "opened here",
                )
                .with_help("write `$$` for a literal `$`"),
            ),
            bytes.len(),
        )
    };
    if name.is_empty() || bytes[name_start].is_ascii_digit() {
        // Cover up to a `}` on the same line, if any, and resume after it.
        let line = text[start..].find('\n').map_or(text.len(), |e| start + e);
        let end = text[start..line]
            .find('}')
            .map_or(i.max(start + 2), |e| start + e + 1);
        return Err((
            Box::new(
                Issue::new(
                    ProblemKind::BadInterpolation,
                    start..end,
                    "invalid variable name: names match `[A-Za-z_][A-Za-z0-9_]*`",
                    "here",
                )
                .with_help("write `$$` for a literal `$`"),
            ),
            end,
        ));
    }
    match bytes.get(i) {
        None => Err(unclosed()),
        Some(b'}') => Ok(Expr {
            end: i + 1,
            name,
            default: None,
        }),
        Some(b':') if bytes.get(i + 1) == Some(&b'-') => {
            let default_start = i + 2;
            let mut depth = 0usize;
            let mut j = default_start;
            while j < bytes.len() {
                match bytes[j] {
                    b'$' if matches!(bytes.get(j + 1), Some(b'$') | Some(b'{')) => {
                        if bytes[j + 1] == b'{' {
                            depth += 1;
                        }
                        j += 2;
                        continue;
                    }
                    b'{' => depth += 1,
                    b'}' if depth == 0 => {
                        return Ok(Expr {
                            end: j + 1,
                            name,
                            default: Some(default_start..j),
                        });
                    }
                    b'}' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            Err(unclosed())
        }
        Some(_) => {
            let width = text[i..].chars().next().map_or(1, char::len_utf8);
            Err((
                Box::new(
                    Issue::new(
                        ProblemKind::BadInterpolation,
                        i..i + width,
                        "expected `}` or `:-` after the variable name",
                        "unexpected character",
                    )
                    .with_help("write `${NAME}` or `${NAME:-default}`; `$$` is a literal `$`"),
                ),
                i + width,
            ))
        }
    }
}

/// The value of a parsed expression (the variable, or its expanded default). Pushes an
/// issue and returns `None` when there is none.
fn resolve(
    text: &str,
    expr: &Expr,
    start: usize,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let name = &text[expr.name.clone()];
    match (env(name), &expr.default) {
        (Some(value), None) => Some(value),
        (Some(value), Some(_)) if !value.is_empty() => Some(value),
        (_, Some(default)) => expand_raw(text, default.clone(), env, depth + 1, issues),
        (None, None) => {
            issues.push(
                Issue::new(
                    ProblemKind::MissingEnvVar,
                    start..expr.end,
                    format!("environment variable `{name}` is not set"),
                    "not set",
                )
                .with_help(format!(
                    "set `{name}`, or give a default: `${{{name}:-value}}`"
                )),
            );
            None
        }
    }
}

/// Expands `text[range]` with no TOML awareness (a default value): `$$` and `${...}` only.
fn expand_raw(
    text: &str,
    range: Range<usize>,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    if depth > MAX_DEPTH {
        issues.push(Issue::new(
            ProblemKind::BadInterpolation,
            range,
            format!("defaults nest more than {MAX_DEPTH} levels deep"),
            "too deep",
        ));
        return None;
    }
    let end = range.end;
    let mut value = String::new();
    let mut ok = true;
    let mut copied = range.start;
    let mut i = range.start;
    while let Some(pos) = text[i..end].find('$').map(|p| i + p) {
        match text.as_bytes().get(pos + 1) {
            Some(b'$') if pos + 1 < end => {
                value.push_str(&text[copied..pos]);
                value.push('$');
                i = pos + 2;
                copied = i;
            }
            Some(b'{') if pos + 1 < end => {
                value.push_str(&text[copied..pos]);
                // The outer scan balanced the braces, so a nested expression ends by `end`.
                match parse_expr(&text[..end], pos) {
                    Ok(expr) => {
                        match resolve(text, &expr, pos, env, depth, issues) {
                            Some(v) => value.push_str(&v),
                            None => ok = false,
                        }
                        i = expr.end;
                    }
                    Err((issue, resume)) => {
                        issues.push(*issue);
                        ok = false;
                        i = resume;
                    }
                }
                copied = i;
            }
            _ => i = pos + 1,
        }
    }
    value.push_str(&text[copied.min(end)..end]);
    ok.then_some(value)
}

/// Why a value cannot stand in its context; `Ok` when it can (after escaping).
fn place(value: &str, ctx: Context, at: usize) -> Result<(), &'static str> {
    let bad_control = |c: char, allow_newline: bool| {
        (c.is_ascii_control() && c != '\t') && !(allow_newline && c == '\n')
    };
    match ctx {
        Context::Bare | Context::Comment | Context::Basic | Context::MultiBasic => Ok(()),
        Context::Literal => {
            if value.contains('\'') {
                Err("it contains a `'`, which cannot appear in a 'literal string'")
            } else if value.chars().any(|c| bad_control(c, false)) {
                Err("it contains a control character, which cannot appear in a 'literal string'")
            } else {
                Ok(())
            }
        }
        Context::MultiLiteral(body_start) => {
            if value.contains('\'') {
                Err("it contains a `'`, which cannot appear in a '''literal string'''")
            } else if value.chars().any(|c| bad_control(c, true)) {
                Err(
                    "it contains a control character, which cannot appear in a '''literal string'''",
                )
            } else if at == body_start && value.starts_with('\n') {
                Err("it starts with a newline, which TOML drops right after `'''`")
            } else {
                Ok(())
            }
        }
    }
}

fn cannot_place(text: &str, expr: &Expr, start: usize, why: &str) -> Issue {
    // Never quote the value itself: it may be a secret.
    let name = &text[expr.name.clone()];
    Issue::new(
        ProblemKind::BadInterpolation,
        start..expr.end,
        format!("the value of `{name}` cannot be placed here: {why}"),
        "substituted here",
    )
    .with_help("use a \"basic string\", where the value is escaped for you")
}

/// Appends a value that [`place`] accepted, escaped for its context.
fn push_placed(out: &mut String, value: &str, ctx: Context) {
    match ctx {
        Context::Basic | Context::MultiBasic => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c.is_ascii_control() => {
                        out.push_str(&format!("\\u{:04X}", u32::from(c)));
                    }
                    c => out.push(c),
                }
            }
        }
        Context::Bare | Context::Comment | Context::Literal | Context::MultiLiteral(_) => {
            out.push_str(value)
        }
    }
}

#[cfg(test)]
mod tests;
