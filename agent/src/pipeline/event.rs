//! The unit of data: an [`Event`] is one log line with its labels, and a [`Chunk`] is the
//! batch of events that moves between components together with its acknowledgement.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::acks::AckToken;

/// One log line on its way to a sink.
///
/// The line is the exact bytes the service wrote (a slice of the block it was read in, not a
/// copy). Labels are interned and shared by every event of the same stream.
#[derive(Clone, Debug)]
pub struct Event {
    /// Unix time in nanoseconds: from the line itself when a transform found it, otherwise
    /// the time the line was read.
    pub timestamp_ns: i64,
    /// The original line, without its newline.
    pub line: Bytes,
    /// The stream labels (source labels plus extracted ones).
    pub labels: LabelSet,
    /// Loki structured metadata, such as `trace_id`.
    pub metadata: Metadata,
}

/// Structured metadata pairs: a name and a value. Values are usually slices of the line itself,
/// so attaching them allocates nothing.
pub type Metadata = SmallVec<[(Arc<str>, Bytes); 2]>;

impl Event {
    /// An event with the given line and labels, stamped with `timestamp_ns`.
    pub fn new(timestamp_ns: i64, line: Bytes, labels: LabelSet) -> Self {
        Self {
            timestamp_ns,
            line,
            labels,
            metadata: Metadata::new(),
        }
    }
}

/// A batch of events moving through the pipeline with one acknowledgement token.
///
/// Sources emit chunks of hundreds to thousands of lines; every channel carries chunks, so the
/// per-line cost of moving data between tasks is near zero. A chunk may end up with no events
/// (a transform dropped them all); it still travels to the sinks so that its token is settled.
#[derive(Debug)]
pub struct Chunk {
    /// The lines, in the order they were read.
    pub events: Vec<Event>,
    /// Settled by the sink once every event is delivered; see [`crate::acks`].
    pub ack: AckToken,
}

impl Chunk {
    /// Total bytes of the lines in this chunk.
    pub fn line_bytes(&self) -> usize {
        self.events.iter().map(|e| e.line.len()).sum()
    }
}

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
