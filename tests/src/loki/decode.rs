//! Decoding a push body exactly as Loki's `push.ParseLokiRequest` does: `Content-Encoding`
//! first (none, `snappy` = passthrough, `gzip`, raw `deflate`), then `application/json` →
//! JSON, anything else → protobuf inside raw (block) snappy.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use prost::Message;
use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use super::labels::{LabelPairs, is_valid_label_name, parse_labels};
use super::proto::PushRequest;

/// Loki's `max_recv_msg_size` default: a decompressed body above this is refused.
const MAX_DECOMPRESSED: usize = 100 << 20;

/// A push body that failed to decode; every variant is a 400 in Loki (the text is the body).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// `mime.ParseMediaType` failed (for example no `Content-Type` at all).
    #[error("mime: {0}")]
    ContentType(String),
    /// An encoding Loki does not know.
    #[error("Content-Encoding {0:?} not supported")]
    ContentEncoding(String),
    /// gzip or deflate stream was corrupt.
    #[error("{0}")]
    Decompress(String),
    /// Raw snappy failed (framed snappy ends up here).
    #[error("snappy: {0}")]
    Snappy(String),
    /// The protobuf did not decode.
    #[error("proto: {0}")]
    Proto(String),
    /// The JSON did not decode (a numeric timestamp ends up here).
    #[error("{0}")]
    Json(String),
    /// A stream's labels did not parse.
    #[error("couldn't parse labels: {0}")]
    Labels(String),
}

/// Body encoding chosen by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`.
    Json,
    /// Anything else: protobuf in raw snappy.
    Protobuf,
}

/// One decoded entry, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEntry {
    /// Unix nanoseconds.
    pub timestamp_ns: i64,
    /// The line's bytes.
    pub line: Vec<u8>,
    /// Structured metadata in the order sent.
    pub metadata: Vec<(String, String)>,
}

/// One decoded stream, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedStream {
    /// Labels as parsed (sorted, empty values dropped, duplicates kept).
    pub labels: LabelPairs,
    /// Entries in the order sent.
    pub entries: Vec<DecodedEntry>,
}

/// `mime.ParseMediaType` reduced to what Loki uses: the lower-cased media type, or an error
/// for an empty or malformed value.
pub fn media_type(content_type: Option<&str>) -> Result<String, DecodeError> {
    let v = content_type.unwrap_or("");
    let base = v.split(';').next().unwrap_or("").trim();
    if base.is_empty() {
        return Err(DecodeError::ContentType("no media type".to_owned()));
    }
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c) && c != b' ')
    };
    let ok = match base.split_once('/') {
        Some((t, sub)) => is_token(t) && is_token(sub),
        None => is_token(base),
    };
    if !ok {
        return Err(DecodeError::ContentType("expected token".to_owned()));
    }
    Ok(base.to_ascii_lowercase())
}

/// The body format for a media type, as Loki picks it.
pub fn body_format(media_type: &str) -> BodyFormat {
    if media_type == "application/json" {
        BodyFormat::Json
    } else {
        BodyFormat::Protobuf
    }
}

/// Undoes `Content-Encoding`. Exact, case-sensitive match like Loki's `switch`.
pub fn decode_content_encoding<'a>(
    encoding: Option<&str>,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, DecodeError> {
    use std::borrow::Cow;
    match encoding.unwrap_or("") {
        "" | "snappy" => Ok(Cow::Borrowed(body)),
        "gzip" => read_limited(flate2::read::GzDecoder::new(body)).map(Cow::Owned),
        // Go's compress/flate is raw DEFLATE (RFC 1951), not zlib.
        "deflate" => read_limited(flate2::read::DeflateDecoder::new(body)).map(Cow::Owned),
        other => Err(DecodeError::ContentEncoding(other.to_owned())),
    }
}

fn read_limited(r: impl Read) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    r.take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Decompress(e.to_string()))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(DecodeError::Decompress(
            "decompressed body over the limit".to_owned(),
        ));
    }
    Ok(out)
}

