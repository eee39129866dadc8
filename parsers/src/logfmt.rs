//! Reading `key=value` pairs from logfmt lines.
//!
//! logfmt (`level=info msg="order created" took=12ms`) is the second most common structured
//! log format after JSON. [`LogfmtPairs`] iterates over a line's pairs, borrowing keys and
//! values from it; [`LogfmtValue::decode`] unescapes a quoted value only when it has escapes.
//!
//! The reader is lenient, because a line that is not quite logfmt must still ship: it never
//! fails and never panics. Rules:
//!
//! * Pairs are separated by whitespace (any byte up to and including space); extra
//!   whitespace is skipped.
//! * A key is a run of bytes other than whitespace and `=`. A key without `=` has an empty
//!   value; a `=` with no key before it (`=x`) is skipped, value and all.
//! * A value is bare (up to the next whitespace; it may contain `=` and `"`) or double-quoted.
//!   Quoted values end at the first unescaped `"`, or at the end of the line when unterminated.
//! * Escapes in quoted values: `\"`, `\\`, `\/`, `\n`, `\r`, `\t`, `\b`, `\f` and `\uXXXX`
//!   (with surrogate pairs). An unknown escape is kept as written; invalid UTF-8 decodes to
//!   U+FFFD.
//! * Duplicate keys are all yielded; [`extract`] keeps the last.

use std::borrow::Cow;
use std::ops::Range;

use memchr::memchr2;

/// A value of a logfmt pair, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogfmtValue<'a> {
    raw: &'a [u8],
    offset: usize,
    quoted: bool,
    has_escapes: bool,
}

impl<'a> LogfmtValue<'a> {
    /// The value as written: for a quoted value, the text between the quotes, not unescaped.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the value was double-quoted.
    #[inline]
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// Whether the value is quoted and contains a backslash escape.
    #[inline]
    pub fn has_escapes(&self) -> bool {
        self.has_escapes
    }

    /// The byte range of [`raw`](Self::raw) in the line, for `Bytes::slice`.
    #[inline]
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.raw.len()
    }

    /// The value as text: borrowed when there is nothing to unescape and it is valid UTF-8.
    pub fn decode(&self) -> Cow<'a, str> {
        if !self.has_escapes {
            return String::from_utf8_lossy(self.raw);
        }
        let mut out = Vec::with_capacity(self.raw.len());
        let raw = self.raw;
        let mut i = 0;
        while i < raw.len() {
            let Some(bs) = memchr::memchr(b'\\', &raw[i..]).map(|p| i + p) else {
                out.extend_from_slice(&raw[i..]);
                break;
            };
            out.extend_from_slice(&raw[i..bs]);
            let simple = match raw.get(bs + 1) {
                Some(b'"') => Some(b'"'),
                Some(b'\\') => Some(b'\\'),
                Some(b'/') => Some(b'/'),
                Some(b'n') => Some(b'\n'),
                Some(b'r') => Some(b'\r'),
                Some(b't') => Some(b'\t'),
                Some(b'b') => Some(0x08),
                Some(b'f') => Some(0x0c),
                _ => None,
            };
            if let Some(c) = simple {
                out.push(c);
                i = bs + 2;
            } else if let Some((c, next)) = decode_u(raw, bs) {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                i = next;
            } else {
                // Unknown escape, or a backslash at the very end: keep it as written.
                out.push(b'\\');
                i = bs + 1;
            }
        }
        Cow::Owned(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |v, &c| Some(v * 16 + char::from(c).to_digit(16)?))
}

/// Decodes `\uXXXX` (with a following low surrogate, if any) at `raw[bs]`.
fn decode_u(raw: &[u8], bs: usize) -> Option<(char, usize)> {
    if raw.get(bs + 1) != Some(&b'u') {
        return None;
    }
    let hi = hex4(raw, bs + 2)?;
    if (0xD800..=0xDBFF).contains(&hi)
        && raw.get(bs + 6..bs + 8) == Some(b"\\u")
        && let Some(lo @ 0xDC00..=0xDFFF) = hex4(raw, bs + 8)
    {
        let c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?;
        return Some((c, bs + 12));
    }
    Some((
        char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER),
        bs + 6,
    ))
}

