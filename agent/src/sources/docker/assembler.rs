//! Turns one container's log frames into events, ready to be cut into chunks.
//!
//! Per stream (stdout and stderr pieces interleave) it joins Docker's 16 KiB pieces back into
//! one line ([`PartialMerger`]), drops lines a checkpoint says were already shipped, cuts
//! lines over `max_line_bytes`, optionally joins multi-line records
//! ([`MultilineAggregator`]), and keeps the stream positions that become the chunk's cursor.
//! A line still missing pieces, or a record still open, is not in the cursor, so a cursor
//! never lands inside a split line or a record: after a restart they are read again whole.
//! Pure and synchronous, so every rule here is tested without Docker.

use bytes::Bytes;
use logship_parsers::multiline::MultilineAggregator;
use logship_parsers::partial::{MergedLine, PartialMerger};
use regex::bytes::Regex;

use super::checkpoint::{DockerCursor, StreamPos, StreamTracker};
use super::frame::{self, Frame, FrameError};
use crate::containers::{LogStream, StreamLabels};
use crate::pipeline::Event;

/// A chunk is cut at this many lines even if more are ready.
pub const MAX_CHUNK_LINES: usize = 1000;
/// A chunk is cut once its lines hold this many bytes.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;

/// Multi-line joining: a line matching `start` begins a record.
#[derive(Debug, Clone)]
pub struct MultilineSpec {
    /// Pattern of a record's first line.
    pub start: Regex,
    /// Most lines in one record.
    pub max_lines: usize,
}

/// Everything one stream keeps.
struct StreamState {
    labels: StreamLabels,
    tracker: StreamTracker,
    merger: PartialMerger,
    /// Timestamp of the first piece of the line being merged.
    partial_ts: Option<i64>,
    multiline: Option<MultilineAggregator>,
    /// The position before the open record's first line: the cursor while it is open.
    record_floor: Option<StreamPos>,
}

/// One container's lines on their way into chunks.
pub struct Assembler {
    streams: [StreamState; 2],
    max_line_bytes: usize,
    events: Vec<Event>,
    bytes: usize,
    truncated: u64,
}

/// What one chunk's worth of lines is: its events and the cursor after them.
pub struct Ready {
    /// The lines, in log order.
    pub events: Vec<Event>,
    /// The container's position after these lines.
    pub cursor: DockerCursor,
    /// Line bytes in `events`.
    pub bytes: usize,
    /// Lines cut to `max_line_bytes` since the last chunk.
    pub truncated: u64,
}

impl Assembler {
    /// An assembler resuming after `start`, labelling lines with `labels` (indexed by
    /// [`LogStream::index`]).
    pub fn new(
        labels: [StreamLabels; 2],
        start: DockerCursor,
        max_line_bytes: usize,
        multiline: Option<&MultilineSpec>,
    ) -> Self {
        let max_line_bytes = max_line_bytes.max(1);
        let [out, err] = labels;
        let state = |labels, pos| StreamState {
            labels,
            tracker: StreamTracker::new(pos),
            merger: PartialMerger::new(max_line_bytes),
            partial_ts: None,
            multiline: multiline
                .map(|m| MultilineAggregator::new(m.start.clone(), m.max_lines, max_line_bytes)),
            record_floor: None,
        };
        Self {
            streams: [state(out, start.stdout), state(err, start.stderr)],
            max_line_bytes,
            events: Vec::new(),
            bytes: 0,
            truncated: 0,
        }
    }

    /// Takes one item of the logs API.
    pub fn push_output(&mut self, output: bollard::container::LogOutput) -> Result<(), FrameError> {
        use bollard::container::LogOutput;
        match output {
            LogOutput::StdOut { message } => {
                let f = frame::split_entry(LogStream::Stdout, &message)?;
                self.push_frame(f);
            }
            LogOutput::StdErr { message } => {
                let f = frame::split_entry(LogStream::Stderr, &message)?;
                self.push_frame(f);
            }
            LogOutput::Console { message } => {
                frame::split_console(&message, |f| self.push_frame(f))?;
            }
            LogOutput::StdIn { .. } => {}
        }
        Ok(())
    }

    /// Takes one frame: a whole line, or a piece of one.
    pub fn push_frame(&mut self, f: Frame) {
        let st = &mut self.streams[f.stream.index()];
        let ts = *st.partial_ts.get_or_insert(f.ts_ns);
        if let Some(merged) = st.merger.push_bytes(f.text, f.partial) {
            st.partial_ts = None;
            self.line(f.stream, ts, merged);
        }
    }

