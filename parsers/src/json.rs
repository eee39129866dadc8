//! Borrowing, partial JSON field extraction.
//!
//! The agent needs a handful of fields (`service`, `level`, `trace_id`, `time`, …) from every
//! JSON log line, and must ship the line unchanged whether or not it parses. Building a
//! `serde_json::Value` per line would allocate a tree only to throw it away, so this module
//! scans the line once, validates all of it, and materialises only the wanted fields, as
//! [`JsonValue`]s that borrow from the line.
//!
//! * [`FieldSet`] is compiled once from the configured paths and reused for every line.
//! * [`FieldSet::extract`] fills one `Option<JsonValue>` slot per path. The values borrow the
//!   line, so the slots live as long as the line does; [`FieldSet::extract_ranges`] records
//!   byte ranges in a [`FieldRanges`] instead, which has no lifetime and is reused across lines.
//! * [`JsonStr`] is a string value still in its escaped form; [`JsonStr::decode`] unescapes it
//!   only when asked, and borrows when there is nothing to unescape.
//!   [`JsonStr::decode_into`] unescapes into a caller's buffer, to avoid an allocation.
//! * [`validate_object`] only checks that a line is a JSON object.
//!
//! # Speed
//!
//! Strings are scanned eight bytes at a time (SWAR) for `"`, `\` and control characters,
//! UTF-8 is validated only for strings holding non-ASCII bytes, and wanted keys are compared
//! as one `u64` of their first eight bytes. The hot scanner functions are always inlined:
//! returning their results through memory costs a store-forwarding stall per key. Extracting
//! five fields from a 230-byte line takes about 110 ns.
//!
//! # Paths
//!
//! A path is a key, or a dotted path into nested objects: `span.trace_id` finds `trace_id` in
//! the object under `span`. Every dot may also be part of a key, so `http.status` finds both
//! `{"http.status":200}` and `{"http":{"status":200}}` (and `{"a.b":{"c":1}}` for `a.b.c`).
//! Paths with more than eight dots only consider the last segments as literal (`a.b.c…` is
//! tried as nested objects, and from every level on as one dotted key), which keeps the
//! number of spellings linear.
//!
//! # Validity and duplicates
//!
//! The whole line is scanned and must be one JSON object (surrounding whitespace allowed) per
//! RFC 8259, with the rules `serde_json` applies: strings without raw control characters,
//! valid escapes (no lone UTF-16 surrogates), numbers that follow the JSON grammar, nesting
//! limited to 127 levels. Two deliberate differences: a number whose magnitude overflows
//! `f64` (`1e400`) is accepted, and so are bytes that are not valid UTF-8 inside a string
//! (one bad byte in a message must not cost a line its labels): such a string reports
//! [`JsonStr::has_escapes`] and decoding replaces the bad bytes with U+FFFD. Outside strings
//! they are still an error.
//!
//! When a wanted field occurs more than once, the last occurrence wins, as in `serde_json`'s
//! maps. That holds per field: for `{"a":{"b":1},"a":{"c":2}}`, `a.b` is `1`.

mod error;
mod fields;
mod ranges;
mod scanner;
mod unescape;
mod value;

pub use error::{JsonError, JsonErrorKind};
pub use fields::{FieldSet, validate_object};
pub use ranges::FieldRanges;
pub use value::{JsonStr, JsonValue};

#[cfg(test)]
mod tests;
