//! The protobuf push body, written by hand, then compressed with raw (block) snappy.
//!
//! The bytes follow Loki's `pkg/push/push.proto` exactly:
//!
//! ```text
//! PushRequest      { repeated StreamAdapter streams = 1; }
//! StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; }
//! EntryAdapter     { Timestamp timestamp = 1; string line = 2;
//!                    repeated LabelPairAdapter structuredMetadata = 3; }
//! LabelPairAdapter { string name = 1; string value = 2; }
//! Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//! ```
//!
//! Writing the wire format directly into one reused buffer costs no allocation per line, where
//! building `prost` structs would allocate a `String` per line and per metadata pair. Every
//! length prefix is computed before its message is written (a size pass and a write pass over
//! the same arithmetic), so the output is canonical protobuf: zero and empty fields are left out,
//! except the timestamp, which gogoproto declares non-nullable and is always present.
//!
//! Lines go out as their raw bytes even when they are not UTF-8: Loki's gogoproto decoder does
//! not validate `string` fields, and changing the bytes would break "Loki stores the original
//! line". Metadata values are made valid UTF-8 (invalid sequences become U+FFFD), which is
//! what Loki's distributor would do to them anyway, and keeps the message decodable by strict
//! protobuf libraries.

use std::borrow::Cow;

use bytes::Bytes;

use super::batch::Stream;
use super::encode::EncodeError;
use crate::pipeline::Event;

/// Encodes batches as snappy-compressed `PushRequest`s, reusing its buffers between batches.
pub struct ProtobufEncoder {
    proto: Vec<u8>,
    snappy: snap::raw::Encoder,
    compressed: Vec<u8>,
    /// Encoded length of each stream and of each entry, from the size pass.
    stream_lens: Vec<usize>,
    entry_lens: Vec<usize>,
}

impl std::fmt::Debug for ProtobufEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufEncoder").finish_non_exhaustive()
    }
}

impl Default for ProtobufEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ProtobufEncoder {
    /// An encoder with empty buffers; they grow to the largest batch seen and stay.
    pub fn new() -> Self {
        Self {
            proto: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            compressed: Vec::new(),
            stream_lens: Vec::new(),
            entry_lens: Vec::new(),
        }
    }

    /// The uncompressed `PushRequest` bytes for `streams`, valid until the next call.
    pub fn encode_uncompressed(&mut self, streams: &[Stream]) -> &[u8] {
        // Metadata values are almost always valid UTF-8 (trace ids are ASCII), so the first
        // try sizes them by their raw length and checks each one only as it is copied, right
        // after its line, while those bytes are in cache: checking them in the size pass was
        // a cache miss per line (a third of this function's samples on W1). A value that
        // needs repair changes the lengths, so then the whole request is encoded again.
        if !self.try_encode(streams, Metadata::AsIs) {
            let repaired = self.try_encode(streams, Metadata::Repaired);
            debug_assert!(repaired, "the repairing pass never gives up");
        }
        &self.proto
    }

    /// One size pass and one write pass into `self.proto`; false when `metadata` is
    /// [`Metadata::AsIs`] and a value turned out not to be UTF-8.
    fn try_encode(&mut self, streams: &[Stream], metadata: Metadata) -> bool {
        // Size pass: every length prefix, remembered.
        self.stream_lens.clear();
        self.entry_lens.clear();
        let mut total = 0;
        for stream in streams {
            let mut len = optional_field_len(stream.labels().selector().len());
            for event in stream.entries() {
                let entry = entry_len(event, metadata);
                self.entry_lens.push(entry);
                len += field_len(entry);
            }
            self.stream_lens.push(len);
            total += field_len(len);
        }
        // Write pass.
        let out = &mut self.proto;
        out.clear();
        out.reserve(total);
        let mut entry_lens = self.entry_lens.iter();
        for (stream, &stream_len) in streams.iter().zip(&self.stream_lens) {
            let mut head = Header::<64>::new();
            head.push(TAG_1_LEN); // PushRequest.streams
            head.varint(stream_len as u64);
            out.extend_from_slice(head.bytes());
            put_bytes_field(out, TAG_1_LEN, stream.labels().selector().as_bytes()); // labels
            for (event, &len) in stream.entries().iter().zip(&mut entry_lens) {
                if !write_entry(out, event, len, metadata) {
                    return false;
                }
            }
        }
        true
    }

