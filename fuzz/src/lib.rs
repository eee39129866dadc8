//! Fuzz targets: every parser logship runs on bytes from outside (log lines, container log
//! envelopes, timestamps, config files, Loki's answers), each as a function that takes
//! arbitrary bytes and panics only when an invariant breaks.
//!
//! The same functions run two ways:
//!
//! - under libFuzzer, with coverage guidance, from `fuzz/libfuzzer/` (`scripts/fuzz.sh`, needs
//!   a nightly toolchain and `cargo-fuzz`);
//! - on the stable toolchain in CI, by `tests/smoke.rs`: every file of `fuzz/corpus/<target>/`
//!   (seeds, and the crashers fuzzing found, which are regression tests from then on) plus a
//!   few seconds of random mutations of them.
//!
//! Each target checks more than "does not panic": what a parser returns must point inside its
//! input, round-trip where the format allows, and respect the bounds it was given.
//!
//! ```
//! // Any bytes are a valid input; a target returns normally unless an invariant breaks.
//! logship_fuzz::json_fields(br#"{"level":"info","msg":"hi"}"#);
//! logship_fuzz::cri(b"2026-11-30T10:00:00.123Z stdout F hello");
//! logship_fuzz::config(b"[sources.a]\ntype = \"stdin\"");
//! ```

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use logship_parsers::cri::{parse_cri, parse_cri_path};
use logship_parsers::docker::{
    parse_docker_api_timestamp_line, parse_docker_json, parse_docker_json_into,
};
use logship_parsers::json::{FieldSet, JsonValue, validate_object};
use logship_parsers::lines::LineSplitter;
use logship_parsers::logfmt::LogfmtPairs;
use logship_parsers::multiline::MultilineAggregator;
use logship_parsers::partial::PartialMerger;
use logship_parsers::timestamp::{format_rfc3339_nanos, parse_timestamp};
use logship_parsers::timestamp_format::TimestampParser;

/// A fuzz target: any bytes in, a panic only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/corpus/*` and `fuzz/libfuzzer/fuzz_targets/*`).
pub const TARGETS: &[(&str, Target)] = &[
    ("json_fields", json_fields),
    ("docker_json", docker_json),
    ("cri", cri),
    ("logfmt", logfmt),
    ("timestamp", timestamp),
    ("lines", lines),
    ("multiline", multiline),
    ("partial", partial),
    ("config", config),
    ("loki_answer", loki_answer),
];

/// Asserts that `inner` is a subslice of `outer`.
fn within(inner: &[u8], outer: &[u8]) {
    let (start, end) = (
        outer.as_ptr() as usize,
        outer.as_ptr() as usize + outer.len(),
    );
    let p = inner.as_ptr() as usize;
    assert!(
        inner.is_empty() || (p >= start && p + inner.len() <= end),
        "a value points outside its line"
    );
}

/// JSON field extraction: the paths the agent's transforms use, on any line.
pub fn json_fields(data: &[u8]) {
    static FIELDS: OnceLock<FieldSet> = OnceLock::new();
    let fields = FIELDS.get_or_init(|| {
        FieldSet::new(&[
            "time", "level", "service", "trace_id", "span.id", "a.b.c", "msg",
        ])
    });
    let mut values = [None; 7];
    let extracted = fields.extract(data, &mut values);
    assert_eq!(
        extracted.is_ok(),
        validate_object(data).is_ok(),
        "extraction and validation disagree about whether the line is a JSON object"
    );
    for value in values.into_iter().flatten() {
        if let Some(range) = value.range_in(data) {
            assert!(range.end <= data.len() && range.start <= range.end);
        }
        match &value {
            JsonValue::Str(s) => {
                within(s.raw(), data);
                let text = s.decode();
                // Decoding is lossy for invalid UTF-8 but always yields text.
                assert!(text.len() <= s.raw().len() * 3 + 3);
            }
            JsonValue::Number(raw) | JsonValue::Object(raw) | JsonValue::Array(raw) => {
                within(raw, data);
            }
            JsonValue::Bool(_) | JsonValue::Null => {}
        }
        let _ = value.as_text();
    }
}

/// Docker's json-file lines and its logs API's timestamped lines.
pub fn docker_json(data: &[u8]) {
    if let Ok(line) = parse_docker_json(data) {
        if let std::borrow::Cow::Borrowed(log) = &line.log {
            within(log, data);
        }
        let bytes = Bytes::copy_from_slice(data);
        let mut scratch = BytesMut::new();
        let record = parse_docker_json_into(&bytes, &mut scratch)
            .expect("the two decoders agree on what is valid");
        assert_eq!(
            &record.log[..],
            &line.log[..],
            "the two decoders agree on the log"
        );
        assert_eq!(record.time_ns, line.time_ns);
        assert_eq!(record.partial, line.partial);
    }
    if let Some((_, rest)) = parse_docker_api_timestamp_line(data) {
        within(rest, data);
    }
}

/// CRI log lines and pod log paths.
pub fn cri(data: &[u8]) {
    if let Ok(line) = parse_cri(data) {
        within(line.log, data);
    }
    if let Ok(path) = std::str::from_utf8(data)
        && let Some(p) = parse_cri_path(path)
    {
        for part in [p.namespace, p.pod, p.container] {
            assert!(path.contains(part), "path parts come from the path");
        }
    }
}

