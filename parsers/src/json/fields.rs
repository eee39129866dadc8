//! [`FieldSet`]: the wanted paths compiled into a small tree of keys per object, and the
//! entry points that run the scanner over a line.

use memchr::memchr_iter;

use super::error::{JsonError, JsonErrorKind};
use super::ranges::FieldRanges;
use super::scanner::Scanner;
use super::value::{JsonStr, JsonValue};

/// Paths with more dots than this are not expanded into every dotted spelling.
const MAX_EXPANDED_DOTS: usize = 8;

/// A compiled set of wanted field paths, reused for every line.
///
/// ```
/// use logship_parsers::json::{FieldSet, JsonValue};
///
/// let fields = FieldSet::new(&["level", "span.trace_id", "http.status"]);
/// let line = br#"{"level":"warn","span":{"trace_id":"4bf9"},"http.status":503}"#;
/// let mut out = [None; 3];
/// fields.extract(line, &mut out).unwrap();
/// assert_eq!(out[0].unwrap().as_text(), "warn");
/// assert_eq!(out[1].unwrap().as_text(), "4bf9");
/// assert_eq!(out[2], Some(JsonValue::Number(b"503")));
///
/// assert!(fields.extract(b"not json", &mut out).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct FieldSet {
    paths: Vec<String>,
    /// `nodes[0]` is the top-level object.
    pub(super) nodes: Vec<Node>,
}

/// The keys wanted in one object.
#[derive(Debug, Clone, Default)]
pub(super) struct Node {
    entries: Vec<Entry>,
    /// Bit `min(len, 63)` is set for every key length: a cheap first rejection.
    len_mask: u64,
}

/// One wanted key of an object.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// The key's first eight bytes, zero-padded: most keys compare in one integer compare.
    prefix: u64,
    key: Box<[u8]>,
    /// Output slots this key's value fills.
    pub(super) slots: Vec<usize>,
    /// When the value is an object, the keys wanted inside it.
    pub(super) child: Option<usize>,
}

impl Node {
    /// The entry for `key`, a string of `line`.
    #[inline]
    pub(super) fn find(&self, line: &[u8], key: &JsonStr<'_>) -> Option<&Entry> {
        if key.has_escapes {
            return self.entries.iter().find(|e| key.eq_decoded(&e.key));
        }
        let len = key.raw.len();
        if self.len_mask & (1u64 << len.min(63)) == 0 {
            return None;
        }
        let prefix = prefix_of(line, key.offset, len);
        self.entries.iter().find(|e| {
            e.prefix == prefix
                && e.key.len() == len
                && (len <= 8 || e.key.get(8..) == key.raw.get(8..))
        })
    }
}

/// The first `min(len, 8)` bytes of `b[start..]` as a little-endian `u64`, zero-padded.
#[inline(always)]
fn prefix_of(b: &[u8], start: usize, len: usize) -> u64 {
    let n = len.min(8);
    let mask = if n == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    match b.get(start..).and_then(|r| r.first_chunk::<8>()) {
        Some(chunk) => u64::from_le_bytes(*chunk) & mask,
        None => {
            let mut buf = [0u8; 8];
            if let Some(src) = b.get(start..start + n) {
                buf[..n].copy_from_slice(src);
            }
            u64::from_le_bytes(buf)
        }
    }
}

impl FieldSet {
    /// Compiles `paths`; slot `i` of [`extract`](Self::extract)'s output is `paths[i]`.
    pub fn new(paths: &[&str]) -> FieldSet {
        let mut set = FieldSet {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            nodes: vec![Node::default()],
        };
        for (slot, path) in paths.iter().enumerate() {
            let every_dot = memchr_iter(b'.', path.as_bytes()).count() <= MAX_EXPANDED_DOTS;
            set.insert(0, path.as_bytes(), slot, every_dot);
        }
        set
    }

