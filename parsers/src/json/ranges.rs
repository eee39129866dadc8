//! [`FieldRanges`]: extraction results stored as byte ranges, so that one buffer without a
//! lifetime can be reused for every line.

use super::fields::Sink;
use super::value::{JsonStr, JsonValue};

/// The kind of a value recorded by range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Str { has_escapes: bool },
    Number,
    True,
    False,
    Null,
    Object,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RangeSlot {
    kind: RangeKind,
    start: usize,
    end: usize,
}

/// Extraction results as byte ranges, without a lifetime: reusable across lines. Filled by
/// [`FieldSet::extract_ranges`](super::FieldSet::extract_ranges).
#[derive(Debug, Clone, Default)]
pub struct FieldRanges {
    slots: Vec<Option<RangeSlot>>,
}

impl FieldRanges {
    /// Empties every slot and sizes the buffer for `len` paths.
    pub(super) fn reset(&mut self, len: usize) {
        self.slots.clear();
        self.slots.resize(len, None);
    }

    /// A sink that records values of `line` into this buffer.
    pub(super) fn sink<'s>(&'s mut self, line: &[u8]) -> RangeSink<'s> {
        RangeSink {
            base: line.as_ptr() as usize,
            slots: &mut self.slots,
        }
    }
}

impl FieldRanges {
    /// An empty result buffer; it grows to the field set's size on first use.
    pub fn new() -> FieldRanges {
        FieldRanges::default()
    }

    /// Number of slots (the field set's size after an extraction).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The value of path `slot` in `line`, which must be the line last passed to
    /// [`FieldSet::extract_ranges`](super::FieldSet::extract_ranges). `None` when the field was absent, or when `line` is too
    /// short to be that line.
    pub fn get<'a>(&self, slot: usize, line: &'a [u8]) -> Option<JsonValue<'a>> {
        let s = (*self.slots.get(slot)?)?;
        let raw = line.get(s.start..s.end)?;
        Some(match s.kind {
            RangeKind::Str { has_escapes } => JsonValue::Str(JsonStr {
                raw,
                offset: s.start,
                has_escapes,
            }),
            RangeKind::Number => JsonValue::Number(raw),
            RangeKind::True => JsonValue::Bool(true),
            RangeKind::False => JsonValue::Bool(false),
            RangeKind::Null => JsonValue::Null,
            RangeKind::Object => JsonValue::Object(raw),
            RangeKind::Array => JsonValue::Array(raw),
        })
    }
}

/// Records values as ranges relative to the line's start address.
pub(super) struct RangeSink<'s> {
    base: usize,
    slots: &'s mut [Option<RangeSlot>],
}

impl Sink<'_> for RangeSink<'_> {
    #[inline]
    fn set(&mut self, slot: usize, value: JsonValue<'_>) {
        let (kind, raw): (RangeKind, &[u8]) = match value {
            JsonValue::Str(s) => (
                RangeKind::Str {
                    has_escapes: s.has_escapes,
                },
                s.raw,
            ),
            JsonValue::Number(raw) => (RangeKind::Number, raw),
            JsonValue::Object(raw) => (RangeKind::Object, raw),
            JsonValue::Array(raw) => (RangeKind::Array, raw),
            JsonValue::Bool(true) => (RangeKind::True, &[]),
            JsonValue::Bool(false) => (RangeKind::False, &[]),
            JsonValue::Null => (RangeKind::Null, &[]),
        };
        // Literals have no text worth slicing: an empty range at 0.
        let start = if raw.is_empty() {
            0
        } else {
            (raw.as_ptr() as usize).wrapping_sub(self.base)
        };
        if let Some(o) = self.slots.get_mut(slot) {
            *o = Some(RangeSlot {
                kind,
                start,
                end: start + raw.len(),
            });
        }
    }
}
