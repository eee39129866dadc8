//! One item of the logs API (`timestamps=true`) split into its timestamp, stream and text.
//!
//! Non-TTY containers arrive multiplexed: one frame per log entry, `<RFC3339Nano> <text>`,
//! where the text ends with `\n` unless Docker split an over-long line into 16 KiB pieces
//! (every piece but the last has no newline). TTY containers arrive as one raw stream that
//! bollard cuts at newlines, so the pieces of a split line come glued together, each with its
//! own timestamp: `<ts1> <16384 bytes><ts2> <rest>\r\n`. [`split_console`] recognises those
//! embedded timestamps by their fixed width at the 16 KiB boundaries.

use bytes::Bytes;
use logship_parsers::docker::parse_docker_api_timestamp_line;
use logship_parsers::timestamp::parse_timestamp;

use crate::containers::LogStream;

/// The size at which Docker's log copier cuts a line without a newline into pieces.
pub const DOCKER_PARTIAL_SIZE: usize = 16 * 1024;

/// One log entry: a whole line, or one piece of a split line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The stream it came from.
    pub stream: LogStream,
    /// Docker's timestamp, Unix nanoseconds.
    pub ts_ns: i64,
    /// The text, without the trailing newline (and, for TTY lines, without the `\r`).
    pub text: Bytes,
    /// True when more pieces of the same line follow.
    pub partial: bool,
}

/// Why a logs API item could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The item did not start with an RFC3339 timestamp and a space.
    #[error("log entry without a Docker timestamp ({0} bytes)")]
    NoTimestamp(usize),
}

/// Splits one multiplexed entry (`StdOut`/`StdErr`) of the logs API.
pub fn split_entry(stream: LogStream, message: &Bytes) -> Result<Frame, FrameError> {
    let (ts_ns, body_start) = leading_timestamp(message)?;
    let body = &message[body_start..];
    let (end, partial) = match body.last() {
        Some(b'\n') => (message.len() - 1, false),
        _ => (message.len(), true),
    };
    Ok(Frame {
        stream,
        ts_ns,
        text: message.slice(body_start..end),
        partial,
    })
}

/// Splits one item of a TTY container (`Console`) into its pieces, calling `out` for each.
/// The last piece is complete when the item ends with a newline (`\r\n` is removed).
pub fn split_console(message: &Bytes, mut out: impl FnMut(Frame)) -> Result<(), FrameError> {
    let (mut ts_ns, mut start) = leading_timestamp(message)?;
    let (end, complete) = if message.ends_with(b"\r\n") {
        (message.len() - 2, true)
    } else if message.ends_with(b"\n") {
        (message.len() - 1, true)
    } else {
        (message.len(), false)
    };
    loop {
        let cut = start + DOCKER_PARTIAL_SIZE;
        if cut < end
            && let Some((next_ts, ts_len)) = embedded_timestamp(&message[cut..end])
        {
            out(Frame {
                stream: LogStream::Stdout,
                ts_ns,
                text: message.slice(start..cut),
                partial: true,
            });
            ts_ns = next_ts;
            start = cut + ts_len + 1;
            continue;
        }
        out(Frame {
            stream: LogStream::Stdout,
            ts_ns,
            text: message.slice(start.min(end)..end),
            partial: !complete,
        });
        return Ok(());
    }
}

/// The timestamp at the start of `message` and where the text after its space starts.
fn leading_timestamp(message: &[u8]) -> Result<(i64, usize), FrameError> {
    let (ts, text) =
        parse_docker_api_timestamp_line(message).ok_or(FrameError::NoTimestamp(message.len()))?;
    Ok((ts, message.len() - text.len()))
}

/// A timestamp Docker put at the start of `rest` (fixed nine-digit fraction, `Z` or an
/// offset) followed by a space; returns it and its length.
fn embedded_timestamp(rest: &[u8]) -> Option<(i64, usize)> {
    // RFC3339NanoFixed: 2006-01-02T15:04:05.000000000Z07:00
    for len in [30usize, 35] {
        if rest.len() <= len || rest[len] != b' ' {
            continue;
        }
        let cand = &rest[..len];
        if cand[4] == b'-'
            && cand[10] == b'T'
            && cand[19] == b'.'
            && let Some(ts) = parse_timestamp(cand)
        {
            return Some((ts, len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-22T20:30:32.179615257Z";
    const TS_NS: i64 = 1_795_379_432_179_615_257;

    #[test]
    fn leading_timestamp_gives_time_and_text_start() {
        assert_eq!(
            leading_timestamp(format!("{TS} x").as_bytes()),
            Ok((TS_NS, 31))
        );
        assert!(leading_timestamp(b"not a timestamp at all").is_err());
    }

    #[test]
    fn entry_with_and_without_newline() {
        let full = Bytes::from(format!("{TS} {{\"a\":1}}\n"));
        let f = split_entry(LogStream::Stderr, &full).unwrap();
        assert_eq!(f.ts_ns, TS_NS);
        assert_eq!(&f.text[..], b"{\"a\":1}");
        assert!(!f.partial);
        let piece = Bytes::from(format!("{TS} abc"));
        let f = split_entry(LogStream::Stdout, &piece).unwrap();
        assert!(f.partial);
        assert_eq!(&f.text[..], b"abc");
        let empty = Bytes::from(format!("{TS} \n"));
        assert_eq!(
            &split_entry(LogStream::Stdout, &empty).unwrap().text[..],
            b""
        );
        assert!(split_entry(LogStream::Stdout, &Bytes::from_static(b"garbage\n")).is_err());
    }

    #[test]
    fn console_line_is_split_at_embedded_timestamps() {
        let a = "a".repeat(DOCKER_PARTIAL_SIZE);
        let b = "b".repeat(DOCKER_PARTIAL_SIZE);
        let ts2 = "2026-11-22T20:30:32.179615258Z";
        let msg = Bytes::from(format!("{TS} {a}{ts2} {b}{TS} tail\r\n"));
        let mut frames = Vec::new();
        split_console(&msg, |f| frames.push(f)).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].text.len(), DOCKER_PARTIAL_SIZE);
        assert!(frames[0].partial && frames[1].partial && !frames[2].partial);
        assert_eq!(frames[1].ts_ns, TS_NS + 1);
        assert_eq!(&frames[2].text[..], b"tail");
    }

    #[test]
    fn console_short_line_and_unterminated_tail() {
        let mut frames = Vec::new();
        split_console(&Bytes::from(format!("{TS} hi\r\n")), |f| frames.push(f)).unwrap();
        split_console(&Bytes::from(format!("{TS} end")), |f| frames.push(f)).unwrap();
        assert_eq!(&frames[0].text[..], b"hi");
        assert!(!frames[0].partial);
        assert_eq!(&frames[1].text[..], b"end");
        assert!(frames[1].partial);
    }

    #[test]
    fn long_console_line_without_embedded_timestamp_stays_whole() {
        let a = "x".repeat(DOCKER_PARTIAL_SIZE + 100);
        let mut frames = Vec::new();
        split_console(&Bytes::from(format!("{TS} {a}\n")), |f| frames.push(f)).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].text.len(), DOCKER_PARTIAL_SIZE + 100);
    }
}
