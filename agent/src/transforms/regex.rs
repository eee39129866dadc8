//! Regex lines: named captures are the fields.

use regex::bytes::{CaptureLocations, Regex};

use super::extract::TransformBuildError;
use super::fields::{FieldExtractor, FieldValue, slice_or_lossy};

/// Finds named captures of a regex in a line.
pub struct RegexExtractor {
    regex: Regex,
    locations: CaptureLocations,
    /// For each wanted name, its capture group index.
    groups: Vec<Option<usize>>,
}

impl RegexExtractor {
    /// Compiles `pattern`; `names` are the capture names wanted.
    pub fn new(pattern: &str, names: &[String]) -> Result<Self, TransformBuildError> {
        let regex = Regex::new(pattern).map_err(|e| TransformBuildError::Pattern(e.to_string()))?;
        let groups = names
            .iter()
            .map(|n| regex.capture_names().position(|c| c == Some(n.as_str())))
            .collect();
        let locations = regex.capture_locations();
        Ok(Self {
            regex,
            locations,
            groups,
        })
    }
}

impl FieldExtractor for RegexExtractor {
    fn extract(&mut self, line: &[u8], out: &mut [Option<FieldValue>]) -> bool {
        if self
            .regex
            .captures_read(&mut self.locations, line)
            .is_none()
        {
            return false;
        }
        for (slot, group) in out.iter_mut().zip(&self.groups) {
            *slot = group
                .and_then(|g| self.locations.get(g))
                .map(|(s, e)| slice_or_lossy(line, s..e));
        }
        true
    }
}
