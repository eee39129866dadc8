//! Docker log formats: json-file driver lines and timestamped logs-API lines.
//!
//! The json-file driver (`/var/lib/docker/containers/<id>/<id>-json.log`) writes one JSON
//! object per line: `{"log":"text\n","stream":"stdout","time":"2024-06-10T12:00:00.123456789Z"}`,
//! keys in any order, sometimes with `attrs`. A line longer than 16 KiB is split into several
//! objects; all but the last have a `log` that does not end in `\n` ([`DockerLine::partial`]),
//! and [`crate::partial::PartialMerger`] joins them.
//!
//! [`parse_docker_json`] validates the line with [`crate::json`] and unescapes `log`, borrowing
//! when the only escape is the final `\n`. [`parse_docker_json_into`] is the variant for the hot
//! path: it returns the log as `Bytes`, sliced from the line when possible and otherwise
//! unescaped into a caller-owned arena, so no line costs an allocation of its own.
//!
//! [`parse_docker_api_timestamp_line`] reads lines of the logs API with `timestamps=true`
//! (`2024-06-10T12:00:00.123456789Z the line`); the API's stream framing is handled by the
//! Docker client, not here.

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};

use crate::json::{FieldSet, JsonError, JsonStr, JsonValue};
use crate::stream::Stream;
use crate::timestamp::parse_timestamp;

/// Why a json-file line could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// The line is not a valid JSON object.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A required field is absent.
    #[error("docker json-file line has no \"{0}\" field")]
    MissingField(&'static str),
    /// A field is present but is not a string.
    #[error("docker json-file field \"{field}\" at byte {offset} is not a string")]
    NotAString {
        /// The field's name.
        field: &'static str,
        /// Byte offset of the value in the line.
        offset: usize,
    },
    /// `stream` is neither `stdout` nor `stderr`.
    #[error("docker json-file field \"stream\" at byte {offset} is not stdout or stderr")]
    InvalidStream {
        /// Byte offset of the value in the line.
        offset: usize,
    },
    /// `time` is not an RFC 3339 timestamp.
    #[error("docker json-file field \"time\" at byte {offset} is not an RFC 3339 timestamp")]
    InvalidTime {
        /// Byte offset of the value in the line.
        offset: usize,
    },
}

/// A decoded json-file line whose log borrows from the input when it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerLine<'a> {
    /// The unescaped log text without its trailing `\n`. Borrowed from the line when the only
    /// escape was that `\n` (use `Bytes::slice_ref` on the line to keep it without copying).
    pub log: Cow<'a, [u8]>,
    /// The stream the container wrote to.
    pub stream: Stream,
    /// The time Docker read the line, in Unix nanoseconds.
    pub time_ns: i64,
    /// The log did not end in `\n`: Docker split a longer line and more pieces follow.
    pub partial: bool,
}

/// A decoded json-file line with its log as `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRecord {
    /// The unescaped log text without its trailing `\n`.
    pub log: Bytes,
    /// The stream the container wrote to.
    pub stream: Stream,
    /// The time Docker read the line, in Unix nanoseconds.
    pub time_ns: i64,
    /// The log did not end in `\n`: Docker split a longer line and more pieces follow.
    pub partial: bool,
}

/// The fields common to both decoders, with `log` still escaped.
struct Fields<'a> {
    log: JsonStr<'a>,
    stream: Stream,
    time_ns: i64,
    partial: bool,
}

fn field_set() -> &'static FieldSet {
    static FIELDS: OnceLock<FieldSet> = OnceLock::new();
    FIELDS.get_or_init(|| FieldSet::new(&["log", "stream", "time"]))
}

fn string_field<'a>(
    value: Option<JsonValue<'a>>,
    name: &'static str,
    line: &[u8],
) -> Result<JsonStr<'a>, DockerError> {
    match value {
        Some(JsonValue::Str(s)) => Ok(s),
        Some(other) => Err(DockerError::NotAString {
            field: name,
            offset: other.range_in(line).map_or(0, |r| r.start),
        }),
        None => Err(DockerError::MissingField(name)),
    }
}

/// Whether escaped text ends in a `\n` escape (an odd run of backslashes before the `n`).
fn ends_with_newline_escape(raw: &[u8]) -> bool {
    let Some(before) = raw.strip_suffix(b"n") else {
        return false;
    };
    let backslashes = before.iter().rev().take_while(|&&b| b == b'\\').count();
    backslashes % 2 == 1
}

fn parse_fields(line: &[u8]) -> Result<Fields<'_>, DockerError> {
    let mut out = [None; 3];
    field_set().extract(line, &mut out)?;
    let log = string_field(out[0], "log", line)?;
    let stream = string_field(out[1], "stream", line)?;
    let time = string_field(out[2], "time", line)?;
    let stream = Stream::from_bytes(stream.raw()).ok_or(DockerError::InvalidStream {
        offset: stream.range().start,
    })?;
    let time_ns = if time.has_escapes() {
        parse_timestamp(time.decode().as_bytes())
    } else {
        parse_timestamp(time.raw())
    }
    .ok_or(DockerError::InvalidTime {
        offset: time.range().start,
    })?;
    let partial = !ends_with_newline_escape(log.raw());
    Ok(Fields {
        log,
        stream,
        time_ns,
        partial,
    })
}