/// Raw-snappy protobuf → streams.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<DecodedStream>, DecodeError> {
    let raw = snappy_decompress(body)?;
    let req = PushRequest::decode(raw.as_slice()).map_err(|e| DecodeError::Proto(e.to_string()))?;
    req.streams
        .into_iter()
        .map(|s| {
            let labels = parse_labels(&s.labels).map_err(|e| DecodeError::Labels(e.to_string()))?;
            let entries = s
                .entries
                .into_iter()
                .map(|e| DecodedEntry {
                    // A missing timestamp is Go's zero time: far too old, rejected by validation.
                    timestamp_ns: e.timestamp.map_or(i64::MIN, |t| t.as_nanos()),
                    line: e.line,
                    metadata: e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect(),
                })
                .collect();
            Ok(DecodedStream { labels, entries })
        })
        .collect()
}

/// Raw (block) snappy, as Go's `snappy.Decode`; framed snappy fails here.
pub fn snappy_decompress(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > MAX_DECOMPRESSED {
        return Err(DecodeError::Snappy(
            "decoded length over the limit".to_owned(),
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))
}

#[derive(Deserialize)]
struct JsonPush {
    #[serde(default)]
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<JsonEntry>,
}

/// `["<ns>", "<line>"(, {"k":"v"})]`.
struct JsonEntry(DecodedEntry);

impl<'de> Deserialize<'de> for JsonEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(EntryVisitor)
    }
}

struct EntryVisitor;

const ARITY: &str = "array must have at least 2 and up to 3 values";

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = JsonEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[\"<unix ns as a string>\", \"<line>\", {metadata}]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonEntry, A::Error> {
        // Loki reads the timestamp with ReadString: a JSON number is an error.
        let ts: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom(ARITY))?;
        let timestamp_ns: i64 = ts
            .parse()
            .map_err(|_| de::Error::custom(format!("invalid timestamp {ts:?}")))?;
        let line: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom(ARITY))?;
        let meta: Option<BTreeMap<String, String>> = seq.next_element()?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(ARITY));
        }
        Ok(JsonEntry(DecodedEntry {
            timestamp_ns,
            line: line.into_bytes(),
            metadata: meta.unwrap_or_default().into_iter().collect(),
        }))
    }
}

/// JSON body → streams. Label maps go through the same rules as protobuf label text: names
/// must be Prometheus label names, empty values are dropped.
pub fn decode_json(body: &[u8]) -> Result<Vec<DecodedStream>, DecodeError> {
    let push: JsonPush =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    push.streams
        .into_iter()
        .map(|s| {
            let mut labels = LabelPairs::new();
            for (k, v) in s.stream {
                if !is_valid_label_name(&k) {
                    return Err(DecodeError::Labels(format!("invalid label name {k:?}")));
                }
                if !v.is_empty() {
                    labels.push((k, v));
                }
            }
            Ok(DecodedStream {
                labels,
                entries: s.values.into_iter().map(|e| e.0).collect(),
            })
        })
        .collect()
}