/// Iterator over the `(key, value)` pairs of a logfmt line.
///
/// ```
/// use logship_parsers::logfmt::LogfmtPairs;
///
/// let line = br#"level=info msg="order \"42\" created" debug"#;
/// let pairs: Vec<_> = LogfmtPairs::new(line)
///     .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.decode().into_owned()))
///     .collect();
/// assert_eq!(pairs, [
///     ("level".to_owned(), "info".to_owned()),
///     ("msg".to_owned(), "order \"42\" created".to_owned()),
///     ("debug".to_owned(), String::new()),
/// ]);
/// ```
#[derive(Debug, Clone)]
pub struct LogfmtPairs<'a> {
    line: &'a [u8],
    pos: usize,
}

impl<'a> LogfmtPairs<'a> {
    /// Iterates over the pairs of `line`.
    pub fn new(line: &'a [u8]) -> LogfmtPairs<'a> {
        LogfmtPairs { line, pos: 0 }
    }

    /// Reads a quoted value whose opening quote is at `self.pos - 1`.
    fn quoted(&mut self) -> LogfmtValue<'a> {
        let b = self.line;
        let start = self.pos;
        let mut i = start;
        let mut has_escapes = false;
        let end = loop {
            match memchr2(b'"', b'\\', &b[i..]).map(|p| i + p) {
                Some(q) if b[q] == b'"' => {
                    self.pos = q + 1;
                    break q;
                }
                Some(bs) => {
                    has_escapes = true;
                    i = (bs + 2).min(b.len());
                }
                None => {
                    self.pos = b.len();
                    break b.len();
                }
            }
        };
        LogfmtValue {
            raw: &b[start..end],
            offset: start,
            quoted: true,
            has_escapes,
        }
    }
}

impl<'a> Iterator for LogfmtPairs<'a> {
    type Item = (&'a [u8], LogfmtValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.line;
        loop {
            while self.pos < b.len() && b[self.pos] <= b' ' {
                self.pos += 1;
            }
            if self.pos >= b.len() {
                return None;
            }
            let key_start = self.pos;
            while self.pos < b.len() && b[self.pos] > b' ' && b[self.pos] != b'=' {
                self.pos += 1;
            }
            let key = &b[key_start..self.pos];
            let value = if b.get(self.pos) == Some(&b'=') {
                self.pos += 1;
                if b.get(self.pos) == Some(&b'"') {
                    self.pos += 1;
                    self.quoted()
                } else {
                    let start = self.pos;
                    while self.pos < b.len() && b[self.pos] > b' ' {
                        self.pos += 1;
                    }
                    LogfmtValue {
                        raw: &b[start..self.pos],
                        offset: start,
                        quoted: false,
                        has_escapes: false,
                    }
                }
            } else {
                LogfmtValue {
                    raw: &b[self.pos..self.pos],
                    offset: self.pos,
                    quoted: false,
                    has_escapes: false,
                }
            };
            if !key.is_empty() {
                return Some((key, value));
            }
        }
    }
}

