//! The stream labels the sink sends: the event's labels, checked by the cardinality guard,
//! merged with the sink's static labels, and interned.
//!
//! The merged set is then made acceptable to Loki ([`LabelRepair`]): names made valid, long
//! names and values cut, labels beyond Loki's count moved to structured metadata.
//!
//! Static labels win over event labels of the same name (as in Vector): they are what the
//! operator wrote for this sink, e.g. `cluster = "prod"`, and must not be overridden by whatever
//! a log line or container happens to carry. A stream that would end up with no label at all
//! gets `agent="logship"`, because Loki rejects a stream without labels (as Vector does with
//! `agent="vector"`).
//!
//! Merging builds a new [`LabelSet`] (allocations, a selector render), so it is done once per
//! distinct incoming set and cached, keyed by the incoming set (its precomputed hash, then
//! pointer equality): in steady state an event costs one map lookup, and the run loop skips even
//! that while consecutive events share a set. Cached results are checked against the guard
//! again every [`RECHECK_EVERY`], so values in use stay fresh in its LRU and a label that
//! overflowed gets its real value back once there is room.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use prometheus::IntCounter;
use tokio::time::Instant;

use bytes::Bytes;

use super::cardinality::{Admission, CardinalityGuard};
use super::label_repair::LabelRepair;
use super::prehashed::PrehashedState;
use crate::pipeline::{LabelSet, MetadataName};

/// A cached merge is re-checked against the cardinality guard after this long.
pub const RECHECK_EVERY: Duration = Duration::from_secs(10);

/// Distinct incoming label sets remembered; the least recently used is forgotten beyond this.
const CACHE_CAPACITY: NonZeroUsize = NonZeroUsize::new(4096).unwrap();

/// The label given to a stream that would have none.
const DEFAULT_LABEL: (&str, &str) = ("agent", "logship");

/// The labels to send for one incoming label set.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The merged, guarded, repaired set.
    pub labels: LabelSet,
    /// What else every line of the set gets (one allocation: cloning a `Resolved`, once per
    /// change of label set in the sink's loop, costs two reference counts).
    pub extras: Arc<Extras>,
    checked_at: Instant,
}

/// The per-line work a resolved label set asks for.
#[derive(Debug, Default)]
pub struct Extras {
    /// One counter per label that collapsed to the overflow value and per label repair
    /// made; each is bumped once per line.
    pub per_line: Vec<IntCounter>,
    /// Labels that did not fit Loki's limits, sent as structured metadata of every entry.
    pub demoted: Vec<(MetadataName, Bytes)>,
}

impl Resolved {
    /// A resolution made by hand, checked now.
    #[cfg(test)]
    pub(super) fn for_tests(labels: LabelSet, extras: Arc<Extras>) -> Self {
        Self {
            labels,
            extras,
            checked_at: Instant::now(),
        }
    }

    /// Counts one line under every label that overflowed or was repaired.
    #[inline]
    pub fn count_line(&self) {
        for counter in &self.extras.per_line {
            counter.inc();
        }
    }

    /// Labels moved to structured metadata, for every entry of the set.
    pub fn demoted(&self) -> &[(MetadataName, Bytes)] {
        &self.extras.demoted
    }
}

/// Merges, guards and interns label sets. See the module docs.
pub struct StreamLabeler {
    static_pairs: Vec<(Arc<str>, Arc<str>)>,
    overflow_value: Arc<str>,
    guard: CardinalityGuard,
    repair: LabelRepair,
    cache: LruCache<LabelSet, Resolved, PrehashedState>,
}