    /// The snappy-compressed `PushRequest` for `streams`, ready to send.
    pub fn encode(&mut self, streams: &[Stream]) -> Result<Bytes, EncodeError> {
        self.encode_uncompressed(streams);
        let bound = snap::raw::max_compress_len(self.proto.len());
        if bound == 0 {
            return Err(EncodeError::TooLarge(self.proto.len()));
        }
        if self.compressed.len() < bound {
            self.compressed.resize(bound, 0);
        }
        let n = self
            .snappy
            .compress(&self.proto, &mut self.compressed[..bound])
            .map_err(|e| EncodeError::Snappy(e.to_string()))?;
        Ok(Bytes::copy_from_slice(&self.compressed[..n]))
    }
}

// Wire-format tags: (field number << 3) | wire type (0 = varint, 2 = length-delimited).
const TAG_1_LEN: u8 = 1 << 3 | 2;
const TAG_2_LEN: u8 = 2 << 3 | 2;
const TAG_3_LEN: u8 = 3 << 3 | 2;
const TAG_1_VARINT: u8 = 1 << 3;
const TAG_2_VARINT: u8 = 2 << 3;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// How an encoding pass treats metadata values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metadata {
    /// Copied as they are; the pass gives up at the first value that is not UTF-8.
    AsIs,
    /// Made valid UTF-8 (invalid sequences become U+FFFD), sized after repair.
    Repaired,
}

/// Bytes of `v` as a base-128 varint.
#[inline]
fn varint_len(v: u64) -> usize {
    // ceil(significant bits / 7), with 0 taking one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The tags and varints before a payload, gathered on the stack and appended in one copy
/// (one capacity check instead of one per byte). `N` bytes of room: 64 hold five tags and five
/// varints; [`PAIRS_ROOM`] holds an entry's small metadata pairs whole.
struct Header<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Header<N> {
    #[inline]
    fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }

    /// Appends `src` in fixed-size moves, the last one overlapping the one before it: for the
    /// few bytes of a metadata name or value, a call into `memcpy` costs more than the copy
    /// (it was 3.4 % of the agent on W1), and so did a byte-at-a-time tail (a 7-byte
    /// `span_id` is all tail).
    #[inline]
    fn append(&mut self, src: &[u8]) {
        let n = src.len();
        let dst = &mut self.buf[self.len..self.len + n];
        if n >= 8 {
            for (d, s) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
                d.copy_from_slice(s);
            }
            dst[n - 8..].copy_from_slice(&src[n - 8..]);
        } else if n >= 4 {
            dst[..4].copy_from_slice(&src[..4]);
            dst[n - 4..].copy_from_slice(&src[n - 4..]);
        } else if n >= 2 {
            dst[..2].copy_from_slice(&src[..2]);
            dst[n - 2..].copy_from_slice(&src[n - 2..]);
        } else if n == 1 {
            dst[0] = src[0];
        }
        self.len += n;
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Stack room for an entry's metadata pairs, written whole when they fit (trace and span ids
/// take about 80 bytes).
const PAIRS_ROOM: usize = 256;

#[cfg(test)]
fn put_varint(out: &mut Vec<u8>, v: u64) {
    let mut head = Header::<64>::new();
    head.varint(v);
    out.extend_from_slice(head.bytes());
}

/// Bytes of a one-byte-tag length-delimited field whose payload is `len` bytes.
#[inline]
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Same, but an empty string/bytes field is left out entirely (proto3 default).
#[inline]
fn optional_field_len(len: usize) -> usize {
    if len == 0 { 0 } else { field_len(len) }
}

#[inline]
fn put_bytes_field(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        let mut head = Header::<64>::new();
        head.push(tag);
        head.varint(bytes.len() as u64);
        out.extend_from_slice(head.bytes());
        out.extend_from_slice(bytes);
    }
}

/// `google.protobuf.Timestamp` parts of Unix nanoseconds: seconds rounded down and a
/// non-negative nanosecond remainder, as the well-known type requires for instants before 1970.
#[inline]
fn split_timestamp(ns: i64) -> (i64, i32) {
    // rem_euclid of a positive divisor is in 0..1e9, which fits an i32.
    (
        ns.div_euclid(NANOS_PER_SEC),
        ns.rem_euclid(NANOS_PER_SEC) as i32,
    )
}

#[inline]
fn timestamp_len(seconds: i64, nanos: i32) -> usize {
    let s = if seconds == 0 {
        0
    } else {
        1 + varint_len(seconds as u64)
    };
    let n = if nanos == 0 {
        0
    } else {
        1 + varint_len(nanos as u64)
    };
    s + n
}

