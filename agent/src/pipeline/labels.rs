//! [`LabelSet`]: a stream's Loki labels, interned and shared by every event of the stream.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A sorted, deduplicated set of Loki stream labels, shared behind an `Arc`.
///
/// The Loki selector text (`{a="b", c="d"}`) and a hash are computed once when the set is
/// built, so sinks can group and encode streams without touching the pairs again.
#[derive(Clone)]
pub struct LabelSet(Arc<LabelSetInner>);

struct LabelSetInner {
    pairs: Box<[(Arc<str>, Arc<str>)]>,
    selector: Box<str>,
    hash: u64,
}

impl LabelSet {
    /// Builds a set from pairs; later pairs with the same name win. Names are expected to be
    /// valid Loki label names (the config validates them).
    pub fn new<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Arc<str>>,
        V: Into<Arc<str>>,
    {
        let mut map: std::collections::BTreeMap<Arc<str>, Arc<str>> = Default::default();
        for (k, v) in pairs {
            map.insert(k.into(), v.into());
        }
        let pairs: Box<[(Arc<str>, Arc<str>)]> = map.into_iter().collect();
        let selector = render_selector(&pairs);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        selector.hash(&mut hasher);
        Self(Arc::new(LabelSetInner {
            pairs,
            selector: selector.into_boxed_str(),
            hash: hasher.finish(),
        }))
    }

    /// The empty set.
    pub fn empty() -> Self {
        Self::new(std::iter::empty::<(&str, &str)>())
    }

    /// The (name, value) pairs, sorted by name.
    pub fn pairs(&self) -> &[(Arc<str>, Arc<str>)] {
        &self.0.pairs
    }

    /// The value of one label.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .pairs
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    /// Loki's selector text, `{a="b", c="d"}`, with values escaped as Loki's parser expects.
    pub fn selector(&self) -> &str {
        &self.0.selector
    }

    /// An identity for this interned set, stable while any handle to it is alive.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// True when both handles point at the same interned set.
    pub fn ptr_eq(&self, other: &LabelSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// This set plus `extra` pairs (extra wins on equal names).
    pub fn merged<'a>(&self, extra: impl IntoIterator<Item = (&'a str, &'a str)>) -> LabelSet {
        LabelSet::new(
            self.pairs()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain(extra.into_iter().map(|(k, v)| (Arc::from(k), Arc::from(v)))),
        )
    }
}

fn render_selector(pairs: &[(Arc<str>, Arc<str>)]) -> String {
    let mut out = String::with_capacity(2 + pairs.len() * 24);
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

impl PartialEq for LabelSet {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other) || (self.0.hash == other.0.hash && self.0.selector == other.0.selector)
    }
}

impl Eq for LabelSet {}

impl Hash for LabelSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.selector())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_is_sorted_and_escaped() {
        let set = LabelSet::new([("b", "x\"y"), ("a", "1\\2")]);
        assert_eq!(set.selector(), r#"{a="1\\2", b="x\"y"}"#);
        assert_eq!(set.get("b"), Some("x\"y"));
    }

    #[test]
    fn equal_content_is_equal() {
        let a = LabelSet::new([("a", "1")]);
        let b = LabelSet::new([("a", "1")]);
        assert_eq!(a, b);
        assert!(!a.ptr_eq(&b));
        assert_ne!(a, LabelSet::new([("a", "2")]));
    }

    #[test]
    fn merged_overrides() {
        let a = LabelSet::new([("a", "1"), ("b", "2")]);
        assert_eq!(a.merged([("b", "3")]).selector(), r#"{a="1", b="3"}"#);
    }
}
