//! Finds the span of a key or value in the parsed (interpolated) document by its path, so
//! checks on the typed config can point at what the user wrote.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Looks up spans in one parsed document. Paths are table keys from the root, e.g.
/// `["sinks", "loki", "batch", "max_bytes"]`.
pub(crate) struct Locator<'a, 'i> {
    root: &'a Spanned<DeTable<'i>>,
}

impl<'a, 'i> Locator<'a, 'i> {
    /// Wraps a parsed document.
    pub fn new(root: &'a Spanned<DeTable<'i>>) -> Self {
        Self { root }
    }

    /// Span of the key at `path`; when absent (a default), the nearest enclosing key.
    pub fn key(&self, path: &[&str]) -> Range<usize> {
        self.walk(path).0
    }

    /// Span of the value at `path`; when absent, the nearest enclosing key.
    pub fn value(&self, path: &[&str]) -> Range<usize> {
        let (key, value) = self.walk(path);
        value.map_or(key, |v| v.span())
    }

    /// Span of element `index` of the array at `path`; when absent, the array (or nearer).
    pub fn item(&self, path: &[&str], index: usize) -> Range<usize> {
        match self.walk(path) {
            (_, Some(v)) => match v.get_ref().as_array().and_then(|a| a.get(index)) {
                Some(item) => item.span(),
                None => v.span(),
            },
            (key, None) => key,
        }
    }

    /// The key span of the deepest existing prefix of `path`, and the value when the whole
    /// path exists.
    fn walk(&self, path: &[&str]) -> (Range<usize>, Option<&'a Spanned<DeValue<'i>>>) {
        let mut table = self.root.get_ref();
        let mut key_span = 0..0;
        for (depth, segment) in path.iter().enumerate() {
            let Some((key, value)) = table.get_key_value(*segment) else {
                return (key_span, None);
            };
            key_span = key.span();
            if depth + 1 == path.len() {
                return (key_span, Some(value));
            }
            match value.get_ref().as_table() {
                Some(inner) => table = inner,
                None => return (key_span, None),
            }
        }
        (key_span, None)
    }
}