/// A metadata value as valid UTF-8; borrowed (no allocation) unless it needed repair.
#[inline]
fn metadata_value(value: &[u8]) -> Cow<'_, [u8]> {
    if is_utf8(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(String::from_utf8_lossy(value).into_owned().into_bytes())
    }
}

/// UTF-8 validity, with ASCII (trace and span ids, levels) decided by the inlined `is_ascii`:
/// calling `str::from_utf8` for every short value cost several percent of the agent's CPU.
#[inline]
fn is_utf8(value: &[u8]) -> bool {
    value.is_ascii() || std::str::from_utf8(value).is_ok()
}

#[inline]
fn pair_len(name: &str, value_len: usize) -> usize {
    optional_field_len(name.len()) + optional_field_len(value_len)
}

/// The encoded length of an entry, its metadata values sized as `metadata` writes them.
#[inline]
fn entry_len(event: &Event, metadata: Metadata) -> usize {
    let (seconds, nanos) = split_timestamp(event.timestamp_ns);
    let mut len = field_len(timestamp_len(seconds, nanos)) + optional_field_len(event.line.len());
    for (name, value) in &event.metadata {
        // `AsIs` must not read the value: the bytes are not in cache yet (see
        // `encode_uncompressed`).
        let value_len = match metadata {
            Metadata::AsIs => value.len(),
            Metadata::Repaired => metadata_value(value).len(),
        };
        len += field_len(pair_len(name, value_len));
    }
    len
}