impl std::fmt::Debug for StreamLabeler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLabeler")
            .field("static_pairs", &self.static_pairs)
            .field("overflow_value", &self.overflow_value)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl StreamLabeler {
    /// A labeler adding `static_labels`, collapsing guarded values to `overflow_value`, and
    /// making the result fit Loki's label limits with `repair`.
    pub fn new(
        static_labels: &BTreeMap<String, String>,
        overflow_value: &str,
        guard: CardinalityGuard,
        repair: LabelRepair,
    ) -> Self {
        Self {
            static_pairs: static_labels
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
                .collect(),
            overflow_value: Arc::from(overflow_value),
            guard,
            repair,
            cache: LruCache::with_hasher(CACHE_CAPACITY, PrehashedState),
        }
    }

    /// The labels to send for events labelled `labels`, as of `now`.
    pub fn resolve(&mut self, labels: &LabelSet, now: Instant) -> Resolved {
        if let Some(hit) = self.cache.get(labels)
            && now.saturating_duration_since(hit.checked_at) < RECHECK_EVERY
        {
            return hit.clone();
        }
        let resolved = self.merge(labels, now);
        self.cache.put(labels.clone(), resolved.clone());
        resolved
    }

    fn merge(&mut self, labels: &LabelSet, now: Instant) -> Resolved {
        let mut pairs: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(labels.pairs().len() + 4);
        let mut overflow = Vec::new();
        for (name, value) in labels.pairs() {
            if self.static_pairs.iter().any(|(k, _)| k == name) {
                continue; // static wins; the event's value never reaches Loki
            }
            match self.guard.check(name, value, now) {
                Admission::Admitted => pairs.push((name.clone(), value.clone())),
                Admission::Overflow(counter) => {
                    pairs.push((name.clone(), self.overflow_value.clone()));
                    overflow.push(counter);
                }
            }
        }
        pairs.extend(self.static_pairs.iter().cloned());
        if pairs.is_empty() {
            pairs.push((Arc::from(DEFAULT_LABEL.0), Arc::from(DEFAULT_LABEL.1)));
        }
        let statics = &self.static_pairs;
        let repaired = self
            .repair
            .repair(&mut pairs, |name| statics.iter().any(|(k, _)| &**k == name));
        overflow.extend(repaired.counters);
        Resolved {
            labels: LabelSet::new(pairs),
            extras: Arc::new(Extras {
                per_line: overflow,
                demoted: repaired.demoted,
            }),
            checked_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn labeler(statics: &[(&str, &str)], limit: usize) -> (StreamLabeler, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let guard = CardinalityGuard::new(
            NonZeroUsize::new(limit).unwrap(),
            Arc::from("loki"),
            metrics.label_overflow.clone(),
        );
        let statics = statics
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let repair = LabelRepair::new(
            &logship_config::schema::LokiLimitsConfig::default(),
            &metrics,
            "loki",
        );
        (
            StreamLabeler::new(&statics, "__overflow__", guard, repair),
            metrics,
        )
    }

    #[test]
    fn static_labels_win() {
        let (mut l, _) = labeler(&[("env", "prod"), ("cluster", "eu")], 10);
        let event = LabelSet::new([("env", "dev"), ("service", "api")]);
        let r = l.resolve(&event, Instant::now());
        assert_eq!(
            r.labels.selector(),
            r#"{cluster="eu", env="prod", service="api"}"#
        );
        assert!(r.extras.per_line.is_empty());
    }

    #[test]
    fn empty_sets_get_a_default_label() {
        let (mut l, _) = labeler(&[], 10);
        let r = l.resolve(&LabelSet::empty(), Instant::now());
        assert_eq!(r.labels.selector(), r#"{agent="logship"}"#);
    }

    #[test]
    fn merges_are_cached_until_recheck() {
        let (mut l, _) = labeler(&[("env", "prod")], 10);
        let event = LabelSet::new([("service", "api")]);
        let now = Instant::now();
        let a = l.resolve(&event, now);
        let b = l.resolve(&event, now + Duration::from_secs(1));
        assert!(a.labels.ptr_eq(&b.labels), "cache hit returns the same set");
        let c = l.resolve(&event, now + RECHECK_EVERY);
        assert!(!a.labels.ptr_eq(&c.labels), "stale entry is merged again");
        assert_eq!(a.labels, c.labels);
    }

    #[test]
    fn overflowing_values_collapse_and_count() {
        let (mut l, metrics) = labeler(&[("env", "prod")], 2);
        let now = Instant::now();
        let mut selectors = Vec::new();
        for pod in ["a", "b", "c", "d"] {
            let r = l.resolve(&LabelSet::new([("pod", pod), ("env", pod)]), now);
            r.count_line();
            selectors.push(r.labels.selector().to_owned());
        }
        assert_eq!(selectors[0], r#"{env="prod", pod="a"}"#);
        assert_eq!(selectors[1], r#"{env="prod", pod="b"}"#);
        assert_eq!(selectors[2], r#"{env="prod", pod="__overflow__"}"#);
        assert_eq!(selectors[3], selectors[2]);
        let counted = metrics
            .label_overflow
            .with_label_values(&["loki", "pod"])
            .get();
        assert_eq!(counted, 2);
        // `env` is static: the guard never saw the event's four values.
        assert_eq!(
            metrics
                .label_overflow
                .with_label_values(&["loki", "env"])
                .get(),
            0
        );
    }
}
