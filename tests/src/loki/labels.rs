//! The stream-label parser Loki applies to `StreamAdapter.labels`: `syntax.ParseLabels`, which
//! is Prometheus' `parser.ParseMetric` followed by dropping empty values and sorting.
//!
//! Accepted text: optional whitespace, an optional metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`,
//! stored as `__name__`), then `{ name = "value", ... }` with an optional trailing comma, or
//! nothing. Label names follow Prometheus' rule `[a-zA-Z_][a-zA-Z0-9_]*`. Values are Go string
//! literals (`"..."`, `'...'` or raw `` `...` ``) unquoted like `strconv.Unquote`. Only `=` is
//! allowed (a selector's `!=`, `=~`, `!~` is a parse error).

use std::fmt;

/// Why a label string was rejected; the text mirrors Prometheus' parse errors loosely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse error at char {pos}: {msg}")]
pub struct LabelsError {
    /// 1-based character position, as Prometheus reports it.
    pub pos: usize,
    /// What was wrong.
    pub msg: String,
}

/// A parsed label set: sorted by name (stable, so duplicates stay and are caught by
/// validation), empty values removed.
pub type LabelPairs = Vec<(String, String)>;

/// Parses `{name="value", ...}` as Loki's `syntax.ParseLabels` does.
pub fn parse_labels(input: &str) -> Result<LabelPairs, LabelsError> {
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    p.skip_ws();
    if p.peek()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
    {
        let name = p.ident(true);
        out.push(("__name__".to_owned(), name));
        p.skip_ws();
    }
    match p.peek() {
        None => {}
        Some(b'{') => {
            p.i += 1;
            p.label_set(&mut out)?;
        }
        Some(_) => return Err(p.err("unexpected character, expected \"{\"")),
    }
    p.skip_ws();
    if p.peek().is_some() {
        return Err(p.err("unexpected content after the label set"));
    }
    out.retain(|(_, v)| !v.is_empty());
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// True when `name` is a valid Prometheus label name.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
        _ => return false,
    }
    bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Formats labels the way Prometheus' `labels.Labels.String()` does: `{a="b", c="d"}`, values
/// quoted like Go's `strconv.Quote`. Used in Loki-style error bodies.
pub fn format_labels(labels: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&GoQuoted(v).to_string());
    }
    out.push('}');
    out
}

/// A string printed as a Go double-quoted literal.
pub struct GoQuoted<'a>(pub &'a str);

