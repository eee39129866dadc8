//! One push request's worth of events, grouped into streams by label set, and the bounds that
//! decide when it is sent.
//!
//! Events are moved in, not copied: a [`Stream`] holds the events themselves (their lines are
//! `Bytes` slices of the blocks the source read). The events stay with the batch until Loki has
//! answered, so that a 413 can split the batch and encode the halves again; the body that is
//! retried is the one encoded once. A batch also carries one clone of the acknowledgement token
//! of every chunk that has events in it.

use std::collections::HashMap;
use std::time::Duration;

use logship_config::schema::BatchConfig;
use tokio::time::Instant;

use super::prehashed::PrehashedState;
use super::repair::UNKNOWN;
use crate::pipeline::AckToken;
use crate::pipeline::{Event, LabelSet};

/// The events of one label set, in the order they arrived.
///
/// Entries are not sorted by timestamp: Loki ≥ 2.4 accepts out-of-order writes within a stream
/// (`unordered_writes`, default on, 1 h window), and arrival order is the order the service
/// wrote the lines, which is what a reader of the stream wants to see for equal timestamps.
#[derive(Debug)]
pub struct Stream {
    labels: LabelSet,
    entries: Vec<Event>,
    /// The newest timestamp of this stream sent so far, this batch included, or
    /// [`UNKNOWN`]: what Loki's "entry too far behind" compares with.
    newest_ns: i64,
}

impl Stream {
    /// A stream with these labels and entries.
    pub fn new(labels: LabelSet, entries: Vec<Event>) -> Self {
        Self {
            labels,
            entries,
            newest_ns: UNKNOWN,
        }
    }

    /// The labels and the events, taken apart.
    pub fn into_parts(self) -> (LabelSet, Vec<Event>) {
        (self.labels, self.entries)
    }

    /// The newest timestamp of this stream known when the batch was built (see the field).
    pub fn newest_ns(&self) -> i64 {
        self.newest_ns
    }

    /// The stream's labels (already merged with the sink's static labels).
    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// The stream's events, in arrival order.
    pub fn entries(&self) -> &[Event] {
        &self.entries
    }
}

/// The bounds of a batch, from `[sinks.<id>.batch]`. A batch is sent when any is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Line bytes plus structured-metadata bytes (uncompressed), Loki's own rate-limit measure.
    pub max_bytes: usize,
    /// Events.
    pub max_events: usize,
    /// Longest time the oldest event waits.
    pub timeout: Duration,
}

impl BatchLimits {
    /// The limits a config asks for; zero bounds are raised to one so a batch always holds at
    /// least one event.
    pub fn from_config(config: &BatchConfig) -> Self {
        Self {
            max_bytes: config.max_bytes.max(1),
            max_events: config.max_events.max(1),
            timeout: Duration::from_millis(config.timeout_ms),
        }
    }
}

/// What an event counts towards `max_bytes`: its line and its metadata names and values.
pub fn event_size(event: &Event) -> usize {
    event.line.len()
        + event
            .metadata
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum::<usize>()
}

/// Events grouped by stream, with the acknowledgement tokens of the chunks they came from.
#[derive(Debug, Default)]
pub struct Batch {
    streams: Vec<Stream>,
    index: HashMap<LabelSet, usize, PrehashedState>,
    events: usize,
    bytes: usize,
    line_bytes: usize,
    opened_at: Option<Instant>,
    tokens: Vec<AckToken>,
}

