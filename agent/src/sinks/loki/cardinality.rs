//! The label cardinality guard: bounds how many distinct values each label may take.
//!
//! Every distinct label set is a Loki stream, and streams are what Loki's ingesters pay for
//! (`max_global_streams_per_user` defaults to 5000). One label fed from an unbounded field, a
//! request id mistakenly mapped to a label, would create a stream per line. The guard keeps,
//! per label name, an [`LruCache`] of the values seen recently, of capacity
//! `label_cardinality_limit`. A value already in it passes; a new value passes while there is
//! room; once the cache is full a new value passes only if the least recently seen value has
//! been idle for [`IDLE_AFTER`] (it is evicted and Loki's stream for it has long gone quiet),
//! and otherwise becomes `cardinality_overflow_value`. So the bound holds at any time, and a
//! label whose values churn slowly (containers replaced over a day) does not end up stuck.
//!
//! The limit is per label name, not per label set: with limits `L` on `k` labels, a sink may
//! still create up to `L^k` streams, but only if the values really combine that way.
//! The guard applies to every label that comes with the events, `filename` included (it is
//! bounded by the number of files, so a sane limit never bites it); the sink's static labels
//! are not checked, they are one value each.
//!
//! Every collapsed line counts in `label_overflow{component,label}`; a warning names the label,
//! at most once per label per [`WARN_EVERY`].

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use prometheus::{IntCounter, IntCounterVec};
use tokio::time::Instant;

/// A value unseen for this long may be replaced by a new one when the label is at its limit.
/// Loki's ingesters flush a stream after 30 minutes without data (`chunk_idle_period`).
pub const IDLE_AFTER: Duration = Duration::from_secs(30 * 60);

/// At most one overflow warning per label per this interval.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// What the guard decided for one value.
#[derive(Debug, Clone)]
pub enum Admission {
    /// The value may be used.
    Admitted,
    /// The value must be replaced by the overflow value; the counter counts the lines that were.
    Overflow(IntCounter),
}

/// Per-label bounded sets of recent values. See the module docs.
pub struct CardinalityGuard {
    limit: NonZeroUsize,
    component: Arc<str>,
    overflow_metric: IntCounterVec,
    labels: HashMap<Arc<str>, LabelValues>,
}

struct LabelValues {
    /// Value → when it was last seen.
    seen: LruCache<Arc<str>, Instant>,
    overflowed: IntCounter,
    last_warned: Option<Instant>,
}

impl std::fmt::Debug for CardinalityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardinalityGuard")
            .field("limit", &self.limit)
            .field("labels", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl CardinalityGuard {
    /// A guard allowing `limit` values per label; overflows count in `overflow_metric`
    /// (labels `component`, `label`) under `component`.
    pub fn new(limit: NonZeroUsize, component: Arc<str>, overflow_metric: IntCounterVec) -> Self {
        Self {
            limit,
            component,
            overflow_metric,
            labels: HashMap::new(),
        }
    }

    /// Decides whether label `name` may take `value`, as of `now`, and records the sighting.
    /// Label names come from the config, so the per-name map stays small.
    pub fn check(&mut self, name: &Arc<str>, value: &Arc<str>, now: Instant) -> Admission {
        let limit = self.limit;
        let entry = self
            .labels
            .entry(name.clone())
            .or_insert_with(|| LabelValues {
                // `sparse`: the capacity is a bound, not an allocation made up front.
                seen: LruCache::sparse(limit),
                overflowed: self
                    .overflow_metric
                    .with_label_values(&[&*self.component, &**name]),
                last_warned: None,
            });
        if let Some(last_seen) = entry.seen.get_mut(&**value) {
            *last_seen = now;
            return Admission::Admitted;
        }
        if entry.seen.len() >= limit.get() {
            let idle = entry
                .seen
                .peek_lru()
                .is_some_and(|(_, &last)| now.saturating_duration_since(last) >= IDLE_AFTER);
            if !idle {
                if entry
                    .last_warned
                    .is_none_or(|t| now.saturating_duration_since(t) >= WARN_EVERY)
                {
                    entry.last_warned = Some(now);
                    tracing::warn!(
                        component = %self.component,
                        label = %name,
                        limit = limit.get(),
                        "label `{name}` has more than {} distinct values; new values are \
                         replaced by the overflow value (label_cardinality_limit)",
                        limit.get()
                    );
                }
                return Admission::Overflow(entry.overflowed.clone());
            }
            entry.seen.pop_lru();
        }
        entry.seen.put(value.clone(), now);
        Admission::Admitted
    }

    /// Distinct values currently remembered for `name`.
    #[cfg(test)]
    pub fn tracked(&self, name: &str) -> usize {
        self.labels.get(name).map_or(0, |l| l.seen.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn guard(limit: usize) -> (CardinalityGuard, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let g = CardinalityGuard::new(
            NonZeroUsize::new(limit).unwrap(),
            Arc::from("loki"),
            metrics.label_overflow.clone(),
        );
        (g, metrics)
    }

    fn s(v: &str) -> Arc<str> {
        Arc::from(v)
    }

    #[test]
    fn admits_up_to_limit_then_overflows() {
        let (mut g, metrics) = guard(2);
        let now = Instant::now();
        let pod = s("pod");
        assert!(matches!(g.check(&pod, &s("a"), now), Admission::Admitted));
        assert!(matches!(g.check(&pod, &s("b"), now), Admission::Admitted));
        assert!(matches!(g.check(&pod, &s("a"), now), Admission::Admitted));
        let Admission::Overflow(counter) = g.check(&pod, &s("c"), now) else {
            panic!("third value must overflow");
        };
        counter.inc();
        assert_eq!(
            metrics
                .label_overflow
                .with_label_values(&["loki", "pod"])
                .get(),
            1
        );
        // Other labels have their own bound.
        assert!(matches!(
            g.check(&s("level"), &s("c"), now),
            Admission::Admitted
        ));
        assert_eq!(g.tracked("pod"), 2);
    }

    #[test]
    fn idle_values_make_room() {
        let (mut g, _) = guard(2);
        let t0 = Instant::now();
        let pod = s("pod");
        g.check(&pod, &s("old"), t0);
        g.check(&pod, &s("busy"), t0);
        let later = t0 + IDLE_AFTER / 2;
        g.check(&pod, &s("busy"), later);
        assert!(matches!(
            g.check(&pod, &s("new"), later),
            Admission::Overflow(_)
        ));
        // `old` has been idle long enough; `busy` has not.
        let much_later = t0 + IDLE_AFTER;
        assert!(matches!(
            g.check(&pod, &s("new"), much_later),
            Admission::Admitted
        ));
        assert!(matches!(
            g.check(&pod, &s("newer"), much_later),
            Admission::Overflow(_)
        ));
        assert!(matches!(
            g.check(&pod, &s("busy"), much_later),
            Admission::Admitted
        ));
    }
}