impl fmt::Display for GoQuoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\u{7}' => f.write_str("\\a")?,
                '\u{8}' => f.write_str("\\b")?,
                '\u{c}' => f.write_str("\\f")?,
                '\u{b}' => f.write_str("\\v")?,
                c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, msg: &str) -> LabelsError {
        LabelsError {
            pos: self.i + 1,
            msg: msg.to_owned(),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// An identifier starting at the current (already checked) byte. Colons only in metric
    /// names.
    fn ident(&mut self, allow_colon: bool) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || (allow_colon && c == b':') {
                self.i += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// After `{`: items separated by commas, optional trailing comma, then `}`.
    fn label_set(&mut self, out: &mut LabelPairs) -> Result<(), LabelsError> {
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
                None => return Err(self.err("unexpected end of input inside braces")),
                Some(_) => return Err(self.err("unexpected character inside braces")),
            }
            let name = self.ident(false);
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return Err(self.err("unexpected character, expected \"=\""));
            }
            self.i += 1;
            if matches!(self.peek(), Some(b'~' | b'=')) {
                return Err(self.err("unexpected label matching operator in label set"));
            }
            self.skip_ws();
            let value = self.string()?;
            out.push((name, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                None => return Err(self.err("unexpected end of input inside braces")),
                Some(_) => return Err(self.err("unexpected character, expected \",\" or \"}\"")),
            }
        }
    }

    /// A Go string literal, unquoted.
    fn string(&mut self) -> Result<String, LabelsError> {
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.err("unexpected character, expected string")),
        };
        self.i += 1;
        let mut buf = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated quoted string"));
            };
            if c == quote {
                self.i += 1;
                break;
            }
            if quote == b'`' {
                // Raw strings take every byte, newlines included, and drop carriage returns.
                if c != b'\r' {
                    buf.push(c);
                }
                self.i += 1;
                continue;
            }
            match c {
                b'\n' => return Err(self.err("unterminated quoted string")),
                b'\\' => {
                    self.i += 1;
                    self.escape(quote, &mut buf)?;
                }
                _ => {
                    buf.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(buf).map_err(|_| self.err("invalid UTF-8 in string"))
    }

    /// One escape after a backslash, as `strconv.UnquoteChar` reads it.
    fn escape(&mut self, quote: u8, buf: &mut Vec<u8>) -> Result<(), LabelsError> {
        let Some(c) = self.peek() else {
            return Err(self.err("escape sequence not terminated"));
        };
        self.i += 1;
        let simple = match c {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'\'' | b'"' if c == quote => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            buf.push(b);
            return Ok(());
        }
        match c {
            b'x' => {
                let v = self.hex(2)?;
                buf.push(v as u8);
            }
            b'u' | b'U' => {
                let v = self.hex(if c == b'u' { 4 } else { 8 })?;
                let ch = char::from_u32(v).ok_or_else(|| self.err("invalid Unicode code point"))?;
                let mut tmp = [0u8; 4];
                buf.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.i += 1;
                        }
                        _ => return Err(self.err("invalid octal escape")),
                    }
                }
                if v > 255 {
                    return Err(self.err("octal escape value > 255"));
                }
                buf.push(v as u8);
            }
            _ => return Err(self.err("unknown escape sequence")),
        }
        Ok(())
    }

    fn hex(&mut self, n: usize) -> Result<u32, LabelsError> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|c| (c as char).to_digit(16))
                .ok_or_else(|| self.err("invalid hex escape"))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> LabelPairs {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_plain_label_sets() {
        assert_eq!(
            parse_labels(r#"{job="app", env="dev"}"#).unwrap(),
            pairs(&[("env", "dev"), ("job", "app")])
        );
        assert_eq!(
            parse_labels(" { a = 'x' , b=`y`, } ").unwrap(),
            pairs(&[("a", "x"), ("b", "y")])
        );
        assert_eq!(parse_labels("{}").unwrap(), pairs(&[]));
        assert_eq!(parse_labels("").unwrap(), pairs(&[]));
        assert_eq!(
            parse_labels(r#"up:rate{a="1"}"#).unwrap(),
            pairs(&[("__name__", "up:rate"), ("a", "1")])
        );
    }

    #[test]
    fn drops_empty_values_and_keeps_duplicates_for_validation() {
        assert_eq!(
            parse_labels(r#"{a="", b="1", b="2"}"#).unwrap(),
            pairs(&[("b", "1"), ("b", "2")])
        );
    }

    #[test]
    fn unquotes_go_escapes() {
        assert_eq!(
            parse_labels(r#"{a="q\"b\\s\n\t\x41\u00e9\101\U0001F600"}"#).unwrap(),
            pairs(&[("a", "q\"b\\s\n\tAé\u{41}\u{1F600}")])
        );
        assert_eq!(
            parse_labels(r"{a='it\'s'}").unwrap(),
            pairs(&[("a", "it's")])
        );
        assert_eq!(
            parse_labels(r#"{a="\xc3\xa9"}"#).unwrap(),
            pairs(&[("a", "é")])
        );
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        for bad in [
            r#"{a="b""#,
            r#"{a="b" c="d"}"#,
            r#"{a!="b"}"#,
            r#"{a=~"b"}"#,
            r#"{a=b}"#,
            r#"{1a="b"}"#,
            r#"{a.b="c"}"#,
            r#"{"a"="b"}"#,
            r#"{a:b="c"}"#,
            r#"{a="b"} extra"#,
            r#"{a="\'"}"#,
            r#"{a='\"'}"#,
            r#"{a="\q"}"#,
            r#"{a="\x4"}"#,
            r#"{a="\xff"}"#,
            r#"{a="\400"}"#,
            "{a=\"line\nbreak\"}",
            "a b",
            "{,}",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn label_name_rule() {
        assert!(is_valid_label_name("_a1"));
        assert!(is_valid_label_name("service_name"));
        assert!(!is_valid_label_name("1a"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }

    #[test]
    fn format_round_trips_through_parse() {
        let labels = pairs(&[("a", "x\"y\\z\n"), ("b", "é\u{1}")]);
        let text = format_labels(&labels);
        assert_eq!(text, "{a=\"x\\\"y\\\\z\\n\", b=\"é\\x01\"}");
        assert_eq!(parse_labels(&text).unwrap(), labels);
    }
}
