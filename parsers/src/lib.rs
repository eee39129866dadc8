//! Pure, I/O-free decoding for the logship agent's hot path.
//!
//! Everything here works on byte slices and [`bytes::Bytes`] handed in by the caller: no file,
//! socket or clock is touched, so every piece is unit-testable, fuzzable and benchmarkable on
//! its own. The code is written for throughput (over a million lines per CPU-second): lines
//! are sliced rather than copied, scanning uses `memchr`, and nothing allocates per line in
//! steady state.
//!
//! # The pieces and how they connect
//!
//! A file or container source turns raw bytes into events in up to four steps:
//!
//! 1. **Split** the read buffer into lines: [`lines::LineSplitter`] takes each complete line
//!    out of a `BytesMut` as a zero-copy [`Bytes`](bytes::Bytes) slice
//!    ([`lines::SplitLine`]), cuts overlong lines and counts every consumed byte so that the
//!    file offset (the checkpoint) stays exact.
//! 2. **Unwrap** the container runtime's envelope, if the file has one:
//!    [`docker::parse_docker_json`] / [`docker::parse_docker_json_into`] for Docker's
//!    json-file driver, [`cri::parse_cri`] for containerd and CRI-O (with
//!    [`cri::parse_cri_path`] for the pod identity in the path), and
//!    [`docker::parse_docker_api_timestamp_line`] for the Docker logs API. Each gives the
//!    line's time, its [`stream::Stream`] and whether it is a partial piece.
//! 3. **Reassemble** what was cut: [`partial::PartialMerger`] joins the runtime's partial
//!    pieces into whole lines, and [`multiline::MultilineAggregator`] joins multi-line records
//!    (stack traces) that start at a configured pattern.
//! 4. **Extract** fields from the line the application wrote, without building a tree:
//!    [`json::FieldSet::extract`] finds the configured JSON paths in one validating pass
//!    (or [`json::FieldSet::extract_ranges`] into a reusable [`json::FieldRanges`]),
//!    [`logfmt::LogfmtPairs`] iterates over logfmt pairs, and
//!    [`timestamp::parse_timestamp`] turns a time field into Unix nanoseconds.
//!
//! Extracted values borrow from the line: [`json::JsonValue`] and [`logfmt::LogfmtValue`]
//! expose byte ranges, so the caller can keep a value as a `Bytes` slice of the line it
//! already holds. A line that fails to decode yields a typed error saying what was wrong and
//! where; the agent then ships the line unchanged.
//!
//! # Example
//!
//! Splitting a block of JSON lines and extracting labels, trace ids and timestamps:
//!
//! ```
//! use bytes::BytesMut;
//! use logship_parsers::json::FieldSet;
//! use logship_parsers::lines::LineSplitter;
//! use logship_parsers::timestamp::parse_timestamp;
//!
//! let mut buf = BytesMut::from(&br#"{"time":"2024-06-10T12:00:00.5Z","level":"info","trace_id":"4bf9"}
//! {"time":"2024-06-10T12:00:01Z","level":"error","msg":"no trace here"}
//! plain text is not JSON
//! {"time":"2024-06-10T12:00:02Z","lev"#[..]);
//!
//! let fields = FieldSet::new(&["time", "level", "trace_id"]);
//! let mut splitter = LineSplitter::new(256 * 1024);
//! let mut events = Vec::new();
//!
//! let consumed = splitter.split(&mut buf, |l| {
//!     // The values borrow this line, so the slots live per line (on the stack). For a
//!     // field count known only at run time, reuse a `json::FieldRanges` instead.
//!     let mut values = [None; 3];
//!     match fields.extract(&l.line, &mut values) {
//!         Ok(()) => {
//!             let [time, level, trace_id] = values;
//!             let ns = time.and_then(|t| parse_timestamp(t.as_text().as_bytes()));
//!             let level = level.map(|v| v.as_text().into_owned());
//!             // Keep the trace id as a zero-copy slice of the line.
//!             let trace = trace_id
//!                 .and_then(|v| v.range_in(&l.line))
//!                 .map(|r| l.line.slice(r));
//!             events.push((ns, level, trace, l.end));
//!         }
//!         // Not JSON: shipped as is, with the source's labels only.
//!         Err(_) => events.push((None, None, None, l.end)),
//!     }
//! });
//!
//! assert_eq!(events.len(), 3);
//! assert_eq!(events[0].0, Some(1_718_020_800_500_000_000));
//! assert_eq!(events[0].1.as_deref(), Some("info"));
//! assert_eq!(events[0].2.as_deref(), Some(&b"4bf9"[..]));
//! assert_eq!(events[1].1.as_deref(), Some("error"));
//! assert_eq!(events[1].2, None);
//! assert_eq!(events[2].1, None);
//! // The incomplete last line waits in `buf` for the next read; the offset after the third
//! // line is where a checkpoint may go.
//! assert_eq!(consumed, events[2].3);
//! assert!(buf.starts_with(br#"{"time":"2024-06-10T12:00:02Z""#));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cri;
pub mod docker;
pub mod json;
pub mod lines;
pub mod logfmt;
pub mod multiline;
pub mod partial;
pub mod stream;
pub mod timestamp;
pub mod timestamp_format;
