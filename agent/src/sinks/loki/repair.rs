//! Repairing entries before they are sent, so that Loki's limits (`[sinks.<id>.limits]`)
//! accept them rather than refuse them with a 400 that loses them.
//!
//! | Loki would refuse | logship sends instead | `reason` |
//! |---|---|---|
//! | timestamp older than `reject_old_samples_max_age` | the time it was read, its own in `original_timestamp` | `timestamp_too_old` |
//! | timestamp beyond `creation_grace_period` | same | `timestamp_too_new` |
//! | more than `max_chunk_age / 2` behind its stream's newest entry | same, never below that bound | `entry_too_far_behind` |
//! | line longer than `max_line_size` | the line cut there (on a character boundary) | `line_too_long` |
//! | more metadata pairs than `max_structured_metadata_entries_count` | without the largest values | `structured_metadata_too_many` |
//! | more metadata bytes than `max_structured_metadata_size` | the largest values cut, or dropped when cutting cannot fit | `structured_metadata_too_large` |
//!
//! Every repair is counted in `logship_loki_entries_repaired_total{component, reason}`; labels
//! are repaired in [`labels`](super::labels). "The time it was read" is when the sink took the
//! entry in, which for a line read now is within a batch timeout of its read time.
//!
//! The checks keep a [`MARGIN`] inside Loki's bounds, because a batch reaches Loki a little
//! later than it is built and the two clocks differ. A stream's newest timestamp is tracked per
//! label set across batches (in the order batches are built, for up to 16,384 streams), so
//! "too far behind" is caught even when the newer entry went out in an earlier push.
//!
//! A consequence worth knowing: once an entry of a stream is re-stamped with the read time,
//! the stream's newest entry is "now", so older entries of the same stream that follow (a
//! backlog of days) are more than the window behind it and are re-stamped too. Nothing is
//! lost; their own times are in `original_timestamp`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use logship_config::schema::LokiLimitsConfig;
use prometheus::IntCounter;

use super::prehashed::PrehashedState;
use crate::pipeline::{Event, LabelSet, Metadata, MetadataName};
use crate::telemetry::Metrics;

/// The structured-metadata name under which a re-stamped entry keeps its own timestamp.
pub const ORIGINAL_TIMESTAMP: &str = "original_timestamp";

/// How far inside Loki's time bounds the checks stay (at most a quarter of the bound).
pub const MARGIN: Duration = Duration::from_secs(60);

/// Streams whose newest timestamp is remembered between batches; past this many the memory
/// is cleared (a forgotten stream is only checked against its entries of the current batch
/// until it is sent again). Grown as needed, so a small pipeline holds a small map.
const TRACKED_STREAMS: usize = 16_384;

/// A timestamp meaning "no entry seen yet".
pub const UNKNOWN: i64 = i64::MIN;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `d` minus the margin, never less than three quarters of `d`.
fn inside(d: Duration) -> i64 {
    nanos(d.saturating_sub(MARGIN.min(d / 4)))
}

/// One counter per repair reason.
struct Counters {
    too_old: IntCounter,
    too_new: IntCounter,
    behind: IntCounter,
    line: IntCounter,
    metadata_count: IntCounter,
    metadata_size: IntCounter,
}

impl Counters {
    fn new(metrics: &Metrics, id: &str) -> Self {
        let c = |reason: &str| {
            metrics
                .loki_entries_repaired
                .with_label_values(&[id, reason])
        };
        Self {
            too_old: c("timestamp_too_old"),
            too_new: c("timestamp_too_new"),
            behind: c("entry_too_far_behind"),
            line: c("line_too_long"),
            metadata_count: c("structured_metadata_too_many"),
            metadata_size: c("structured_metadata_too_large"),
        }
    }
}

/// Repairs entries against one sink's limits. See the module docs.
pub struct EntryRepair {
    /// `reject_old_samples_max_age` inside the margin, when old samples are refused.
    max_age_ns: Option<i64>,
    grace_ns: i64,
    /// Half of `max_chunk_age`, inside the margin.
    behind_ns: i64,
    max_line: usize,
    max_metadata_bytes: usize,
    max_metadata_pairs: usize,
    timestamps: bool,
    metadata: bool,
    lines: bool,
    counters: Counters,
    newest: HashMap<LabelSet, i64, PrehashedState>,
    original_name: MetadataName,
}

