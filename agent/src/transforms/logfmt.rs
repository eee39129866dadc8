//! logfmt lines: `key=value key2="quoted value"`.

use logship_parsers::logfmt::LogfmtPairs;

use super::fields::{FieldExtractor, FieldValue, slice_or_lossy};

/// Finds named keys of a logfmt line.
pub struct LogfmtExtractor {
    names: Vec<Vec<u8>>,
}

impl LogfmtExtractor {
    /// An extractor for `names`.
    pub fn new(names: &[String]) -> Self {
        Self {
            names: names.iter().map(|n| n.as_bytes().to_vec()).collect(),
        }
    }
}

impl FieldExtractor for LogfmtExtractor {
    fn extract(&mut self, line: &[u8], out: &mut [Option<FieldValue>]) -> bool {
        let mut any = false;
        for (key, value) in LogfmtPairs::new(line) {
            any = true;
            if let Some(i) = self.names.iter().position(|n| n.as_slice() == key) {
                out[i] = Some(if value.has_escapes() {
                    FieldValue::Owned(value.decode().into_owned())
                } else {
                    slice_or_lossy(line, value.range())
                });
            }
        }
        any
    }
}