/// The whole decode: encoding, then format. Returns the format and the streams.
pub fn decode_body(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<(BodyFormat, Vec<DecodedStream>), DecodeError> {
    let mt = media_type(content_type)?;
    let format = body_format(&mt);
    let plain = decode_content_encoding(content_encoding, body)?;
    let streams = match format {
        BodyFormat::Json => decode_json(&plain)?,
        BodyFormat::Protobuf => decode_protobuf(&plain)?,
    };
    Ok((format, streams))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loki::proto::{EntryAdapter, LabelPairAdapter, StreamAdapter, Timestamp};

    fn proto_body() -> Vec<u8> {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="app", level="info"}"#.to_owned(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1_718_000_000,
                        nanos: 5,
                    }),
                    line: b"\xffraw".to_vec(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "trace_id".to_owned(),
                        value: "abc".to_owned(),
                    }],
                    parsed: vec![],
                }],
                hash: 0,
            }],
            format: String::new(),
        };
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn protobuf_decodes_and_keeps_raw_line_bytes() {
        let (fmt, streams) =
            decode_body(Some("application/x-protobuf"), None, &proto_body()).unwrap();
        assert_eq!(fmt, BodyFormat::Protobuf);
        assert_eq!(streams.len(), 1);
        assert_eq!(
            streams[0].labels,
            vec![
                ("job".to_owned(), "app".to_owned()),
                ("level".to_owned(), "info".to_owned())
            ]
        );
        let e = &streams[0].entries[0];
        assert_eq!(e.timestamp_ns, 1_718_000_000_000_000_005);
        assert_eq!(e.line, b"\xffraw");
        assert_eq!(e.metadata, vec![("trace_id".to_owned(), "abc".to_owned())]);
    }

    #[test]
    fn any_non_json_type_is_protobuf_and_snappy_encoding_is_ignored() {
        let (fmt, _) = decode_body(Some("text/plain"), Some("snappy"), &proto_body()).unwrap();
        assert_eq!(fmt, BodyFormat::Protobuf);
    }

    #[test]
    fn content_type_and_encoding_errors() {
        assert!(matches!(
            decode_body(None, None, &proto_body()),
            Err(DecodeError::ContentType(_))
        ));
        assert!(matches!(
            decode_body(Some("  "), None, &proto_body()),
            Err(DecodeError::ContentType(_))
        ));
        let err = decode_body(Some("application/x-protobuf"), Some("br"), &proto_body())
            .unwrap_err()
            .to_string();
        assert_eq!(err, r#"Content-Encoding "br" not supported"#);
        assert!(matches!(
            decode_body(Some("application/x-protobuf"), Some("GZIP"), &proto_body()),
            Err(DecodeError::ContentEncoding(_))
        ));
    }

    #[test]
    fn framed_snappy_is_rejected() {
        let req = PushRequest::default().encode_to_vec();
        let mut framed = Vec::new();
        {
            use std::io::Write;
            let mut w = snap::write::FrameEncoder::new(&mut framed);
            w.write_all(&req).unwrap();
            w.write_all(b"padding so the frame is not empty").unwrap();
        }
        assert!(decode_body(Some("application/x-protobuf"), None, &framed).is_err());
    }

    #[test]
    fn deflate_is_raw_deflate() {
        use std::io::Write;
        let json = br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"]]}]}"#;
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(json).unwrap();
        let body = enc.finish().unwrap();
        let (_, s) = decode_body(Some("application/json"), Some("deflate"), &body).unwrap();
        assert_eq!(s[0].entries[0].line, b"x");
        // zlib framing is not what Go's flate reader takes.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(json).unwrap();
        let zbody = z.finish().unwrap();
        assert!(decode_body(Some("application/json"), Some("deflate"), &zbody).is_err());
    }

    #[test]
    fn json_shapes() {
        let ok = br#"{"streams":[{"stream":{"job":"a","empty":""},"values":[
            ["1718000000000000001","l1"],
            ["-5","l2",{"trace_id":"t","span_id":"s"}]]}]}"#;
        let (_, s) = decode_body(Some("application/json; charset=utf-8"), None, ok).unwrap();
        assert_eq!(s[0].labels, vec![("job".to_owned(), "a".to_owned())]);
        assert_eq!(s[0].entries[0].timestamp_ns, 1_718_000_000_000_000_001);
        assert_eq!(s[0].entries[1].timestamp_ns, -5);
        assert_eq!(s[0].entries[1].metadata.len(), 2);
        for bad in [
            &br#"{"streams":[{"stream":{"a":"b"},"values":[[1718000000,"l"]]}]}"#[..],
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",{},"x"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["x1","l"]]}]}"#,
            br#"{"streams":[{"stream":{"a":"b"},"values":[["1","l",{"k":1}]]}]}"#,
            br#"{"streams":[{"stream":{"a.b":"c"},"values":[["1","l"]]}]}"#,
            br#"{"streams":[{"stream":{"a":3},"values":[["1","l"]]}]}"#,
            b"not json",
        ] {
            assert!(
                decode_body(Some("application/json"), None, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
