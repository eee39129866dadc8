//! Joining multi-line records (stack traces, pretty-printed output) into one event.
//!
//! [`MultilineAggregator`] follows Promtail's `multiline` stage: a line matching the start
//! pattern begins a new record; every other line is appended to the current one with `\n`. A
//! record is returned when the next one starts, when it would exceed `max_lines` or
//! `max_bytes`, or when the caller flushes it.
//!
//! The aggregator has no clock (this crate does no I/O). The caller implements the timeout:
//! note the time of each [`push`](MultilineAggregator::push) and call
//! [`flush`](MultilineAggregator::flush) when no line has arrived for the configured wait.
//!
//! Each line carries an opaque `tag` (the agent passes the line's start offset). The tag of a
//! pending record's first line is exposed by
//! [`pending_first_tag`](MultilineAggregator::pending_first_tag), so the agent never
//! checkpoints past a record it has not yet emitted.
//!
//! A record of one line is the pushed `Bytes` itself; only records of several lines are
//! copied into a new buffer.

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;

/// One joined record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The lines joined with `\n` (no trailing `\n`).
    pub line: Bytes,
    /// The tag passed with the record's first line.
    pub first_tag: u64,
    /// The tag passed with the record's last line.
    pub last_tag: u64,
    /// Number of lines joined.
    pub lines: usize,
}

/// Groups lines into records that begin with a line matching a start pattern.
///
/// ```
/// use bytes::Bytes;
/// use logship_parsers::multiline::MultilineAggregator;
/// use regex::bytes::Regex;
///
/// let mut agg = MultilineAggregator::new(Regex::new(r"^\d{4}-").unwrap(), 100, 1 << 20);
/// assert_eq!(agg.push(Bytes::from_static(b"2024-06-10 boom"), 0), None);
/// assert_eq!(agg.push(Bytes::from_static(b"  at main.rs:1"), 16), None);
/// assert_eq!(agg.pending_first_tag(), Some(0));
/// let rec = agg.push(Bytes::from_static(b"2024-06-10 next"), 31).unwrap();
/// assert_eq!(&rec.line[..], b"2024-06-10 boom\n  at main.rs:1");
/// assert_eq!((rec.first_tag, rec.lines), (0, 2));
/// assert_eq!(agg.pending_first_tag(), Some(31));
/// ```
#[derive(Debug)]
pub struct MultilineAggregator {
    start: Regex,
    max_lines: usize,
    max_bytes: usize,
    /// The record's first line while it is the only one, kept as is.
    single: Option<Bytes>,
    /// The joined record once it has more than one line.
    joined: BytesMut,
    lines: usize,
    first_tag: u64,
    last_tag: u64,
}

impl MultilineAggregator {
    /// An aggregator whose records start at lines matching `start_pattern` and hold at most
    /// `max_lines` lines and `max_bytes` bytes (a single longer line is still one record; the
    /// line splitter bounds line length). Limits below 1 are treated as 1.
    pub fn new(start_pattern: Regex, max_lines: usize, max_bytes: usize) -> MultilineAggregator {
        MultilineAggregator {
            start: start_pattern,
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            single: None,
            joined: BytesMut::new(),
            lines: 0,
            first_tag: 0,
            last_tag: 0,
        }
    }

    /// Adds a line (without its `\n`). Returns the previous record when this line starts a new
    /// one or when appending it would exceed a limit; the line then begins the next record.
    pub fn push(&mut self, line: Bytes, tag: u64) -> Option<Record> {
        if self.lines == 0 {
            self.begin(line, tag);
            return None;
        }
        let too_big = self.pending_bytes() + 1 + line.len() > self.max_bytes;
        if self.lines >= self.max_lines || too_big || self.start.is_match(&line) {
            let record = self.take();
            self.begin(line, tag);
            return Some(record);
        }
        if let Some(first) = self.single.take() {
            self.joined.reserve(first.len() + 1 + line.len());
            self.joined.extend_from_slice(&first);
        }
        self.joined.extend_from_slice(b"\n");
        self.joined.extend_from_slice(&line);
        self.lines += 1;
        self.last_tag = tag;
        None
    }

    /// Returns the pending record, if any (on timeout, end of input or shutdown).
    pub fn flush(&mut self) -> Option<Record> {
        (self.lines > 0).then(|| self.take())
    }

    /// The tag of the pending record's first line; `None` when nothing is pending.
    pub fn pending_first_tag(&self) -> Option<u64> {
        (self.lines > 0).then_some(self.first_tag)
    }

    /// Number of lines in the pending record.
    pub fn pending_lines(&self) -> usize {
        self.lines
    }

    /// Bytes in the pending record (lines and the `\n`s between them).
    pub fn pending_bytes(&self) -> usize {
        match &self.single {
            Some(line) => line.len(),
            None => self.joined.len(),
        }
    }

