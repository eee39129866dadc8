//! Interning of label sets, so that the same (source labels, extracted values) combination
//! is one shared `LabelSet` and looking it up allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;

use crate::pipeline::LabelSet;

/// Most distinct combinations kept before the cache starts over. Label cardinality is bounded
/// in the sink; this only bounds the memory of the cache itself.
const MAX_ENTRIES: usize = 4096;

/// Loki rejects label values over 2048 bytes (`max_label_value_length`); longer values are cut
/// here so one odd line cannot make Loki refuse a whole stream.
pub(crate) const MAX_LABEL_VALUE_BYTES: usize = 2048;

/// Maps (base set, extracted values) to the merged, interned set.
///
/// Hashed with foldhash, not SipHash: it is looked up once per line, the keys are short, and
/// the map is bounded ([`MAX_ENTRIES`]), so crafted values cannot make it degrade for long;
/// foldhash's per-process seed keeps collisions unpredictable anyway.
pub(crate) struct LabelCache {
    names: Vec<Arc<str>>,
    map: HashMap<Box<[u8]>, (LabelSet, LabelSet), foldhash::fast::RandomState>,
    key: Vec<u8>,
}

impl LabelCache {
    /// A cache for label `names` (in the order values will be given).
    pub(crate) fn new(names: Vec<Arc<str>>) -> Self {
        Self {
            names,
            map: HashMap::default(),
            key: Vec::with_capacity(128),
        }
    }

    /// The set `base` plus `values[i]` for `names[i]` (a `None` value adds no label).
    /// Values are UTF-8 (see `FieldValue`); anything else would be repaired lossily.
    pub(crate) fn get(&mut self, base: &LabelSet, values: &[Option<&[u8]>]) -> LabelSet {
        self.key.clear();
        self.key.extend_from_slice(&base.id().to_ne_bytes());
        for v in values {
            match v {
                // 0xFF never occurs in UTF-8, so it separates values unambiguously.
                Some(v) => {
                    self.key.push(0xFE);
                    self.key.extend_from_slice(v);
                }
                None => self.key.push(0xFF),
            }
        }
        if let Some((_, set)) = self.map.get(self.key.as_slice()) {
            return set.clone();
        }
        let texts: Vec<(&str, std::borrow::Cow<'_, str>)> = self
            .names
            .iter()
            .zip(values)
            .filter_map(|(n, v)| {
                v.filter(|v| !v.is_empty())
                    .map(|v| (&**n, String::from_utf8_lossy(v)))
            })
            .collect();
        let set = base.merged(texts.iter().map(|(n, v)| (*n, truncate(v))));
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
        // The cached base clone keeps its address from being reused while the key exists.
        self.map.insert(
            self.key.clone().into_boxed_slice(),
            (base.clone(), set.clone()),
        );
        set
    }
}

fn truncate(v: &str) -> &str {
    if v.len() <= MAX_LABEL_VALUE_BYTES {
        return v;
    }
    let mut end = MAX_LABEL_VALUE_BYTES;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_merges() {
        let mut cache = LabelCache::new(vec![Arc::from("service"), Arc::from("level")]);
        let base = LabelSet::new([("job", "app")]);
        let a = cache.get(&base, &[Some(b"api"), Some(b"info")]);
        let b = cache.get(&base, &[Some(b"api"), Some(b"info")]);
        assert!(a.ptr_eq(&b));
        assert_eq!(a.selector(), r#"{job="app", level="info", service="api"}"#);
        let c = cache.get(&base, &[Some(b"api"), None]);
        assert_eq!(c.selector(), r#"{job="app", service="api"}"#);
        let d = cache.get(&base, &[Some(b""), None]);
        assert_eq!(d.selector(), r#"{job="app"}"#);
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let mut cache = LabelCache::new(vec![Arc::from("x")]);
        let long = "é".repeat(2000);
        let set = cache.get(&LabelSet::empty(), &[Some(long.as_bytes())]);
        let v = set.get("x").unwrap();
        assert!(v.len() <= MAX_LABEL_VALUE_BYTES);
        assert!(long.starts_with(v));
    }
}