/// Writes one `StreamAdapter.entries` field of payload length `len`; false, with the entry
/// half written, when `metadata` is [`Metadata::AsIs`] and a value is not valid UTF-8.
#[inline]
fn write_entry(out: &mut Vec<u8>, event: &Event, len: usize, metadata: Metadata) -> bool {
    let (seconds, nanos) = split_timestamp(event.timestamp_ns);
    let mut head = Header::<64>::new();
    head.push(TAG_2_LEN); // StreamAdapter.entries
    head.varint(len as u64);
    head.push(TAG_1_LEN); // EntryAdapter.timestamp
    head.varint(timestamp_len(seconds, nanos) as u64);
    if seconds != 0 {
        head.push(TAG_1_VARINT);
        // int64 is encoded as its two's-complement u64 (ten bytes when negative).
        head.varint(seconds as u64);
    }
    if nanos != 0 {
        head.push(TAG_2_VARINT);
        head.varint(nanos as u64);
    }
    if !event.line.is_empty() {
        head.push(TAG_2_LEN); // EntryAdapter.line
        head.varint(event.line.len() as u64);
    }
    out.extend_from_slice(head.bytes());
    out.extend_from_slice(&event.line);
    if event.metadata.is_empty() {
        return true;
    }
    if metadata == Metadata::AsIs {
        if !event.metadata.iter().all(|(_, value)| is_utf8(value)) {
            return false;
        }
        // Each pair is at most 3 tags, 3 varints of up to 10 bytes, the name and the value.
        let room: usize = event
            .metadata
            .iter()
            .map(|(name, value)| 33 + name.len() + value.len())
            .sum();
        if room <= PAIRS_ROOM {
            let mut pairs = Header::<PAIRS_ROOM>::new();
            for (name, value) in &event.metadata {
                pairs.push(TAG_3_LEN); // EntryAdapter.structuredMetadata
                pairs.varint(pair_len(name, value.len()) as u64);
                for (tag, bytes) in [(TAG_1_LEN, name.as_bytes()), (TAG_2_LEN, &value[..])] {
                    if !bytes.is_empty() {
                        pairs.push(tag);
                        pairs.varint(bytes.len() as u64);
                        pairs.append(bytes);
                    }
                }
            }
            out.extend_from_slice(pairs.bytes());
            return true;
        }
    }
    for (name, value) in &event.metadata {
        let value = match metadata {
            Metadata::AsIs => Cow::Borrowed(&value[..]),
            Metadata::Repaired => metadata_value(value),
        };
        let mut head = Header::<64>::new();
        head.push(TAG_3_LEN); // EntryAdapter.structuredMetadata
        head.varint(pair_len(name, value.len()) as u64);
        out.extend_from_slice(head.bytes());
        put_bytes_field(out, TAG_1_LEN, name.as_bytes());
        put_bytes_field(out, TAG_2_LEN, &value);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{LabelSet, MetadataName};
    use crate::sinks::loki::test_support::proto;
    use proptest::prelude::*;
    use prost::Message;

    fn event(ts: i64, line: &[u8], meta: &[(&str, &[u8])]) -> Event {
        let mut e = Event::new(ts, Bytes::copy_from_slice(line), LabelSet::empty());
        for (k, v) in meta {
            e.metadata
                .push((MetadataName::from(*k), Bytes::copy_from_slice(v)));
        }
        e
    }

    /// What prost makes of `streams`, the way the test receiver (and Loki) decodes them.
    fn expected(streams: &[Stream]) -> proto::PushRequest {
        proto::PushRequest {
            streams: streams
                .iter()
                .map(|s| proto::StreamAdapter {
                    labels: s.labels().selector().to_owned(),
                    entries: s
                        .entries()
                        .iter()
                        .map(|e| {
                            let (seconds, nanos) = split_timestamp(e.timestamp_ns);
                            proto::EntryAdapter {
                                timestamp: Some(proto::Timestamp { seconds, nanos }),
                                line: e.line.to_vec(),
                                structured_metadata: e
                                    .metadata
                                    .iter()
                                    .map(|(k, v)| proto::LabelPairAdapter {
                                        name: k.to_string(),
                                        value: String::from_utf8_lossy(v).into_owned(),
                                    })
                                    .collect(),
                                parsed: vec![],
                            }
                        })
                        .collect(),
                    hash: 0,
                })
                .collect(),
            format: String::new(),
        }
    }

    fn decode(body: &[u8]) -> proto::PushRequest {
        let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
        proto::PushRequest::decode(raw.as_slice()).unwrap()
    }

    #[test]
    fn round_trips_through_prost() {
        let a = LabelSet::new([("service", "api"), ("level", "info")]);
        let b = LabelSet::new([("service", "worker")]);
        let streams = vec![
            Stream::new(
                a,
                vec![
                    event(
                        1_718_000_000_123_456_789,
                        br#"{"msg":"created","trace_id":"4bf9"}"#,
                        &[("trace_id", b"4bf9"), ("span_id", b"00f0")],
                    ),
                    event(1_718_000_000_000_000_000, b"no metadata", &[]),
                ],
            ),
            Stream::new(
                b,
                vec![
                    event(0, b"epoch", &[]),
                    event(-1, b"just before 1970", &[]),
                    event(-1_500_000_000, b"", &[("k", b"")]),
                    event(i64::MIN, b"min", &[]),
                    event(i64::MAX, b"max", &[]),
                    event(5, b"\xff\xfe not utf-8 \xc3", &[("bad", b"\xffx")]),
                ],
            ),
        ];
        let mut enc = ProtobufEncoder::new();
        let body = enc.encode(&streams).unwrap();
        let got = decode(&body);
        assert_eq!(got, expected(&streams));
        // Times come back exact, including before 1970 and at the ends of the i64 range
        // (computed in i128: `seconds * 1e9` alone overflows at i64::MIN).
        let times: Vec<i64> = got.streams[1]
            .entries
            .iter()
            .map(|e| {
                let t = e.timestamp.unwrap();
                let ns = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
                i64::try_from(ns).unwrap()
            })
            .collect();
        assert_eq!(times, vec![0, -1, -1_500_000_000, i64::MIN, i64::MAX, 5]);
        assert_eq!(got.streams[1].entries[5].line, b"\xff\xfe not utf-8 \xc3");
        assert_eq!(
            got.streams[1].entries[5].structured_metadata[0].value,
            "\u{FFFD}x"
        );
        assert_eq!(got.streams[1].labels, r#"{service="worker"}"#);
    }

    #[test]
    fn output_is_canonical_protobuf() {
        // prost writes canonical proto3; our bytes must be identical, not just decodable.
        let streams = vec![Stream::new(
            LabelSet::new([("a", "b")]),
            vec![
                event(1_000_000_001, b"line", &[("trace_id", b"t")]),
                event(0, b"", &[]),
            ],
        )];
        let mut enc = ProtobufEncoder::new();
        let ours = enc.encode_uncompressed(&streams).to_vec();
        assert_eq!(ours, expected(&streams).encode_to_vec());
    }

    #[test]
    fn a_value_needing_repair_late_in_the_batch_reencodes_it_whole() {
        // The first pass gives up at the last entry, after writing all the others; what
        // comes out must be exactly the canonical bytes, and the next clean batch too.
        let clean = |ts| event(ts, b"{}", &[("trace_id", b"4bf9"), ("level", b"info")]);
        let mut first: Vec<Event> = (1..=500).map(clean).collect();
        first.push(event(501, b"{}", &[("trace_id", b"4b\xf9"), ("k", b"v")]));
        let bad = vec![
            Stream::new(LabelSet::new([("a", "1")]), (1..=300).map(clean).collect()),
            Stream::new(LabelSet::new([("a", "2")]), first),
        ];
        let good = vec![Stream::new(
            LabelSet::new([("a", "3")]),
            (1..=20).map(clean).collect(),
        )];
        let mut enc = ProtobufEncoder::new();
        for streams in [&good, &bad, &good, &bad] {
            let ours = enc.encode_uncompressed(streams).to_vec();
            assert_eq!(ours, expected(streams).encode_to_vec());
        }
        let got = decode(&enc.encode(&bad).unwrap());
        let last = got.streams[1].entries.last().unwrap();
        assert_eq!(last.structured_metadata[0].value, "4b\u{FFFD}");
        assert_eq!(last.structured_metadata[1].value, "v");
    }

    #[test]
    fn empty_batch_is_an_empty_message() {
        let mut enc = ProtobufEncoder::new();
        assert!(enc.encode_uncompressed(&[]).is_empty());
        assert_eq!(decode(&enc.encode(&[]).unwrap()).streams.len(), 0);
    }

    #[test]
    fn big_batch_with_long_lines_round_trips_and_buffers_are_reused() {
        let labels = LabelSet::new([("service", "big")]);
        let long = vec![b'x'; 300_000]; // a three-byte length varint
        let mut entries: Vec<Event> = (0..20_000)
            .map(|i| {
                event(
                    1_700_000_000_000_000_000 + i,
                    format!("{{\"n\":{i},\"pad\":\"{}\"}}", "y".repeat(200)).as_bytes(),
                    &[("trace_id", b"0123456789abcdef0123456789abcdef")],
                )
            })
            .collect();
        entries.push(event(1, &long, &[]));
        let streams = vec![Stream::new(labels, entries)];
        let mut enc = ProtobufEncoder::new();
        let first = enc.encode(&streams).unwrap();
        assert_eq!(decode(&first), expected(&streams));
        let second = enc.encode(&streams).unwrap();
        assert_eq!(first, second, "reused buffers carry nothing over");
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            any::<i64>(),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(
                (
                    "[a-z_]{0,12}",
                    proptest::collection::vec(any::<u8>(), 0..40),
                ),
                0..4,
            ),
        )
            .prop_map(|(ts, line, meta)| {
                let mut e = Event::new(ts, Bytes::from(line), LabelSet::empty());
                for (k, v) in meta {
                    e.metadata
                        .push((MetadataName::from(k.as_str()), Bytes::from(v)));
                }
                e
            })
    }

    fn arb_streams() -> impl Strategy<Value = Vec<Stream>> {
        proptest::collection::vec(
            (
                proptest::collection::btree_map("[a-z_]{1,8}", "[ -~]{0,16}", 0..4),
                proptest::collection::vec(arb_event(), 0..20),
            ),
            0..5,
        )
        .prop_map(|streams| {
            streams
                .into_iter()
                .map(|(labels, entries)| Stream::new(LabelSet::new(labels), entries))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn arbitrary_events_round_trip(streams in arb_streams()) {
            let mut enc = ProtobufEncoder::new();
            let body = enc.encode(&streams).unwrap();
            prop_assert_eq!(decode(&body), expected(&streams));
        }

        #[test]
        fn ascii_metadata_of_every_length_is_canonical(
            pairs in proptest::collection::vec(("[a-z_]{0,20}", "[ -~]{0,40}"), 0..4),
        ) {
            // Clean values take the stack-buffer path, whose copies cover each length class.
            let meta: Vec<(&str, &[u8])> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
            let streams = vec![Stream::new(LabelSet::empty(), vec![event(7, b"l", &meta)])];
            let mut enc = ProtobufEncoder::new();
            let ours = enc.encode_uncompressed(&streams).to_vec();
            prop_assert_eq!(ours, expected(&streams).encode_to_vec());
        }

        #[test]
        fn varint_len_matches_encoding(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
        }
    }
}
