//! The interface between a line format and the extraction logic.

use std::ops::Range;

/// A field's value as found in a line: either a byte range of the line (no copy) or text
/// that had to be decoded (escapes).
///
/// Invariant: a `Slice` range is valid UTF-8. Extractors establish it when they build the
/// value (the JSON scanner validates every string it passes; others use `slice_or_lossy`), so
/// the hot path compares and hashes bytes without validating them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// `line[range]` is the value.
    Slice(Range<usize>),
    /// The decoded value.
    Owned(String),
}

impl FieldValue {
    /// The value's bytes (valid UTF-8), given the line it was found in.
    pub fn bytes<'a>(&'a self, line: &'a [u8]) -> &'a [u8] {
        match self {
            FieldValue::Slice(r) => line.get(r.clone()).unwrap_or_default(),
            FieldValue::Owned(s) => s.as_bytes(),
        }
    }
}

/// Finds the values of a fixed list of field names in a line.
pub trait FieldExtractor: Send {
    /// Fills `out[i]` with the value of the i-th name given at construction (or `None` when
    /// the line lacks it). Returns `false` when the line is not in this format at all; the
    /// line then ships unchanged with its source's labels.
    fn extract(&mut self, line: &[u8], out: &mut [Option<FieldValue>]) -> bool;
}

/// A byte range as a `FieldValue` when it is valid UTF-8, else its lossy decoding.
pub(crate) fn slice_or_lossy(line: &[u8], range: Range<usize>) -> FieldValue {
    match line.get(range.clone()).map(std::str::from_utf8) {
        Some(Ok(_)) => FieldValue::Slice(range),
        Some(Err(_)) => FieldValue::Owned(String::from_utf8_lossy(&line[range]).into_owned()),
        None => FieldValue::Owned(String::new()),
    }
}
