//! The validating scanner: one pass over the line that checks the whole JSON object and hands
//! the values of wanted keys to a sink.

use super::error::{JsonError, JsonErrorKind};
use super::fields::{NoSink, Node, Sink};
use super::value::{JsonStr, JsonValue};

/// Nesting limit, the same as `serde_json`'s default: 127 levels of objects and arrays.
const MAX_DEPTH: u32 = 127;

pub(super) const LO: u64 = 0x0101_0101_0101_0101;
pub(super) const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is `"`, `\` or below 0x20. Exact for the lowest
/// flagged byte (borrows only create false positives above a true match).
#[inline(always)]
fn string_specials(w: u64) -> u64 {
    let q = w ^ (LO * u64::from(b'"'));
    let bs = w ^ (LO * u64::from(b'\\'));
    let quote = q.wrapping_sub(LO) & !q;
    let backslash = bs.wrapping_sub(LO) & !bs;
    let control = w.wrapping_sub(LO * 0x20) & !w;
    (quote | backslash | control) & HI
}

/// A cursor over one line, validating as it goes.
pub(super) struct Scanner<'a, 'n> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    pub(super) nodes: &'n [Node],
}

impl<'a, 'n> Scanner<'a, 'n> {
    #[inline(always)]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[cold]
    #[inline(never)]
    pub(super) fn err(&self, kind: JsonErrorKind) -> JsonError {
        let kind = if self.pos >= self.b.len() && kind != JsonErrorKind::TrailingCharacters {
            JsonErrorKind::UnexpectedEnd
        } else {
            kind
        };
        JsonError {
            kind,
            offset: self.pos,
        }
    }

    #[inline(always)]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Parses the object at `pos` (which is `{`), recording the values `node` wants.
    pub(super) fn object<S: Sink<'a> + ?Sized>(
        &mut self,
        node: Option<&'n Node>,
        depth: u32,
        out: &mut S,
    ) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err(JsonErrorKind::ExpectedKey));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.err(JsonErrorKind::ExpectedColon));
            }
            self.pos += 1;
            self.skip_ws();
            match node.and_then(|n| n.find(self.b, &key)) {
                None => {
                    self.value(depth)?;
                }
                Some(entry) => {
                    let child = entry.child.and_then(|c| self.nodes.get(c));
                    let value = match child {
                        Some(child) if self.peek() == Some(b'{') => {
                            let start = self.pos;
                            self.object(Some(child), depth + 1, out)?;
                            JsonValue::Object(&self.b[start..self.pos])
                        }
                        _ => self.value(depth)?,
                    };
                    for &slot in &entry.slots {
                        out.set(slot, value);
                    }
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(JsonErrorKind::ExpectedCommaOrObjectEnd)),
            }
        }
    }

    fn array(&mut self, depth: u32) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(JsonErrorKind::ExpectedCommaOrArrayEnd)),
            }
        }
    }

    /// Parses any value at `pos`; `depth` is the nesting level of the enclosing container.
    /// Always inlined for the same reason as [`Scanner::string`].
    #[inline(always)]
    fn value(&mut self, depth: u32) -> Result<JsonValue<'a>, JsonError> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => self.string().map(JsonValue::Str),
            Some(b'{') => {
                self.object(None, depth + 1, &mut NoSink)?;
                Ok(JsonValue::Object(&self.b[start..self.pos]))
            }
            Some(b'[') => {
                self.array(depth + 1)?;
                Ok(JsonValue::Array(&self.b[start..self.pos]))
            }
            Some(b't') => self.literal(b"true").map(|()| JsonValue::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| JsonValue::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| JsonValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err(JsonErrorKind::UnexpectedByte)),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err(JsonErrorKind::InvalidLiteral))
        }
    }

    #[inline]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsonValue<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err(JsonErrorKind::InvalidNumber)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err(JsonErrorKind::InvalidNumber));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err(JsonErrorKind::InvalidNumber));
            }
        }
        Ok(JsonValue::Number(&self.b[start..self.pos]))
    }

    /// Scans the string at `pos` (which is `"`), validating escapes, control characters and
    /// UTF-8, and leaves `pos` after the closing quote. Always inlined: returning the
    /// result through memory costs a store-forwarding stall per key.
    #[inline(always)]
    fn string(&mut self) -> Result<JsonStr<'a>, JsonError> {
        let b = self.b;
        let start = self.pos + 1;
        let mut i = start;
        let mut has_escapes = false;
        let mut non_ascii = 0u64;
        loop {
            // Eight bytes at a time until one needs a look.
            while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
                let w = u64::from_le_bytes(*chunk);
                let special = string_specials(w);
                if special != 0 {
                    let k = special.trailing_zeros() / 8;
                    non_ascii |= w & HI & ((1u64 << (8 * k)) - 1);
                    i += k as usize;
                    break;
                }
                non_ascii |= w & HI;
                i += 8;
            }
            match b.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    has_escapes = true;
                    i = check_escape(b, i)?;
                }
                Some(0..=0x1f) => {
                    return Err(JsonError {
                        kind: JsonErrorKind::ControlCharacter,
                        offset: i,
                    });
                }
                Some(&c) => {
                    non_ascii |= u64::from(c & 0x80);
                    i += 1;
                }
                None => {
                    return Err(JsonError {
                        kind: JsonErrorKind::UnexpectedEnd,
                        offset: i,
                    });
                }
            }
        }
        let raw = &b[start..i];
        // Invalid UTF-8 in a string does not make the line useless: one bad byte in a message
        // must not cost the line its labels. Such a string is marked as needing decoding,
        // which replaces the bad bytes with U+FFFD (the line itself is never changed).
        if non_ascii != 0 && std::str::from_utf8(raw).is_err() {
            has_escapes = true;
        }
        self.pos = i + 1;
        Ok(JsonStr {
            raw,
            offset: start,
            has_escapes,
        })
    }
}

/// Validates the escape starting at `b[i] == b'\\'` and returns the index after it.
#[inline(always)]
fn check_escape(b: &[u8], i: usize) -> Result<usize, JsonError> {
    let invalid = |kind, offset| Err(JsonError { kind, offset });
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => match hex4(b, i + 2) {
            None => invalid(JsonErrorKind::InvalidEscape, i),
            Some(0xD800..=0xDBFF) => {
                if b.get(i + 6) == Some(&b'\\')
                    && b.get(i + 7) == Some(&b'u')
                    && matches!(hex4(b, i + 8), Some(0xDC00..=0xDFFF))
                {
                    Ok(i + 12)
                } else {
                    invalid(JsonErrorKind::LoneSurrogate, i)
                }
            }
            Some(0xDC00..=0xDFFF) => invalid(JsonErrorKind::LoneSurrogate, i),
            Some(_) => Ok(i + 6),
        },
        None => invalid(JsonErrorKind::UnexpectedEnd, i + 1),
        Some(_) => invalid(JsonErrorKind::InvalidEscape, i),
    }
}

/// Four hex digits at `b[at..at + 4]`.
#[inline]
pub(super) fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let mut v = 0u32;
    for &c in digits {
        v = v * 16 + char::from(c).to_digit(16)?;
    }
    Some(v)
}
