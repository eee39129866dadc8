//! JSON lines: a borrowing, partial parse that reads only the named fields.

use logship_parsers::json::{FieldRanges, FieldSet, JsonValue};

use super::fields::{FieldExtractor, FieldValue};

/// Finds named (optionally dotted, `span.trace_id`) fields of a JSON object line.
pub struct JsonExtractor {
    fields: FieldSet,
    /// Reused for every line: offsets, not borrows, so it can outlive one line.
    ranges: FieldRanges,
}

impl JsonExtractor {
    /// An extractor for `names`.
    pub fn new(names: &[String]) -> Self {
        let paths: Vec<&str> = names.iter().map(String::as_str).collect();
        Self {
            fields: FieldSet::new(&paths),
            ranges: FieldRanges::new(),
        }
    }
}

impl FieldExtractor for JsonExtractor {
    fn extract(&mut self, line: &[u8], out: &mut [Option<FieldValue>]) -> bool {
        if self.fields.extract_ranges(line, &mut self.ranges).is_err() {
            return false;
        }
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = self.ranges.get(i, line).map(|v| to_field(line, &v));
        }
        true
    }
}

fn to_field(line: &[u8], value: &JsonValue<'_>) -> FieldValue {
    let borrowable = match value {
        JsonValue::Str(s) => !s.has_escapes(),
        JsonValue::Number(_) => true,
        _ => false,
    };
    match value.range_in(line) {
        // The scanner validated the string's UTF-8 and numbers are ASCII: borrow as is.
        Some(r) if borrowable => FieldValue::Slice(r),
        _ => FieldValue::Owned(value.as_text().into_owned()),
    }
}
