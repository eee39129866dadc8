//! Repairing what Loki refused when its limits are lower than the sink was told.
//!
//! The reliable place to repair is before sending (`repair`), from `[sinks.<id>.limits]`. But
//! a Loki may be stricter than configured; then its 400 names the refused entries
//! ([`refusals`](super::refusals)) and the limit it applied. Those the sink can identify in the
//! batch (same stream; same timestamp to the precision Loki gave, or the same metadata size,
//! metadata count or line length) are repaired to that limit and sent once more, alone; the
//! entries Loki stored are never sent again. An entry refused a second time, or one that
//! cannot be identified, is counted as discarded with Loki's reason, as before. The
//! `repair_*` switches of `[sinks.<id>.limits]` govern these repairs as they do those before
//! sending ([`Allowed`]).

use logship_config::schema::LokiLimitsConfig;

use super::batch::{Batch, Stream};
use super::refusals::{Reason, Refusal};
use super::repair::{ORIGINAL_TIMESTAMP, floor_char_boundary, rfc3339_nanos, trim_metadata};
use crate::pipeline::Event;

/// Which repairs the sink's `[limits]` switches allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    timestamps: bool,
    metadata: bool,
    lines: bool,
}

impl Allowed {
    /// The switches of `limits`.
    pub fn from_limits(limits: &LokiLimitsConfig) -> Self {
        Self {
            timestamps: limits.repair_timestamps,
            metadata: limits.repair_structured_metadata,
            lines: limits.repair_lines,
        }
    }

    /// Whether a refusal for `reason` may be repaired.
    pub fn allows(self, reason: Reason) -> bool {
        match reason {
            Reason::TooFarBehind | Reason::TooOld | Reason::TooNew => self.timestamps,
            Reason::MetadataTooLarge { .. } | Reason::MetadataTooMany { .. } => self.metadata,
            Reason::LineTooLong { .. } => self.lines,
        }
    }
}

/// The entries of `batch` that `refusals` name, repaired for another attempt, in a batch
/// that holds every token of `batch` (so its chunks settle only when that attempt has been
/// answered for); and why each was repaired. `now_ns` is the time re-stamped entries get.
pub fn repairable(batch: Batch, refusals: &[Refusal], now_ns: i64) -> (Batch, Vec<Reason>) {
    let (streams, tokens) = batch.into_parts();
    let mut used = vec![false; refusals.len()];
    let mut reasons = Vec::new();
    let mut again = Vec::new();
    for stream in streams {
        let (labels, entries) = stream.into_parts();
        let mine: Vec<usize> = (0..refusals.len())
            .filter(|&i| refusals[i].is_stream(&labels))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut kept = Vec::new();
        for mut event in entries {
            let Some(&i) = mine
                .iter()
                .find(|&&i| !used[i] && names(&refusals[i], &event))
            else {
                continue;
            };
            used[i] = true;
            repair(&mut event, refusals[i].reason, now_ns);
            reasons.push(refusals[i].reason);
            kept.push(event);
        }
        if !kept.is_empty() {
            again.push(Stream::new(labels, kept));
        }
    }
    (Batch::from_parts(again, tokens), reasons)
}

/// Whether `refusal` can be about `event` (its stream already matched).
fn names(refusal: &Refusal, event: &Event) -> bool {
    if !refusal.matches_time(event.timestamp_ns) {
        return false;
    }
    match refusal.reason {
        Reason::TooFarBehind | Reason::TooOld | Reason::TooNew => true,
        Reason::MetadataTooLarge { size, .. } => {
            event
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
                == size
        }
        Reason::MetadataTooMany { count, .. } => event.metadata.len() == count,
        Reason::LineTooLong { len, .. } => event.line.len() == len,
    }
}

