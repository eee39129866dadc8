//! Extracted values: [`JsonValue`] and the still-escaped string [`JsonStr`], both borrowing
//! from the line, with decoding on demand.

use std::borrow::Cow;
use std::ops::Range;

use bytes::BytesMut;

use super::unescape::{UNESCAPE_SLACK, unescape};

/// A JSON string value in its escaped form, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    pub(super) raw: &'a [u8],
    pub(super) offset: usize,
    pub(super) has_escapes: bool,
}

impl<'a> JsonStr<'a> {
    /// The bytes between the quotes, escapes not decoded. Valid UTF-8 unless
    /// [`has_escapes`](Self::has_escapes) says otherwise.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether decoding changes the raw text: it contains a backslash escape, or bytes that
    /// are not valid UTF-8 (decoding replaces them with U+FFFD).
    #[inline]
    pub fn has_escapes(&self) -> bool {
        self.has_escapes
    }

    /// The byte range of [`raw`](Self::raw) within the line it was extracted from, for
    /// `Bytes::slice` (or use `Bytes::slice_ref` with [`raw`](Self::raw)).
    #[inline]
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.raw.len()
    }

    /// The decoded string: borrowed when there are no escapes, else unescaped (`\uXXXX` and
    /// surrogate pairs included) into a new `String`.
    pub fn decode(&self) -> Cow<'a, str> {
        match self.decode_bytes() {
            Cow::Borrowed(b) => String::from_utf8_lossy(b),
            Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
                Ok(s) => s,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }

    /// The decoded string as UTF-8 bytes: borrowed when there are no escapes.
    pub fn decode_bytes(&self) -> Cow<'a, [u8]> {
        if !self.has_escapes {
            return Cow::Borrowed(self.raw);
        }
        let mut out = vec![0; self.raw.len() + UNESCAPE_SLACK];
        let n = unescape(self.raw, &mut out);
        out.truncate(n);
        Cow::Owned(out)
    }

    /// Appends the decoded string to `out`. Lets a caller decode many values into one
    /// reusable buffer (and split `Bytes` off it) instead of allocating per value.
    pub fn decode_into(&self, out: &mut BytesMut) {
        if !self.has_escapes {
            out.extend_from_slice(self.raw);
            return;
        }
        let start = out.len();
        out.resize(start + self.raw.len() + UNESCAPE_SLACK, 0);
        let n = unescape(self.raw, &mut out[start..]);
        out.truncate(start + n);
    }

    /// Whether the decoded string equals `want`, without allocating for short strings.
    pub fn eq_decoded(&self, want: &[u8]) -> bool {
        if !self.has_escapes {
            return self.raw == want;
        }
        // Unescaping never lengthens the text: a `want` longer than the raw text cannot match.
        if want.len() > self.raw.len() {
            return false;
        }
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if self.raw.len() + UNESCAPE_SLACK <= stack.len() {
            &mut stack
        } else {
            heap.resize(self.raw.len() + UNESCAPE_SLACK, 0);
            &mut heap
        };
        let n = unescape(self.raw, buf);
        buf.get(..n) == Some(want)
    }
}

/// One extracted value, borrowing from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonValue<'a> {
    /// A string.
    Str(JsonStr<'a>),
    /// A number, as its literal text (e.g. `-12.5e3`).
    Number(&'a [u8]),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object, as its raw text from `{` to `}`.
    Object(&'a [u8]),
    /// An array, as its raw text from `[` to `]`.
    Array(&'a [u8]),
}

impl<'a> JsonValue<'a> {
    /// The value as text: strings decoded, numbers and booleans as written, `null` as `null`,
    /// objects and arrays as their raw JSON text. Borrows unless a string has escapes.
    pub fn as_text(&self) -> Cow<'a, str> {
        match self {
            JsonValue::Str(s) => s.decode(),
            JsonValue::Number(raw) | JsonValue::Object(raw) | JsonValue::Array(raw) => {
                String::from_utf8_lossy(raw)
            }
            JsonValue::Bool(true) => Cow::Borrowed("true"),
            JsonValue::Bool(false) => Cow::Borrowed("false"),
            JsonValue::Null => Cow::Borrowed("null"),
        }
    }

    /// The string value, if this is a string.
    #[inline]
    pub fn as_str(&self) -> Option<JsonStr<'a>> {
        match self {
            JsonValue::Str(s) => Some(*s),
            _ => None,
        }
    }

    /// The byte range of the value's text within `line` (for a string, the text between the
    /// quotes), or `None` for `true`, `false` and `null`, or when `line` is not the line the
    /// value was extracted from.
    pub fn range_in(&self, line: &[u8]) -> Option<Range<usize>> {
        let raw = match self {
            JsonValue::Str(s) => s.raw,
            JsonValue::Number(raw) | JsonValue::Object(raw) | JsonValue::Array(raw) => raw,
            JsonValue::Bool(_) | JsonValue::Null => return None,
        };
        let start = (raw.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
        let end = start.checked_add(raw.len())?;
        (end <= line.len()).then_some(start..end)
    }
}