/// If the log's only escape is its final `\n`, the raw text before it.
fn borrowable_log<'a>(log: &JsonStr<'a>, partial: bool) -> Option<&'a [u8]> {
    let raw = log.raw();
    if !log.has_escapes() {
        return Some(raw);
    }
    if partial {
        return None;
    }
    let body = &raw[..raw.len() - 2];
    memchr::memchr(b'\\', body).is_none().then_some(body)
}

/// Decodes one json-file line (without its own trailing newline).
///
/// ```
/// use logship_parsers::docker::parse_docker_json;
/// use logship_parsers::stream::Stream;
///
/// let line = br#"{"log":"hello\n","stream":"stderr","time":"2024-06-10T12:00:00.5Z"}"#;
/// let d = parse_docker_json(line).unwrap();
/// assert_eq!(&d.log[..], b"hello");
/// assert_eq!(d.stream, Stream::Stderr);
/// assert_eq!(d.time_ns, 1_718_020_800_500_000_000);
/// assert!(!d.partial);
/// ```
pub fn parse_docker_json(line: &[u8]) -> Result<DockerLine<'_>, DockerError> {
    let f = parse_fields(line)?;
    let log = match borrowable_log(&f.log, f.partial) {
        Some(raw) => Cow::Borrowed(raw),
        None => {
            let mut bytes = f.log.decode_bytes().into_owned();
            if !f.partial {
                bytes.pop();
            }
            Cow::Owned(bytes)
        }
    };
    Ok(DockerLine {
        log,
        stream: f.stream,
        time_ns: f.time_ns,
        partial: f.partial,
    })
}

/// Decodes one json-file line held in `Bytes`, returning the log as `Bytes`: a slice of `line`
/// when nothing but the final `\n` is escaped, else unescaped into `arena` and split off it.
///
/// Give `arena` a capacity of a few tens of KiB and keep it: lines split off it share its
/// allocations, and it only allocates again when its capacity is used up. Anything already in
/// `arena` is discarded.
pub fn parse_docker_json_into(
    line: &Bytes,
    arena: &mut BytesMut,
) -> Result<DockerRecord, DockerError> {
    let f = parse_fields(line)?;
    let log = match borrowable_log(&f.log, f.partial) {
        Some(raw) => line.slice_ref(raw),
        None => {
            arena.clear();
            arena.reserve(f.log.raw().len());
            f.log.decode_into(arena);
            if !f.partial {
                arena.truncate(arena.len() - 1);
            }
            arena.split().freeze()
        }
    };
    Ok(DockerRecord {
        log,
        stream: f.stream,
        time_ns: f.time_ns,
        partial: f.partial,
    })
}