    /// The log ended for good (the container stopped): lines still missing pieces and open
    /// records are shipped as they are.
    pub fn finish(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let st = &mut self.streams[stream.index()];
            if let (Some(merged), Some(ts)) = (st.merger.flush(), st.partial_ts.take()) {
                self.line(stream, ts, merged);
            }
        }
        self.flush_records();
    }

    /// True while a multi-line record is open (the caller flushes it after its timeout).
    pub fn has_open_record(&self) -> bool {
        self.streams
            .iter()
            .any(|s| s.multiline.as_ref().is_some_and(|m| m.pending_lines() > 0))
    }

    /// Closes every open multi-line record (its timeout passed, or the log ended).
    pub fn flush_records(&mut self) {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let st = &mut self.streams[stream.index()];
            let record = st.multiline.as_mut().and_then(MultilineAggregator::flush);
            st.record_floor = None;
            if let Some(r) = record {
                self.emit(stream, r.first_tag as i64, r.line);
            }
        }
    }

    /// A whole line: skip it if shipped before, else emit it (or add it to its record).
    fn line(&mut self, stream: LogStream, ts_ns: i64, merged: MergedLine) {
        let st = &mut self.streams[stream.index()];
        let before = st.tracker.pos();
        if !st.tracker.admit(ts_ns) {
            return;
        }
        if merged.truncated || merged.line.len() > self.max_line_bytes {
            self.truncated += 1;
        }
        let mut line = merged.line;
        line.truncate(self.max_line_bytes);
        let Some(agg) = st.multiline.as_mut() else {
            self.emit(stream, ts_ns, line);
            return;
        };
        // Timestamps are Unix nanoseconds, never negative for Docker; the tag carries them.
        let tag = u64::try_from(ts_ns).unwrap_or(0);
        let opened_new = agg.pending_lines() == 0;
        let done = agg.push(line, tag);
        if opened_new || done.is_some() {
            // This line now begins the open record.
            st.record_floor = Some(before);
        }
        if let Some(r) = done {
            self.emit(stream, r.first_tag as i64, r.line);
        }
    }

    fn emit(&mut self, stream: LogStream, ts_ns: i64, line: Bytes) {
        let labels = &self.streams[stream.index()].labels;
        let mut event = Event::new(ts_ns, line, labels.labels.clone());
        if !labels.metadata.is_empty() {
            event.metadata = labels.metadata.clone();
        }
        self.bytes += event.line.len();
        self.events.push(event);
    }

    /// True when no line is ready.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// True when the ready lines make a full chunk.
    pub fn is_full(&self) -> bool {
        self.events.len() >= MAX_CHUNK_LINES || self.bytes >= MAX_CHUNK_BYTES
    }

    /// The position after every line emitted so far (an open record's lines excluded).
    pub fn cursor(&self) -> DockerCursor {
        let pos = |s: &StreamState| s.record_floor.unwrap_or_else(|| s.tracker.pos());
        DockerCursor {
            stdout: pos(&self.streams[0]),
            stderr: pos(&self.streams[1]),
        }
    }

    /// The ready lines and the cursor after them; `None` when there are none.
    pub fn take(&mut self) -> Option<Ready> {
        if self.events.is_empty() {
            return None;
        }
        let events = std::mem::replace(&mut self.events, Vec::with_capacity(64));
        let bytes = std::mem::take(&mut self.bytes);
        Some(Ready {
            events,
            cursor: self.cursor(),
            bytes,
            truncated: std::mem::take(&mut self.truncated),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LabelSet;
    use crate::sources::docker::checkpoint::StreamPos;

    fn labels() -> [StreamLabels; 2] {
        let mk = |s: &str| StreamLabels {
            labels: LabelSet::new([("stream", s)]),
            metadata: Default::default(),
        };
        [mk("stdout"), mk("stderr")]
    }

    fn frame(stream: LogStream, ts: i64, text: &str, partial: bool) -> Frame {
        Frame {
            stream,
            ts_ns: ts,
            text: Bytes::from(text.to_owned()),
            partial,
        }
    }

    fn lines(r: &Ready) -> Vec<(String, i64, String)> {
        r.events
            .iter()
            .map(|e| {
                (
                    e.labels.get("stream").unwrap_or("").to_owned(),
                    e.timestamp_ns,
                    String::from_utf8_lossy(&e.line).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn interleaved_partials_merge_per_stream() {
        let mut a = Assembler::new(labels(), DockerCursor::default(), 1 << 20, None);
        a.push_frame(frame(LogStream::Stdout, 10, "aa", true));
        a.push_frame(frame(LogStream::Stderr, 11, "err", false));
        a.push_frame(frame(LogStream::Stdout, 12, "bb", true));
        // The cursor must not cover the unfinished stdout line.
        assert_eq!(a.cursor().stdout, StreamPos::default());
        a.push_frame(frame(LogStream::Stdout, 13, "cc", false));
        let r = a.take().unwrap();
        assert_eq!(
            lines(&r),
            vec![
                ("stderr".into(), 11, "err".into()),
                ("stdout".into(), 10, "aabbcc".into())
            ]
        );
        assert_eq!(r.cursor.stdout, StreamPos { ts: 10, n: 1 });
        assert_eq!(r.cursor.stderr, StreamPos { ts: 11, n: 1 });
    }

    #[test]
    fn resume_drops_shipped_lines_including_same_timestamp() {
        let start = DockerCursor {
            stdout: StreamPos { ts: 20, n: 1 },
            stderr: StreamPos::default(),
        };
        let mut a = Assembler::new(labels(), start, 1 << 20, None);
        for (ts, t) in [(19, "old"), (20, "first"), (20, "second"), (21, "new")] {
            a.push_frame(frame(LogStream::Stdout, ts, t, false));
        }
        let r = a.take().unwrap();
        let got: Vec<String> = lines(&r).into_iter().map(|l| l.2).collect();
        assert_eq!(got, ["second", "new"]);
    }

    #[test]
    fn long_lines_are_truncated_and_counted() {
        let mut a = Assembler::new(labels(), DockerCursor::default(), 5, None);
        a.push_frame(frame(LogStream::Stdout, 1, "abc", true));
        a.push_frame(frame(LogStream::Stdout, 1, "defgh", false));
        a.push_frame(frame(LogStream::Stdout, 2, "0123456789", false));
        a.push_frame(frame(LogStream::Stdout, 3, "ok", false));
        let r = a.take().unwrap();
        let got: Vec<String> = lines(&r).into_iter().map(|l| l.2).collect();
        assert_eq!(got, ["abcde", "01234", "ok"]);
        assert_eq!(r.truncated, 2);
    }

    #[test]
    fn eof_ships_an_unfinished_line() {
        let mut a = Assembler::new(labels(), DockerCursor::default(), 100, None);
        a.push_frame(frame(LogStream::Stderr, 5, "half", true));
        assert!(a.take().is_none());
        a.finish();
        let r = a.take().unwrap();
        assert_eq!(lines(&r), vec![("stderr".into(), 5, "half".into())]);
    }

    #[test]
    fn full_chunk_is_reported() {
        let mut a = Assembler::new(labels(), DockerCursor::default(), 100, None);
        for i in 0..MAX_CHUNK_LINES {
            assert!(!a.is_full());
            a.push_frame(frame(LogStream::Stdout, i as i64 + 1, "x", false));
        }
        assert!(a.is_full());
        assert_eq!(a.take().unwrap().events.len(), MAX_CHUNK_LINES);
        assert!(a.is_empty());
    }

    #[test]
    fn multiline_records_keep_the_cursor_before_their_first_line() {
        let spec = MultilineSpec {
            start: Regex::new(r"^\d").unwrap(),
            max_lines: 100,
        };
        let mut a = Assembler::new(labels(), DockerCursor::default(), 100, Some(&spec));
        a.push_frame(frame(LogStream::Stdout, 1, "1 boom", false));
        a.push_frame(frame(LogStream::Stdout, 2, "  at a", false));
        assert!(a.is_empty() && a.has_open_record());
        assert_eq!(a.cursor().stdout, StreamPos::default());
        a.push_frame(frame(LogStream::Stdout, 3, "2 next", false));
        let r = a.take().unwrap();
        assert_eq!(
            lines(&r),
            vec![("stdout".into(), 1, "1 boom\n  at a".into())]
        );
        // The open record "2 next" starts after position (2, 1).
        assert_eq!(r.cursor.stdout, StreamPos { ts: 2, n: 1 });
        a.flush_records();
        let r = a.take().unwrap();
        assert_eq!(lines(&r), vec![("stdout".into(), 3, "2 next".into())]);
        assert_eq!(r.cursor.stdout, StreamPos { ts: 3, n: 1 });
        assert!(!a.has_open_record());
    }

    #[test]
    fn api_outputs_are_decoded() {
        use bollard::container::LogOutput;
        let mut a = Assembler::new(labels(), DockerCursor::default(), 100, None);
        a.push_output(LogOutput::StdErr {
            message: Bytes::from_static(b"2026-11-22T20:30:32.000000001Z boom\n"),
        })
        .unwrap();
        a.push_output(LogOutput::Console {
            message: Bytes::from_static(b"2026-11-22T20:30:32.000000002Z tty\r\n"),
        })
        .unwrap();
        let r = a.take().unwrap();
        assert_eq!(
            lines(&r),
            vec![
                ("stderr".into(), 1_795_379_432_000_000_001, "boom".into()),
                ("stdout".into(), 1_795_379_432_000_000_002, "tty".into())
            ]
        );
    }
}