/// Most events a new stream makes room for up front.
const MAX_STREAM_CAPACITY: usize = 4096;

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events the streams of this batch held on average: the room to give the
    /// streams of the next one up front (see [`Batch::open_stream`]).
    pub fn events_per_stream(&self) -> usize {
        (self.events / self.streams.len().max(1)).min(MAX_STREAM_CAPACITY)
    }

    /// A batch of these streams (used by tests, benches and splitting). Streams with equal
    /// labels are kept apart; Loki merges them.
    pub fn from_streams(streams: Vec<Stream>) -> Self {
        let mut batch = Self {
            streams,
            ..Self::default()
        };
        batch.recount();
        batch
    }

    /// The index of the stream for `labels`, created when it is new to this batch.
    #[cfg(test)]
    pub fn stream_index(&mut self, labels: &LabelSet) -> usize {
        self.open_stream(labels, 0, || UNKNOWN)
    }

    /// The index of the stream for `labels`; when it is new to this batch, its newest
    /// timestamp so far is `known_newest()`, and it starts with room for `capacity` events,
    /// so that filling it does not grow it over and over, moving its events each time (that
    /// was 2 % of the agent on W1).
    pub fn open_stream(
        &mut self,
        labels: &LabelSet,
        capacity: usize,
        known_newest: impl FnOnce() -> i64,
    ) -> usize {
        if let Some(&i) = self.index.get(labels) {
            return i;
        }
        let i = self.streams.len();
        let mut stream = Stream::new(labels.clone(), Vec::with_capacity(capacity));
        stream.newest_ns = known_newest();
        self.streams.push(stream);
        self.index.insert(labels.clone(), i);
        i
    }

    /// The newest timestamp of stream `stream`, for the repairs to read and raise.
    ///
    /// # Panics
    /// When `stream` is not an index returned by [`Batch::open_stream`] (a programming error).
    pub fn newest_mut(&mut self, stream: usize) -> &mut i64 {
        &mut self.streams[stream].newest_ns
    }

    /// Appends `event` (whose [`event_size`] is `size`) to stream `stream`. `now` is when it
    /// arrived; the first event's arrival starts the batch timeout.
    ///
    /// # Panics
    /// When `stream` is not an index returned by [`Batch::stream_index`] (a programming error).
    pub fn push(&mut self, stream: usize, event: Event, size: usize, now: Instant) {
        self.opened_at.get_or_insert(now);
        self.events += 1;
        self.bytes += size;
        self.line_bytes += event.line.len();
        self.streams[stream].entries.push(event);
    }

    /// Adds the token of a chunk that has events in this batch.
    pub fn add_token(&mut self, token: AckToken) {
        self.tokens.push(token);
    }

    /// True when `size` more bytes and one more event still fit. An empty batch takes any
    /// event, however large, so an oversized line is sent alone rather than stuck.
    pub fn has_room_for(&self, size: usize, limits: &BatchLimits) -> bool {
        self.events == 0
            || (self.events < limits.max_events && self.bytes + size <= limits.max_bytes)
    }

    /// True when a bound is reached and the batch should be sent now.
    pub fn is_full(&self, limits: &BatchLimits) -> bool {
        self.events >= limits.max_events || self.bytes >= limits.max_bytes
    }

    /// When the batch must be sent at the latest: the first event's arrival plus the timeout.
    pub fn deadline(&self, limits: &BatchLimits) -> Option<Instant> {
        self.opened_at.map(|t| t + limits.timeout)
    }

    /// The streams, in the order they first appeared.
    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events
    }

    /// True when the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Line plus metadata bytes, the measure of `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Line bytes only, for the `sent_bytes` metric.
    pub fn line_bytes(&self) -> usize {
        self.line_bytes
    }

    /// Number of acknowledgement tokens held.
    #[cfg(test)]
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Settles every chunk this batch holds a part of: Loki has answered for it.
    pub fn settle(self) {
        for token in self.tokens {
            token.delivered();
        }
    }

    /// The streams and the acknowledgement tokens, taken apart (to build a batch of some of
    /// the events that keeps every token, with [`Batch::from_parts`]).
    pub fn into_parts(mut self) -> (Vec<Stream>, Vec<AckToken>) {
        (
            std::mem::take(&mut self.streams),
            std::mem::take(&mut self.tokens),
        )
    }

    /// A batch of `streams` holding `tokens`.
    pub fn from_parts(streams: Vec<Stream>, tokens: Vec<AckToken>) -> Self {
        let mut batch = Self::from_streams(streams);
        batch.tokens = tokens;
        batch
    }

    /// Splits the batch into two halves of about equal event counts (whole streams while they
    /// fit, then the entries of the stream that crosses the middle), or gives it back when it
    /// holds a single event. Both halves hold every token: a chunk is settled once both are.
    pub fn split(mut self) -> Result<(Batch, Batch), Batch> {
        if self.events < 2 {
            return Err(self);
        }
        let target = self.events / 2;
        let mut first = Vec::new();
        let mut second = Vec::new();
        let mut taken = 0;
        for mut stream in self.streams.drain(..) {
            let n = stream.entries.len();
            if taken >= target {
                second.push(stream);
            } else if taken + n <= target {
                taken += n;
                first.push(stream);
            } else {
                let rest = stream.entries.split_off(target - taken);
                taken = target;
                second.push(Stream::new(stream.labels.clone(), rest));
                first.push(stream);
            }
        }
        let mut a = Batch::from_streams(first);
        let mut b = Batch::from_streams(second);
        a.opened_at = self.opened_at;
        b.opened_at = self.opened_at;
        for token in self.tokens.drain(..) {
            a.tokens.push(token.clone());
            b.tokens.push(token);
        }
        Ok((a, b))
    }

    fn recount(&mut self) {
        self.events = 0;
        self.bytes = 0;
        self.line_bytes = 0;
        self.index.clear();
        for (i, stream) in self.streams.iter().enumerate() {
            self.events += stream.entries.len();
            self.line_bytes += stream.entries.iter().map(|e| e.line.len()).sum::<usize>();
            self.bytes += stream.entries.iter().map(event_size).sum::<usize>();
            self.index.entry(stream.labels.clone()).or_insert(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::AckLedger;
    use bytes::Bytes;

    fn ev(line: &str, labels: &LabelSet) -> Event {
        Event::new(0, Bytes::copy_from_slice(line.as_bytes()), labels.clone())
    }

    fn limits(max_bytes: usize, max_events: usize) -> BatchLimits {
        BatchLimits {
            max_bytes,
            max_events,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn groups_by_label_set_content() {
        let a = LabelSet::new([("app", "a")]);
        let a_again = LabelSet::new([("app", "a")]);
        let b = LabelSet::new([("app", "b")]);
        let now = Instant::now();
        let mut batch = Batch::new();
        for (labels, line) in [(&a, "1"), (&b, "2"), (&a_again, "3")] {
            let i = batch.stream_index(labels);
            batch.push(i, ev(line, labels), line.len(), now);
        }
        assert_eq!(batch.streams().len(), 2);
        let lines: Vec<&[u8]> = batch.streams()[0]
            .entries()
            .iter()
            .map(|e| &e.line[..])
            .collect();
        assert_eq!(lines, vec![b"1".as_slice(), b"3".as_slice()]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.bytes(), 3);
    }

    #[test]
    fn size_counts_metadata() {
        let labels = LabelSet::empty();
        let mut e = ev("hello", &labels);
        e.metadata
            .push(("trace_id".into(), Bytes::from_static(b"abcd")));
        assert_eq!(event_size(&e), 5 + 8 + 4);
    }

    #[test]
    fn bounds_by_bytes_and_events() {
        let labels = LabelSet::empty();
        let now = Instant::now();
        let l = limits(10, 3);
        let mut batch = Batch::new();
        assert!(batch.has_room_for(100, &l), "an empty batch takes anything");
        let i = batch.stream_index(&labels);
        batch.push(i, ev("123456", &labels), 6, now);
        assert!(batch.has_room_for(4, &l));
        assert!(!batch.has_room_for(5, &l));
        assert!(!batch.is_full(&l));
        batch.push(i, ev("1234", &labels), 4, now);
        assert!(batch.is_full(&l), "10 bytes reach max_bytes");

        let mut batch = Batch::new();
        let i = batch.stream_index(&labels);
        for _ in 0..3 {
            assert!(batch.has_room_for(1, &l));
            batch.push(i, ev("x", &labels), 1, now);
        }
        assert!(batch.is_full(&l));
        assert!(!batch.has_room_for(1, &l));
    }

    #[test]
    fn deadline_runs_from_first_event() {
        let labels = LabelSet::empty();
        let l = limits(100, 100);
        let mut batch = Batch::new();
        assert_eq!(batch.deadline(&l), None);
        let t0 = Instant::now();
        let i = batch.stream_index(&labels);
        batch.push(i, ev("a", &labels), 1, t0);
        batch.push(i, ev("b", &labels), 1, t0 + Duration::from_millis(500));
        assert_eq!(batch.deadline(&l), Some(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn split_halves_streams_and_entries_and_keeps_tokens() {
        let ledger = AckLedger::new(0u64);
        let a = LabelSet::new([("s", "a")]);
        let b = LabelSet::new([("s", "b")]);
        let now = Instant::now();
        let mut batch = Batch::new();
        for n in 0..5 {
            let labels = if n < 4 { &a } else { &b };
            let i = batch.stream_index(labels);
            batch.push(i, ev(&n.to_string(), labels), 1, now);
        }
        batch.add_token(ledger.token(7));
        let (x, y) = batch.split().unwrap();
        assert_eq!((x.len(), y.len()), (2, 3));
        assert_eq!(x.streams().len(), 1);
        assert_eq!(y.streams().len(), 2, "the rest of a plus all of b");
        assert_eq!(y.streams()[0].labels(), &a);
        assert_eq!((x.token_count(), y.token_count()), (1, 1));
        x.settle();
        assert_eq!(ledger.committed(), 0, "half a batch is not the chunk");
        y.settle();
        assert_eq!(ledger.committed(), 7);

        let labels = LabelSet::empty();
        let mut single = Batch::new();
        let i = single.stream_index(&labels);
        single.push(i, ev("only", &labels), 4, now);
        assert!(single.split().is_err());
    }
}
