//! Turns a file's raw lines into events: unwraps docker json-file or CRI framing, joins
//! partial lines and multiline records, and knows the offset up to which everything has been
//! handed out (so a checkpoint never lands inside a record that is still being assembled).

use std::time::{Duration, Instant};

use bytes::Bytes;
use logship_config::schema::{FileDecoder, MultilineConfig};
use logship_parsers::cri::parse_cri;
use logship_parsers::docker::parse_docker_json;
use logship_parsers::multiline::MultilineAggregator;
use logship_parsers::partial::PartialMerger;
use logship_parsers::stream::Stream;
use regex::bytes::Regex;

use crate::pipeline::{Event, LabelSet, Metadata};

/// Labels for the lines of one file (plain files use `stdout` for everything), and the
/// structured metadata every line of it carries.
pub(super) struct StreamLabels {
    pub stdout: LabelSet,
    pub stderr: LabelSet,
    pub metadata: Metadata,
}

impl StreamLabels {
    /// An event of `lane` (0 stdout, 1 stderr).
    fn event(&self, lane: usize, time: i64, line: Bytes) -> Event {
        let labels = if lane == 0 {
            &self.stdout
        } else {
            &self.stderr
        };
        let mut event = Event::new(time, line, labels.clone());
        event.metadata.clone_from(&self.metadata);
        event
    }
}

/// One output stream's assembly state (a plain file has one; docker and CRI files two).
struct Lane {
    partial: PartialMerger,
    /// Offset where the pending partial line starts.
    partial_start: Option<u64>,
    partial_time: i64,
    multiline: Option<Multiline>,
}

struct Multiline {
    aggregator: MultilineAggregator,
    timeout: Duration,
    last_push: Instant,
    /// Time of the first line of the pending record.
    record_time: i64,
}

/// A source's multiline settings, with its start pattern compiled once for every file.
#[derive(Clone)]
pub(super) struct MultilineSpec {
    start: Regex,
    timeout: Duration,
    max_lines: usize,
}

impl MultilineSpec {
    /// Compiles the start pattern of `config`.
    pub(super) fn new(config: &MultilineConfig) -> Result<Self, regex::Error> {
        Ok(Self {
            start: Regex::new(&config.start_pattern)?,
            timeout: Duration::from_millis(config.timeout_ms),
            max_lines: config.max_lines,
        })
    }
}

/// Assembles events from the raw lines of one file.
pub(super) struct Assembler {
    decoder: FileDecoder,
    lanes: [Lane; 2],
    labels: StreamLabels,
    /// Lines whose framing did not parse (shipped raw).
    pub decode_errors: u64,
    /// Lines cut to `max_line_bytes` while joining partial pieces.
    pub truncated: u64,
}

impl Assembler {
    /// An assembler for a file framed by `decoder`.
    pub(super) fn new(
        decoder: FileDecoder,
        multiline: Option<&MultilineSpec>,
        labels: StreamLabels,
        max_line_bytes: usize,
    ) -> Self {
        let lane = || Lane {
            partial: PartialMerger::new(max_line_bytes),
            partial_start: None,
            partial_time: 0,
            multiline: multiline.map(|m| Multiline {
                // Cloning a compiled regex shares it.
                aggregator: MultilineAggregator::new(m.start.clone(), m.max_lines, max_line_bytes),
                timeout: m.timeout,
                last_push: Instant::now(),
                record_time: 0,
            }),
        };
        Self {
            decoder,
            lanes: [lane(), lane()],
            labels,
            decode_errors: 0,
            truncated: 0,
        }
    }