    /// The paths, in slot order.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Number of paths (and of output slots).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are no paths; [`extract`](Self::extract) then only validates.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    fn entry(&mut self, node: usize, key: &[u8]) -> usize {
        let n = &mut self.nodes[node];
        if let Some(i) = n.entries.iter().position(|e| *e.key == *key) {
            return i;
        }
        n.len_mask |= 1u64 << key.len().min(63);
        n.entries.push(Entry {
            prefix: prefix_of(key, 0, key.len()),
            key: key.into(),
            slots: Vec::new(),
            child: None,
        });
        n.entries.len() - 1
    }

    /// Registers every spelling of `rest` under `node`: `rest` as one key, and for each dot
    /// (or only the first, when `every_dot` is false) the part before it as a key whose object
    /// holds the part after it.
    fn insert(&mut self, node: usize, rest: &[u8], slot: usize, every_dot: bool) {
        let e = self.entry(node, rest);
        self.nodes[node].entries[e].slots.push(slot);
        for dot in memchr_iter(b'.', rest) {
            let e = self.entry(node, &rest[..dot]);
            let child = match self.nodes[node].entries[e].child {
                Some(c) => c,
                None => {
                    self.nodes.push(Node::default());
                    let c = self.nodes.len() - 1;
                    self.nodes[node].entries[e].child = Some(c);
                    c
                }
            };
            self.insert(child, &rest[dot + 1..], slot, every_dot);
            if !every_dot {
                break;
            }
        }
    }

    /// Validates `line` as one JSON object and fills `out[i]` with the value of path `i`
    /// (`None` when absent). Slots beyond `out.len()` are not written.
    ///
    /// On error every slot is `None` and the error says what was wrong where.
    pub fn extract<'a>(
        &self,
        line: &'a [u8],
        out: &mut [Option<JsonValue<'a>>],
    ) -> Result<(), JsonError> {
        out.fill(None);
        let result = extract_object(&self.nodes, line, out);
        if result.is_err() {
            out.fill(None);
        }
        result
    }

    /// Like [`extract`](Self::extract), but records byte ranges in a [`FieldRanges`] that has
    /// no lifetime, so one buffer can be reused for every line (a slice of `JsonValue`s
    /// borrows the line and cannot outlive it). Read the values back with
    /// [`FieldRanges::get`] and the same line.
    ///
    /// ```
    /// use logship_parsers::json::{FieldRanges, FieldSet};
    ///
    /// let fields = FieldSet::new(&["level"]);
    /// let mut ranges = FieldRanges::new();
    /// for line in [&br#"{"level":"info"}"#[..], br#"{"level":"warn"}"#] {
    ///     fields.extract_ranges(line, &mut ranges).unwrap();
    ///     println!("{}", ranges.get(0, line).unwrap().as_text());
    /// }
    /// ```
    pub fn extract_ranges(&self, line: &[u8], out: &mut FieldRanges) -> Result<(), JsonError> {
        out.reset(self.paths.len());
        let mut sink = out.sink(line);
        let result = extract_object(&self.nodes, line, &mut sink);
        if result.is_err() {
            out.reset(self.paths.len());
        }
        result
    }
}

/// Checks that `line` is one valid JSON object, without extracting anything.
pub fn validate_object(line: &[u8]) -> Result<(), JsonError> {
    extract_object(&[], line, &mut NoSink)
}

/// Where the scanner puts the values of wanted fields.
pub(super) trait Sink<'a> {
    /// Records `value` as the value of output slot `slot`.
    fn set(&mut self, slot: usize, value: JsonValue<'a>);
}

impl<'a> Sink<'a> for [Option<JsonValue<'a>>] {
    #[inline]
    fn set(&mut self, slot: usize, value: JsonValue<'a>) {
        if let Some(o) = self.get_mut(slot) {
            *o = Some(value);
        }
    }
}

/// Discards values: for skipped subtrees and pure validation.
pub(super) struct NoSink;

impl Sink<'_> for NoSink {
    #[inline]
    fn set(&mut self, _: usize, _: JsonValue<'_>) {}
}

fn extract_object<'a, S: Sink<'a> + ?Sized>(
    nodes: &[Node],
    line: &'a [u8],
    out: &mut S,
) -> Result<(), JsonError> {
    let mut s = Scanner {
        b: line,
        pos: 0,
        nodes,
    };
    s.skip_ws();
    if s.peek() != Some(b'{') {
        return Err(s.err(JsonErrorKind::NotAnObject));
    }
    s.object(nodes.first(), 1, out)?;
    s.skip_ws();
    if s.pos != line.len() {
        return Err(s.err(JsonErrorKind::TrailingCharacters));
    }
    Ok(())
}