/// Brings `event` within the limit Loki said it broke.
fn repair(event: &mut Event, reason: Reason, now_ns: i64) {
    match reason {
        Reason::TooFarBehind | Reason::TooOld | Reason::TooNew => {
            // An entry re-stamped before sending already keeps its own time.
            if !event
                .metadata
                .iter()
                .any(|(k, _)| &**k == ORIGINAL_TIMESTAMP)
            {
                event.metadata.push((
                    ORIGINAL_TIMESTAMP.into(),
                    rfc3339_nanos(event.timestamp_ns).into(),
                ));
            }
            event.timestamp_ns = now_ns;
        }
        Reason::MetadataTooLarge { limit, .. } => {
            // The original timestamp may be what pushed it over; it is not kept at any cost.
            trim_metadata(&mut event.metadata, 0, limit);
        }
        Reason::MetadataTooMany { limit, .. } => {
            trim_metadata(&mut event.metadata, limit, 0);
        }
        Reason::LineTooLong { limit, .. } => {
            let cut = floor_char_boundary(&event.line, limit);
            event.line = event.line.slice(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AckLedger, LabelSet};
    use bytes::Bytes;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn event(ts: i64, line: &str, labels: &LabelSet) -> Event {
        Event::new(ts, Bytes::from(line.to_owned()), labels.clone())
    }

    #[test]
    fn only_the_named_entries_are_repaired_and_every_token_kept() {
        let a = LabelSet::new([("job", "a")]);
        let b = LabelSet::new([("job", "b")]);
        let old = NOW - 2 * 86_400_000_000_000 + 123;
        let mut meta = event(NOW, "meta", &a);
        meta.metadata
            .push(("big".into(), Bytes::from("x".repeat(2000))));
        let batch_streams = vec![
            Stream::new(
                a.clone(),
                vec![event(NOW, "fine", &a), event(old, "old", &a), meta],
            ),
            Stream::new(b.clone(), vec![event(old, "old but other stream", &b)]),
        ];
        let ledger = AckLedger::new(0u64);
        let batch = Batch::from_parts(batch_streams, vec![ledger.token(9)]);
        let refusals = vec![
            Refusal {
                stream: vec![
                    ("job".into(), "a".into()),
                    ("service_name".into(), "a".into()),
                ],
                reason: Reason::TooOld,
                timestamp: Some((old - 123, 1_000_000_000)),
            },
            Refusal {
                stream: vec![("job".into(), "a".into())],
                reason: Reason::MetadataTooLarge {
                    size: 2003,
                    limit: 1000,
                },
                timestamp: None,
            },
        ];
        let (again, reasons) = repairable(batch, &refusals, NOW + 7);
        assert_eq!(again.len(), 2);
        assert_eq!(reasons.len(), 2);
        let entries = again.streams()[0].entries();
        assert_eq!(&entries[0].line[..], b"old");
        assert_eq!(entries[0].timestamp_ns, NOW + 7);
        assert_eq!(
            entries[0].metadata[0].1,
            Bytes::from(rfc3339_nanos(old)),
            "its own time kept"
        );
        assert_eq!(&entries[1].line[..], b"meta");
        let size: usize = entries[1]
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert_eq!(size, 1000);
        again.settle();
        assert_eq!(
            ledger.committed(),
            9,
            "the re-sent batch holds the chunk's token"
        );
    }

    #[test]
    fn the_limits_switches_decide_what_may_be_repaired() {
        let off = Allowed::from_limits(&LokiLimitsConfig {
            repair_timestamps: false,
            ..LokiLimitsConfig::default()
        });
        assert!(!off.allows(Reason::TooOld) && !off.allows(Reason::TooFarBehind));
        assert!(off.allows(Reason::LineTooLong { len: 2, limit: 1 }));
        assert!(Allowed::from_limits(&LokiLimitsConfig::default()).allows(Reason::TooNew));
    }

    #[test]
    fn nothing_identifiable_leaves_an_empty_batch_with_the_tokens() {
        let a = LabelSet::new([("job", "a")]);
        let ledger = AckLedger::new(0u64);
        let batch = Batch::from_parts(
            vec![Stream::new(a.clone(), vec![event(NOW, "x", &a)])],
            vec![ledger.token(3)],
        );
        let refusals = vec![Refusal {
            stream: vec![("job".into(), "a".into())],
            reason: Reason::TooFarBehind,
            timestamp: Some((NOW - 1, 1)),
        }];
        let (again, reasons) = repairable(batch, &refusals, NOW);
        assert!(again.is_empty() && reasons.is_empty());
        again.settle();
        assert_eq!(ledger.committed(), 3);
    }
}