/// logfmt pairs: every key and value is a slice of the line, and iteration ends.
pub fn logfmt(data: &[u8]) {
    let mut n = 0;
    for (key, value) in LogfmtPairs::new(data) {
        within(key, data);
        within(value.raw(), data);
        assert!(value.range().end <= data.len());
        let _ = value.decode();
        n += 1;
        assert!(n <= data.len() + 1, "more pairs than bytes");
    }
}

/// Timestamps: whatever parses formats back to a time that parses to the same nanosecond.
pub fn timestamp(data: &[u8]) {
    if let Some(ns) = parse_timestamp(data) {
        let mut text = String::new();
        format_rfc3339_nanos(ns, &mut text);
        assert_eq!(
            parse_timestamp(text.as_bytes()),
            Some(ns),
            "{text} does not round-trip"
        );
    }
    static PARSERS: OnceLock<Vec<TimestampParser>> = OnceLock::new();
    let parsers = PARSERS.get_or_init(|| {
        [
            ("%Y-%m-%d %H:%M:%S,%f", "Europe/Berlin"),
            ("%d/%b/%Y:%H:%M:%S %z", "UTC"),
            ("%b %d %H:%M:%S", "UTC"),
        ]
        .iter()
        .filter_map(|(f, z)| TimestampParser::new(Some(f), Some(z)).ok())
        .collect()
    });
    for parser in parsers {
        let _ = parser.parse(data, 1_780_000_000_000_000_000);
    }
}

/// Splitting read buffers into lines: every byte is accounted for, no line is over the bound.
pub fn lines(data: &[u8]) {
    const MAX: usize = 64;
    let mut splitter = LineSplitter::new(MAX);
    // Feed in two reads, split where the first byte says, as reads arrive.
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let mut buf = BytesMut::from(&data[..cut]);
    let mut consumed = splitter.split(&mut buf, |l| assert!(l.line.len() <= MAX));
    buf.extend_from_slice(&data[cut..]);
    consumed += splitter.split(&mut buf, |l| assert!(l.line.len() <= MAX));
    consumed += splitter.finish(&mut buf, |l| assert!(l.line.len() <= MAX));
    assert_eq!(
        consumed as u64,
        splitter.consumed(),
        "the offsets add up to what was consumed"
    );
    assert!(consumed + buf.len() <= data.len());
}

/// Multiline records: every line ends up in exactly one record, within the bounds.
pub fn multiline(data: &[u8]) {
    const MAX_LINES: usize = 5;
    const MAX_BYTES: usize = 200;
    static START: OnceLock<regex::bytes::Regex> = OnceLock::new();
    let start = START.get_or_init(|| regex::bytes::Regex::new(r"^\S").expect("a valid pattern"));
    let mut agg = MultilineAggregator::new(start.clone(), MAX_LINES, MAX_BYTES);
    let mut lines_in = 0;
    let mut lines_out = 0;
    let mut check = |r: logship_parsers::multiline::Record| {
        assert!(r.lines >= 1 && r.lines <= MAX_LINES);
        assert!(r.first_tag <= r.last_tag);
        lines_out += r.lines;
    };
    for (tag, line) in data.split(|b| *b == b'\n').enumerate() {
        lines_in += 1;
        if let Some(r) = agg.push(Bytes::copy_from_slice(line), tag as u64) {
            check(r);
        }
    }
    if let Some(r) = agg.flush() {
        check(r);
    }
    assert_eq!(lines_in, lines_out, "every line is in exactly one record");
}

/// Runtime partial pieces: joined lines are the pieces in order, cut at the bound.
pub fn partial(data: &[u8]) {
    const MAX: usize = 100;
    let mut merger = PartialMerger::new(MAX);
    let mut expected = Vec::new();
    let check = |m: logship_parsers::partial::MergedLine, expected: &mut Vec<u8>| {
        let want = &expected[..expected.len().min(MAX)];
        assert_eq!(&m.line[..], want, "pieces joined in order");
        assert_eq!(m.truncated, expected.len() > MAX);
        expected.clear();
    };
    // Each piece: one byte says its length and whether it is partial, then the piece.
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head & 0x3f).min(tail.len());
        let (piece, after) = tail.split_at(len);
        let is_partial = head & 0x80 != 0;
        expected.extend_from_slice(piece);
        if let Some(m) = merger.push(piece, is_partial) {
            check(m, &mut expected);
        }
        rest = after;
    }
    if let Some(m) = merger.flush() {
        check(m, &mut expected);
    }
}

/// The config loader: any text gives a config or errors that point inside the text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "SET").then(|| "value".to_owned());
    if let Err(e) = logship_config::load_str(text, "fuzz.toml", &env) {
        assert!(!e.problems().is_empty(), "an error says what is wrong");
        for p in e.problems() {
            assert!(p.span().start <= p.span().end);
            assert!(p.line() >= 1 && p.column() >= 1);
            let _ = p.to_string();
        }
    }
}

/// Loki's answers to a push: counts never exceed what the text says, refusals parse.
pub fn loki_answer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    use logship_agent::sinks::loki::{refusals, rejection};
    if let Some(n) = rejection::ignored_entries(&text) {
        assert!(n > 0 || text.contains("total ignored: 0"));
    }
    for r in refusals::refusals(&text) {
        for (k, v) in &r.stream {
            assert!(text.contains(k.as_str()) || k.is_empty());
            let _ = v;
        }
    }
}