    /// Takes one raw line that occupies `[start, end)` of the file (newline included), read at
    /// `read_ns`.
    pub(super) fn push(&mut self, raw: Bytes, start: u64, read_ns: i64, out: &mut Vec<Event>) {
        match self.decoder {
            FileDecoder::None => self.emit(0, raw, read_ns, start, out),
            FileDecoder::Docker => match parse_docker_json(&raw) {
                Ok(d) => {
                    let lane = usize::from(d.stream == Stream::Stderr);
                    let log = match d.log {
                        std::borrow::Cow::Borrowed(b) => raw.slice_ref(b),
                        std::borrow::Cow::Owned(v) => Bytes::from(v),
                    };
                    self.piece(lane, log, d.partial, d.time_ns, start, out);
                }
                Err(_) => {
                    self.decode_errors += 1;
                    self.emit(0, raw, read_ns, start, out);
                }
            },
            FileDecoder::Cri => match parse_cri(&raw) {
                Ok(c) => {
                    let lane = usize::from(c.stream == Stream::Stderr);
                    let log = raw.slice_ref(c.log);
                    self.piece(lane, log, c.partial, c.time_ns, start, out);
                }
                Err(_) => {
                    self.decode_errors += 1;
                    self.emit(0, raw, read_ns, start, out);
                }
            },
        }
    }

    /// A piece of a line that may continue in the next raw line (`partial`).
    fn piece(
        &mut self,
        lane: usize,
        log: Bytes,
        partial: bool,
        time: i64,
        start: u64,
        out: &mut Vec<Event>,
    ) {
        let l = &mut self.lanes[lane];
        if !partial && l.partial_start.is_none() {
            self.emit(lane, log, time, start, out);
            return;
        }
        if l.partial_start.is_none() {
            l.partial_start = Some(start);
            l.partial_time = time;
        }
        if let Some(merged) = l.partial.push_bytes(log, partial) {
            let first = l.partial_start.take().unwrap_or(start);
            let t = l.partial_time;
            if merged.truncated {
                self.truncated += 1;
            }
            self.emit(lane, merged.line, t, first, out);
        }
    }

    fn emit(&mut self, lane: usize, line: Bytes, time: i64, start: u64, out: &mut Vec<Event>) {
        let l = &mut self.lanes[lane];
        match &mut l.multiline {
            None => out.push(self.labels.event(lane, time, line)),
            Some(m) => {
                if m.aggregator.pending_first_tag().is_none() {
                    m.record_time = time;
                }
                let prev_time = m.record_time;
                m.last_push = Instant::now();
                if let Some(record) = m.aggregator.push(line, start) {
                    out.push(self.labels.event(lane, prev_time, record.line));
                    m.record_time = time;
                }
            }
        }
    }

    /// Replaces the labels of lines assembled from now on (a renamed container, a pod whose
    /// labels changed).
    pub(super) fn set_labels(&mut self, labels: StreamLabels) {
        self.labels = labels;
    }

    /// Flushes multiline records that have waited longer than their timeout.
    pub(super) fn flush_stale(&mut self, out: &mut Vec<Event>) {
        let now = Instant::now();
        for (i, l) in self.lanes.iter_mut().enumerate() {
            if let Some(m) = &mut l.multiline
                && now.duration_since(m.last_push) >= m.timeout
                && let Some(record) = m.aggregator.flush()
            {
                out.push(self.labels.event(i, m.record_time, record.line));
            }
        }
    }

    /// When a pending multiline record times out, if one is pending.
    pub(super) fn stale_deadline(&self) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|l| l.multiline.as_ref())
            .filter(|m| m.aggregator.pending_first_tag().is_some())
            .map(|m| m.last_push + m.timeout)
            .min()
    }

    /// Flushes everything pending (the file is being closed for good).
    pub(super) fn flush_all(&mut self, out: &mut Vec<Event>) {
        for (i, l) in self.lanes.iter_mut().enumerate() {
            if let Some(merged) = l.partial.flush() {
                l.partial_start = None;
                out.push(self.labels.event(i, l.partial_time, merged.line));
            }
            if let Some(m) = &mut l.multiline
                && let Some(record) = m.aggregator.flush()
            {
                out.push(self.labels.event(i, m.record_time, record.line));
            }
        }
    }

    /// The offset up to which every line has been handed out, given that raw lines were
    /// consumed up to `consumed`: the start of the oldest line still held back, if any.
    pub(super) fn safe_cursor(&self, consumed: u64) -> u64 {
        let mut cursor = consumed;
        for l in &self.lanes {
            if let Some(s) = l.partial_start {
                cursor = cursor.min(s);
            }
            if let Some(s) = l
                .multiline
                .as_ref()
                .and_then(|m| m.aggregator.pending_first_tag())
            {
                cursor = cursor.min(s);
            }
        }
        cursor
    }
}
