//! Counting the entries of a push body without building messages, for the ack-only mode the
//! throughput bench uses: raw snappy into a reused buffer, then a walk over the protobuf wire
//! format (`PushRequest.streams` = field 1, `StreamAdapter.entries` = field 2).

use std::cell::RefCell;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::decode::{BodyFormat, DecodeError, body_format, decode_content_encoding, media_type};

thread_local! {
    static SNAPPY_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Entries in a push body, or why it does not decode.
pub fn count_entries(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<usize, DecodeError> {
    let format = body_format(&media_type(content_type)?);
    let plain = decode_content_encoding(content_encoding, body)?;
    match format {
        BodyFormat::Json => count_json(&plain),
        BodyFormat::Protobuf => SNAPPY_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let len = snap::raw::decompress_len(&plain)
                .map_err(|e| DecodeError::Snappy(e.to_string()))?;
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let n = snap::raw::Decoder::new()
                .decompress(&plain, &mut buf[..len])
                .map_err(|e| DecodeError::Snappy(e.to_string()))?;
            count_proto(&buf[..n]).ok_or_else(|| DecodeError::Proto("malformed wire data".into()))
        }),
    }
}

fn count_json(body: &[u8]) -> Result<usize, DecodeError> {
    #[derive(Deserialize)]
    struct Push {
        #[serde(default)]
        streams: Vec<Stream>,
    }
    #[derive(Deserialize)]
    struct Stream {
        #[serde(default)]
        values: Vec<IgnoredAny>,
    }
    let p: Push = serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    Ok(p.streams.iter().map(|s| s.values.len()).sum())
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Calls `f(field, payload)` for each length-delimited field of `buf`, skipping others.
fn for_each_len_field(buf: &[u8], mut f: impl FnMut(u64, &[u8]) -> Option<()>) -> Option<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos = pos.checked_add(8)?,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                f(key >> 3, buf.get(pos..end)?)?;
                pos = end;
            }
            5 => pos = pos.checked_add(4)?,
            _ => return None,
        }
        if pos > buf.len() {
            return None;
        }
    }
    Some(())
}

/// Entries in an encoded `PushRequest`.
pub fn count_proto(buf: &[u8]) -> Option<usize> {
    let mut n = 0;
    for_each_len_field(buf, |field, stream| {
        if field == 1 {
            for_each_len_field(stream, |f, _| {
                if f == 2 {
                    n += 1;
                }
                Some(())
            })?;
        }
        Some(())
    })?;
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loki::proto::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
    use prost::Message;

    #[test]
    fn counts_match_prost() {
        let req = PushRequest {
            streams: (0..3)
                .map(|s| StreamAdapter {
                    labels: format!("{{s=\"{s}\"}}"),
                    entries: (0..(s * 7 + 1))
                        .map(|i| EntryAdapter {
                            timestamp: Some(Timestamp {
                                seconds: i64::from(i),
                                nanos: 1,
                            }),
                            line: vec![b'x'; 300],
                            structured_metadata: vec![],
                            parsed: vec![],
                        })
                        .collect(),
                    hash: 0,
                })
                .collect(),
            format: String::new(),
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap();
        assert_eq!(
            count_entries(Some("application/x-protobuf"), None, &body).unwrap(),
            1 + 8 + 15
        );
        assert!(count_proto(&[0x0a, 0x05, 0x01]).is_none());
        let json = br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"],["2","y"]]}]}"#;
        assert_eq!(
            count_entries(Some("application/json"), None, json).unwrap(),
            2
        );
    }
}