/// Splits a logs-API line requested with `timestamps=true` into its time (Unix ns) and text:
/// `2024-06-10T12:00:00.123456789Z the line` gives the time and `the line`. A line that is only
/// a timestamp gives empty text. `None` when the line does not start with an RFC 3339 time.
///
/// ```
/// use logship_parsers::docker::parse_docker_api_timestamp_line;
///
/// let (ns, text) = parse_docker_api_timestamp_line(b"2024-06-10T12:00:00Z hi there").unwrap();
/// assert_eq!(ns, 1_718_020_800_000_000_000);
/// assert_eq!(text, b"hi there");
/// ```
pub fn parse_docker_api_timestamp_line(line: &[u8]) -> Option<(i64, &[u8])> {
    let (time, text) = match memchr::memchr(b' ', line) {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    };
    // Only RFC 3339 here: an epoch number would make any line starting with digits a time.
    if time.get(4) != Some(&b'-') {
        return None;
    }
    Some((parse_timestamp(time)?, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_718_020_800_123_456_789;

    #[test]
    fn plain_line_borrows_without_newline() {
        let line =
            br#"{"log":"hello world\n","stream":"stdout","time":"2024-06-10T12:00:00.123456789Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert!(matches!(d.log, Cow::Borrowed(b"hello world")));
        assert_eq!(d.stream, Stream::Stdout);
        assert_eq!(d.time_ns, T);
        assert!(!d.partial);
    }

    #[test]
    fn key_order_and_attrs_do_not_matter() {
        let line = br#"{"time":"2024-06-10T12:00:00.123456789Z","attrs":{"tag":"x","n":[1,2]},"stream":"stderr","log":"x\n"}"#;
        let d = parse_docker_json(line).unwrap();
        assert_eq!(&d.log[..], b"x");
        assert_eq!(d.stream, Stream::Stderr);
        assert_eq!(d.time_ns, T);
    }

    #[test]
    fn json_app_line_is_unescaped() {
        let line = br#"{"log":"{\"level\":\"info\",\"msg\":\"tab\\there\"}\n","stream":"stdout","time":"2024-06-10T12:00:00.123456789Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert!(matches!(d.log, Cow::Owned(_)));
        assert_eq!(&d.log[..], br#"{"level":"info","msg":"tab\there"}"#);
        assert!(!d.partial);

        let bytes = Bytes::copy_from_slice(line);
        let mut arena = BytesMut::with_capacity(1024);
        let r = parse_docker_json_into(&bytes, &mut arena).unwrap();
        assert_eq!(&r.log[..], &d.log[..]);
        assert!(arena.is_empty());
    }

    #[test]
    fn into_variant_slices_the_line() {
        let line = Bytes::from_static(
            br#"{"log":"plain\n","stream":"stdout","time":"2024-06-10T12:00:00.123456789Z"}"#,
        );
        let mut arena = BytesMut::new();
        let r = parse_docker_json_into(&line, &mut arena).unwrap();
        assert_eq!(r.log, &b"plain"[..]);
        assert_eq!(r.log.as_ptr(), line[8..].as_ptr());
        assert_eq!(arena.capacity(), 0);
    }

    #[test]
    fn partial_pieces() {
        let line = br#"{"log":"first 16k piece","stream":"stdout","time":"2024-06-10T12:00:00.123456789Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert!(d.partial);
        assert!(matches!(d.log, Cow::Borrowed(b"first 16k piece")));

        // Ends in an escaped backslash followed by `n`: not a newline, so partial.
        let line = br#"{"log":"ends in \\n","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert!(d.partial);
        assert_eq!(&d.log[..], br"ends in \n");
        let mut arena = BytesMut::new();
        let r = parse_docker_json_into(&Bytes::copy_from_slice(line), &mut arena).unwrap();
        assert_eq!(&r.log[..], br"ends in \n");
        assert!(r.partial);

        // An escaped backslash, then a real newline escape.
        let line = br#"{"log":"path C:\\\n","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert!(!d.partial);
        assert_eq!(&d.log[..], br"path C:\");
    }

    #[test]
    fn empty_and_crlf_logs() {
        let line = br#"{"log":"\n","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        let d = parse_docker_json(line).unwrap();
        assert_eq!(&d.log[..], b"");
        assert!(!d.partial);
        let line = br#"{"log":"win\r\n","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        assert_eq!(&parse_docker_json(line).unwrap().log[..], b"win\r");
        let line = br#"{"log":"","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        assert!(parse_docker_json(line).unwrap().partial);
    }

    #[test]
    fn unicode_log() {
        let line = r#"{"log":"héllo \u00e9 😀\n","stream":"stdout","time":"2024-06-10T12:00:00Z"}"#;
        let d = parse_docker_json(line.as_bytes()).unwrap();
        assert_eq!(&d.log[..], "héllo é 😀".as_bytes());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse_docker_json(b"not json").unwrap_err();
        assert!(matches!(e, DockerError::Json(_)));
        assert!(e.to_string().starts_with("invalid JSON at byte 0"));

        let e =
            parse_docker_json(br#"{"stream":"stdout","time":"2024-06-10T12:00:00Z"}"#).unwrap_err();
        assert_eq!(e, DockerError::MissingField("log"));

        let e = parse_docker_json(br#"{"log":1,"stream":"stdout","time":"2024-06-10T12:00:00Z"}"#)
            .unwrap_err();
        assert_eq!(
            e,
            DockerError::NotAString {
                field: "log",
                offset: 7
            }
        );

        let e =
            parse_docker_json(br#"{"log":"x\n","stream":"stdin","time":"2024-06-10T12:00:00Z"}"#)
                .unwrap_err();
        assert_eq!(e, DockerError::InvalidStream { offset: 23 });

        let e = parse_docker_json(br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#)
            .unwrap_err();
        assert_eq!(e, DockerError::InvalidTime { offset: 39 });
        assert_eq!(
            e.to_string(),
            "docker json-file field \"time\" at byte 39 is not an RFC 3339 timestamp"
        );

        let e =
            parse_docker_json(br#"{"log":"x\n","stream":"stdout","time":"2024-06-10T12:00:00Z""#)
                .unwrap_err();
        assert!(matches!(e, DockerError::Json(_)));
    }

    #[test]
    fn api_timestamp_lines() {
        assert_eq!(
            parse_docker_api_timestamp_line(b"2024-06-10T12:00:00.123456789Z the line"),
            Some((T, &b"the line"[..]))
        );
        assert_eq!(
            parse_docker_api_timestamp_line(b"2024-06-10T12:00:00.123456789Z "),
            Some((T, &b""[..]))
        );
        assert_eq!(
            parse_docker_api_timestamp_line(b"2024-06-10T12:00:00.123456789Z"),
            Some((T, &b""[..]))
        );
        assert_eq!(
            parse_docker_api_timestamp_line(b"2024-06-10T12:00:00Z  two spaces"),
            Some((1_718_020_800_000_000_000, &b" two spaces"[..]))
        );
        assert_eq!(parse_docker_api_timestamp_line(b"1718000000 text"), None);
        assert_eq!(parse_docker_api_timestamp_line(b"hello world"), None);
        assert_eq!(parse_docker_api_timestamp_line(b""), None);
    }
}