    fn begin(&mut self, line: Bytes, tag: u64) {
        self.single = Some(line);
        self.lines = 1;
        self.first_tag = tag;
        self.last_tag = tag;
    }

    fn take(&mut self) -> Record {
        let line = match self.single.take() {
            Some(line) => line,
            None => self.joined.split().freeze(),
        };
        let record = Record {
            line,
            first_tag: self.first_tag,
            last_tag: self.last_tag,
            lines: self.lines,
        };
        self.lines = 0;
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agg(max_lines: usize, max_bytes: usize) -> MultilineAggregator {
        MultilineAggregator::new(Regex::new(r"^\S").unwrap(), max_lines, max_bytes)
    }

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn stack_trace_is_joined() {
        let mut a = agg(100, 1000);
        assert_eq!(a.push(b("Exception: boom"), 10), None);
        assert_eq!(a.push(b("  at a()"), 26), None);
        assert_eq!(a.push(b("  at b()"), 35), None);
        assert_eq!(a.pending_lines(), 3);
        assert_eq!(a.pending_bytes(), 33);
        let r = a.push(b("next"), 44).unwrap();
        assert_eq!(
            r,
            Record {
                line: b("Exception: boom\n  at a()\n  at b()"),
                first_tag: 10,
                last_tag: 35,
                lines: 3
            }
        );
        let r = a.flush().unwrap();
        assert_eq!(&r.line[..], b"next");
        assert_eq!(a.flush(), None);
        assert_eq!(a.pending_first_tag(), None);
    }

    #[test]
    fn single_line_record_is_not_copied() {
        let mut a = agg(100, 1000);
        let first = b("single");
        a.push(first.clone(), 0);
        let r = a.push(b("other"), 7).unwrap();
        assert_eq!(r.line.as_ptr(), first.as_ptr());
        assert_eq!(r.lines, 1);
    }

    #[test]
    fn leading_continuation_starts_a_record() {
        let mut a = agg(100, 1000);
        assert_eq!(a.push(b("  orphan"), 0), None);
        assert_eq!(a.push(b("  more"), 9), None);
        let r = a.push(b("Start"), 16).unwrap();
        assert_eq!(&r.line[..], b"  orphan\n  more");
    }

    #[test]
    fn max_lines_splits() {
        let mut a = agg(2, 1000);
        a.push(b("S"), 0);
        assert_eq!(a.push(b(" 1"), 1), None);
        let r = a.push(b(" 2"), 2).unwrap();
        assert_eq!(&r.line[..], b"S\n 1");
        assert_eq!(a.pending_first_tag(), Some(2));
    }

    #[test]
    fn max_bytes_splits_but_keeps_long_single_lines() {
        let mut a = agg(100, 6);
        a.push(b("S"), 0);
        assert_eq!(a.push(b(" 234"), 1), None); // "S\n 234" is 6 bytes
        let r = a.push(b(" x"), 2).unwrap();
        assert_eq!(&r.line[..], b"S\n 234");
        let r = a.push(b(" a very long continuation"), 3).unwrap();
        assert_eq!(&r.line[..], b" x");
        let r = a.flush().unwrap();
        assert_eq!(&r.line[..], b" a very long continuation");
    }

    #[test]
    fn empty_lines_are_continuations() {
        let mut a = agg(100, 1000);
        a.push(b("S"), 0);
        a.push(b(""), 2);
        let r = a.push(b("T"), 3).unwrap();
        assert_eq!(&r.line[..], b"S\n");
        assert_eq!(r.lines, 2);
    }

    proptest! {
        #[test]
        fn records_partition_the_lines(
            lines in prop::collection::vec("[ a-c]{0,6}", 0..40),
            max_lines in 1usize..6,
            max_bytes in 1usize..30,
        ) {
            let mut a = agg(max_lines, max_bytes);
            let mut records = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                records.extend(a.push(Bytes::copy_from_slice(l.as_bytes()), i as u64));
                prop_assert!(a.pending_first_tag().is_some());
            }
            records.extend(a.flush());
            let mut next = 0u64;
            let mut total = 0;
            for r in &records {
                prop_assert_eq!(r.first_tag, next);
                prop_assert_eq!(r.last_tag, next + r.lines as u64 - 1);
                prop_assert!(r.lines <= max_lines);
                prop_assert!(r.lines == 1 || r.line.len() <= max_bytes);
                let want = lines[next as usize..next as usize + r.lines].join("\n");
                prop_assert_eq!(&r.line[..], want.as_bytes());
                // Only the first line of a record may match the start pattern.
                for l in &lines[next as usize + 1..next as usize + r.lines] {
                    prop_assert!(l.is_empty() || l.starts_with(' '));
                }
                next += r.lines as u64;
                total += r.lines;
            }
            prop_assert_eq!(total, lines.len());
        }
    }
}