impl std::fmt::Debug for EntryRepair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryRepair")
            .field("max_age_ns", &self.max_age_ns)
            .field("grace_ns", &self.grace_ns)
            .field("behind_ns", &self.behind_ns)
            .field("max_line", &self.max_line)
            .field("max_metadata_bytes", &self.max_metadata_bytes)
            .field("max_metadata_pairs", &self.max_metadata_pairs)
            .finish_non_exhaustive()
    }
}

impl EntryRepair {
    /// The repairs `limits` asks for, counted under sink `id`.
    pub fn new(limits: &LokiLimitsConfig, metrics: &Metrics, id: &str) -> Self {
        Self {
            max_age_ns: limits
                .reject_old_samples
                .then(|| inside(limits.reject_old_samples_max_age.0)),
            grace_ns: inside(limits.creation_grace_period.0),
            behind_ns: inside(limits.max_chunk_age.0 / 2),
            max_line: limits.max_line_size.bytes(),
            max_metadata_bytes: limits.max_structured_metadata_size.bytes(),
            max_metadata_pairs: limits.max_structured_metadata_entries_count,
            timestamps: limits.repair_timestamps,
            metadata: limits.repair_structured_metadata,
            lines: limits.repair_lines,
            counters: Counters::new(metrics, id),
            newest: HashMap::with_hasher(PrehashedState),
            original_name: MetadataName::interned(ORIGINAL_TIMESTAMP),
        }
    }

    /// The newest timestamp sent so far in the stream `labels`, or [`UNKNOWN`].
    pub fn known_newest(&mut self, labels: &LabelSet) -> i64 {
        self.newest.get(labels).copied().unwrap_or(UNKNOWN)
    }

    /// Records the newest timestamp of a stream that is about to be sent.
    pub fn remember(&mut self, labels: &LabelSet, newest: i64) {
        if newest == UNKNOWN {
            return;
        }
        match self.newest.get_mut(labels) {
            Some(known) => *known = (*known).max(newest),
            None => {
                if self.newest.len() >= TRACKED_STREAMS {
                    self.newest.clear();
                }
                self.newest.insert(labels.clone(), newest);
            }
        }
    }

    /// Repairs `event` of a stream whose newest timestamp is `newest` (updated here), at wall
    /// time `now_ns`. Returns true when the event changed (its size may have).
    pub fn repair(&self, event: &mut Event, newest: &mut i64, now_ns: i64) -> bool {
        let mut changed = false;
        if self.timestamps {
            changed |= self.repair_timestamp(event, *newest, now_ns);
        }
        *newest = (*newest).max(event.timestamp_ns);
        if self.lines && self.max_line != 0 && event.line.len() > self.max_line {
            let cut = floor_char_boundary(&event.line, self.max_line);
            event.line = event.line.slice(..cut);
            self.counters.line.inc();
            changed = true;
        }
        if self.metadata && !event.metadata.is_empty() {
            let (fewer, smaller) = trim_metadata(
                &mut event.metadata,
                self.max_metadata_pairs,
                self.max_metadata_bytes,
            );
            if fewer {
                self.counters.metadata_count.inc();
            }
            if smaller {
                self.counters.metadata_size.inc();
            }
            changed |= fewer || smaller;
        }
        changed
    }

    fn repair_timestamp(&self, event: &mut Event, newest: i64, now_ns: i64) -> bool {
        let ts = event.timestamp_ns;
        let floor = if newest == UNKNOWN {
            i64::MIN
        } else {
            newest.saturating_sub(self.behind_ns)
        };
        let counter = if self
            .max_age_ns
            .is_some_and(|age| ts < now_ns.saturating_sub(age))
        {
            &self.counters.too_old
        } else if ts > now_ns.saturating_add(self.grace_ns) {
            &self.counters.too_new
        } else if ts < floor {
            &self.counters.behind
        } else {
            return false;
        };
        counter.inc();
        event
            .metadata
            .push((self.original_name.clone(), Bytes::from(rfc3339_nanos(ts))));
        event.timestamp_ns = now_ns.max(floor);
        true
    }
}