/// Fills `out[i]` with the value of `keys[i]` in `line` (the last one if repeated; `None` if
/// absent). Slots beyond `out.len()` are not written.
///
/// ```
/// use logship_parsers::logfmt::extract;
///
/// let mut out = [None; 2];
/// extract(b"ts=1 level=warn msg=hi", &[b"level", b"trace_id"], &mut out);
/// assert_eq!(out[0].unwrap().raw(), b"warn");
/// assert!(out[1].is_none());
/// ```
pub fn extract<'a>(line: &'a [u8], keys: &[&[u8]], out: &mut [Option<LogfmtValue<'a>>]) {
    out.fill(None);
    for (key, value) in LogfmtPairs::new(line) {
        for (i, k) in keys.iter().enumerate() {
            if *k == key
                && let Some(slot) = out.get_mut(i)
            {
                *slot = Some(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(line: &str) -> Vec<(String, String)> {
        LogfmtPairs::new(line.as_bytes())
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    v.decode().into_owned(),
                )
            })
            .collect()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn basic_pairs() {
        assert_eq!(
            pairs("a=1 b=two c"),
            [p("a", "1"), p("b", "two"), p("c", "")]
        );
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert!(pairs("").is_empty());
        assert!(pairs("  \t \r\n").is_empty());
    }

    #[test]
    fn extra_spaces_and_tabs() {
        assert_eq!(
            pairs("  a=1\t\tb=2   c=  d=\"\"  "),
            [p("a", "1"), p("b", "2"), p("c", ""), p("d", "")]
        );
    }

    #[test]
    fn quoted_values_and_escapes() {
        assert_eq!(
            pairs(
                r#"msg="hello world" q="say \"hi\"" path="C:\\dir" nl="a\nb" u="caf\u00e9 \ud83d\ude00""#
            ),
            [
                p("msg", "hello world"),
                p("q", "say \"hi\""),
                p("path", "C:\\dir"),
                p("nl", "a\nb"),
                p("u", "café 😀"),
            ]
        );
    }

    #[test]
    fn unknown_escapes_and_trailing_backslash_are_kept() {
        assert_eq!(pairs(r#"a="x\qy""#), [p("a", r"x\qy")]);
        assert_eq!(pairs(r#"a="x\"#), [p("a", "x\\")]);
        assert_eq!(pairs(r#"a="\u12""#), [p("a", r"\u12")]);
        assert_eq!(pairs(r#"a="\ud800""#), [p("a", "\u{FFFD}")]);
    }

    #[test]
    fn unterminated_quote_runs_to_end() {
        assert_eq!(pairs(r#"a="open b=2"#), [p("a", "open b=2")]);
    }

    #[test]
    fn bare_values_keep_equals_and_quotes() {
        assert_eq!(
            pairs(r#"url=a?b=c x=y"z"#),
            [p("url", "a?b=c"), p("x", "y\"z")]
        );
    }

    #[test]
    fn keyless_values_are_skipped() {
        assert_eq!(pairs("=x a=1 = b"), [p("a", "1"), p("b", "")]);
        assert_eq!(pairs(r#"="quoted value" a=1"#), [p("a", "1")]);
    }

    #[test]
    fn adjacent_quoted_value_and_key() {
        assert_eq!(pairs(r#"a="x"b=1"#), [p("a", "x"), p("b", "1")]);
    }

    #[test]
    fn unicode_and_invalid_utf8() {
        assert_eq!(pairs("ключ=значение"), [p("ключ", "значение")]);
        let line = b"k=\xff\xfe";
        let (_, v) = LogfmtPairs::new(line).next().unwrap();
        assert_eq!(v.decode(), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn borrowing_and_ranges() {
        let line = br#"level=info msg="order created""#;
        let (_, v) = LogfmtPairs::new(line).nth(1).unwrap();
        assert!(v.is_quoted());
        assert!(!v.has_escapes());
        assert!(matches!(v.decode(), Cow::Borrowed("order created")));
        assert_eq!(&line[v.range()], b"order created");
    }

    #[test]
    fn extract_keeps_last_duplicate() {
        let mut out = [None; 3];
        extract(
            b"level=info level=warn msg=x",
            &[b"level", b"msg", b"nope"],
            &mut out,
        );
        assert_eq!(out[0].unwrap().raw(), b"warn");
        assert_eq!(out[1].unwrap().raw(), b"x");
        assert_eq!(out[2], None);
    }

    fn quote(v: &str) -> String {
        let mut s = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }

    proptest! {
        #[test]
        fn never_panics(line in prop::collection::vec(any::<u8>(), 0..80)) {
            for (k, v) in LogfmtPairs::new(&line) {
                prop_assert!(!k.is_empty());
                let _ = v.decode();
                prop_assert_eq!(&line[v.range()], v.raw());
            }
        }

        #[test]
        fn never_panics_on_logfmt_alphabet(line in r#"[a-z= "\\nu0-9]{0,60}"#) {
            for (_, v) in LogfmtPairs::new(line.as_bytes()) {
                let _ = v.decode();
            }
        }

        #[test]
        fn formatted_pairs_round_trip(
            kvs in prop::collection::vec(("[a-z_.][a-z0-9_.]{0,8}", ".{0,12}", any::<bool>()), 0..8),
        ) {
            let mut line = String::new();
            for (k, v, force_quote) in &kvs {
                let bare_ok = !v.is_empty() && !v.contains(|c: char| c <= ' ' || c == '"' || c == '\\')
                    && !v.starts_with('"');
                line.push_str(k);
                line.push('=');
                if bare_ok && !force_quote {
                    line.push_str(v);
                } else {
                    line.push_str(&quote(v));
                }
                line.push(' ');
            }
            let got = pairs(&line);
            let want: Vec<_> = kvs.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(got, want);
        }
    }
}