/// `ts` (Unix nanoseconds) as RFC 3339 in UTC with as many fraction digits as it needs.
pub fn rfc3339_nanos(ts: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ts)) {
        Ok(t) => t.to_string(),
        Err(_) => ts.to_string(),
    }
}

/// The largest index ≤ `at` that does not split a UTF-8 character of `text`.
pub fn floor_char_boundary(text: &[u8], at: usize) -> usize {
    let mut at = at.min(text.len());
    while at > 0 && at < text.len() && (text[at] & 0xC0) == 0x80 {
        at -= 1;
    }
    at
}

fn pair_size(pair: &(MetadataName, Bytes)) -> usize {
    pair.0.len() + pair.1.len()
}

fn largest(metadata: &Metadata) -> Option<usize> {
    (0..metadata.len()).max_by_key(|&i| metadata[i].1.len())
}

/// Brings `metadata` within `max_pairs` pairs and `max_bytes` bytes (0 = no limit) by dropping
/// or cutting the largest values first, so that small values such as `trace_id` are the last
/// to go. Returns (pairs dropped for the count, values cut or dropped for the size).
pub fn trim_metadata(metadata: &mut Metadata, max_pairs: usize, max_bytes: usize) -> (bool, bool) {
    let mut fewer = false;
    while max_pairs != 0 && metadata.len() > max_pairs {
        let Some(i) = largest(metadata) else { break };
        metadata.remove(i);
        fewer = true;
    }
    let mut smaller = false;
    if max_bytes == 0 {
        return (fewer, smaller);
    }
    loop {
        let size: usize = metadata.iter().map(pair_size).sum();
        if size <= max_bytes {
            return (fewer, smaller);
        }
        let Some(i) = largest(metadata) else {
            return (fewer, smaller);
        };
        smaller = true;
        let excess = size - max_bytes;
        let value = &metadata[i].1;
        if value.len() > excess {
            let cut = floor_char_boundary(value, value.len() - excess);
            if cut > 0 {
                metadata[i].1 = value.slice(..cut);
                continue;
            }
        }
        // Cutting this value cannot make room (the names alone are too large): drop it.
        metadata.remove(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LabelSet;
    use std::sync::Arc;

    const NOW: i64 = 1_780_000_000_000_000_000;
    const MINUTE: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MINUTE;

    fn repair() -> (EntryRepair, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (
            EntryRepair::new(&LokiLimitsConfig::default(), &metrics, "loki"),
            metrics,
        )
    }

    fn event(ts: i64, line: &str) -> Event {
        Event::new(ts, Bytes::from(line.to_owned()), LabelSet::empty())
    }

    fn count(metrics: &Metrics, reason: &str) -> u64 {
        metrics
            .loki_entries_repaired
            .with_label_values(&["loki", reason])
            .get()
    }

    fn original(e: &Event) -> Option<&[u8]> {
        e.metadata
            .iter()
            .find(|(k, _)| &**k == ORIGINAL_TIMESTAMP)
            .map(|(_, v)| &v[..])
    }

    #[test]
    fn timestamps_outside_the_window_are_restamped_and_kept() {
        let (r, m) = repair();
        let mut newest = UNKNOWN;
        let mut ok = event(NOW - 6 * 24 * HOUR, "six days");
        assert!(!r.repair(&mut ok, &mut newest, NOW));
        assert_eq!(newest, NOW - 6 * 24 * HOUR);

        let old_ts = NOW - 8 * 24 * HOUR;
        let mut old = event(old_ts, "eight days");
        assert!(r.repair(&mut old, &mut newest, NOW));
        assert_eq!(old.timestamp_ns, NOW);
        assert_eq!(original(&old), Some(rfc3339_nanos(old_ts).as_bytes()));
        assert_eq!(count(&m, "timestamp_too_old"), 1);

        let mut new = event(NOW + 11 * MINUTE + 5, "future");
        assert!(r.repair(&mut new, &mut newest, NOW));
        assert_eq!(new.timestamp_ns, NOW);
        assert_eq!(count(&m, "timestamp_too_new"), 1);

        // Within the grace period (and the margin) it keeps its time.
        let mut soon = event(NOW + 8 * MINUTE, "soon");
        assert!(!r.repair(&mut soon, &mut newest, NOW));
        assert_eq!(newest, NOW + 8 * MINUTE);
        assert_eq!(
            rfc3339_nanos(1_718_000_000_123_456_789),
            "2024-06-10T06:13:20.123456789Z"
        );
    }

    #[test]
    fn entries_far_behind_their_stream_are_lifted() {
        let (r, m) = repair();
        let mut newest = NOW - 2 * HOUR;
        let mut behind = event(NOW - 4 * HOUR, "behind");
        assert!(r.repair(&mut behind, &mut newest, NOW));
        assert_eq!(behind.timestamp_ns, NOW, "the read time is above the floor");
        assert_eq!(count(&m, "entry_too_far_behind"), 1);
        assert_eq!(newest, NOW);

        // 50 minutes behind is within the hour.
        let mut near = event(NOW - 50 * MINUTE, "near");
        assert!(!r.repair(&mut near, &mut newest, NOW));
        assert_eq!(near.timestamp_ns, NOW - 50 * MINUTE);
    }

    #[test]
    fn streams_remember_their_newest_entry() {
        let (mut r, _) = repair();
        let labels = LabelSet::new([("service", "api")]);
        assert_eq!(r.known_newest(&labels), UNKNOWN);
        r.remember(&labels, NOW);
        r.remember(&labels, NOW - HOUR);
        assert_eq!(r.known_newest(&labels), NOW);
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let (r, m) = repair();
        let mut newest = UNKNOWN;
        let mut line = "a".repeat(256 * 1024 - 1);
        line.push('é'); // two bytes across the limit
        let mut e = event(NOW, &line);
        assert!(r.repair(&mut e, &mut newest, NOW));
        assert_eq!(e.line.len(), 256 * 1024 - 1);
        assert_eq!(count(&m, "line_too_long"), 1);
    }

    #[test]
    fn metadata_loses_its_largest_values_first() {
        let pair = |k: &str, v: String| (MetadataName::from(k), Bytes::from(v));
        let mut meta: Metadata = Metadata::new();
        meta.push(pair("trace_id", "t".repeat(32)));
        meta.push(pair("stack", "s".repeat(70_000)));
        meta.push(pair("body", "b".repeat(10_000)));
        let (fewer, smaller) = trim_metadata(&mut meta, 128, 65_536);
        assert!(!fewer && smaller);
        let size: usize = meta.iter().map(pair_size).sum();
        assert_eq!(size, 65_536, "cut exactly to the limit");
        assert_eq!(meta[0].1.len(), 32, "trace_id untouched");
        assert_eq!(meta[2].1.len(), 10_000);

        let mut many: Metadata = (0..130)
            .map(|i| pair(&format!("k{i}"), "v".repeat(i)))
            .collect();
        let (fewer, smaller) = trim_metadata(&mut many, 128, 0);
        assert!(fewer && !smaller);
        assert_eq!(many.len(), 128);
        assert!(
            many.iter().all(|(_, v)| v.len() < 128),
            "the two largest went"
        );
    }

    #[test]
    fn switched_off_repairs_leave_entries_alone() {
        let limits = LokiLimitsConfig {
            repair_timestamps: false,
            repair_lines: false,
            ..LokiLimitsConfig::default()
        };
        let r = EntryRepair::new(&limits, &Metrics::new(), "loki");
        let mut newest = UNKNOWN;
        let mut e = event(NOW - 30 * 24 * HOUR, &"x".repeat(300_000));
        assert!(!r.repair(&mut e, &mut newest, NOW));
        assert_eq!(e.timestamp_ns, NOW - 30 * 24 * HOUR);
        assert_eq!(e.line.len(), 300_000);
    }
}
