//! Making a stream's labels acceptable to Loki, once per distinct label set.
//!
//! Loki refuses a whole push when a label name does not parse, and every entry of a stream
//! whose names or values are too long or too many. Label names from the config are checked
//! by `logship validate`, but values (and names built from container or pod metadata) come
//! from outside, so the sink repairs what it sends:
//!
//! | Loki would refuse | logship sends instead | `reason` |
//! |---|---|---|
//! | a name outside `[a-zA-Z_][a-zA-Z0-9_]*` | invalid characters as `_` (a leading digit gets a `_` before it) | `label_name_invalid` |
//! | a name over `max_label_name_length` | the name cut | `label_name_too_long` |
//! | a value over `max_label_value_length` | the value cut on a character boundary | `label_value_too_long` |
//! | more than `max_label_names_per_series` names (with the `service_name` Loki adds when it is missing) | the labels beyond the limit as structured metadata | `too_many_labels` |
//!
//! Label values are `str`s by construction (sources and transforms make invalid UTF-8 valid
//! with U+FFFD before a label is made), so no value needs its bytes repaired here.
//! The sink's static labels are never the ones moved: they are what the operator asked for;
//! well-known selectors (`service`, `level`, `namespace`, ...) go only after all others.

use std::sync::Arc;

use bytes::Bytes;
use logship_config::schema::LokiLimitsConfig;
use prometheus::IntCounter;

use super::repair::floor_char_boundary;
use crate::pipeline::MetadataName;
use crate::telemetry::Metrics;

/// The label Loki 3 adds to a stream without one, counted towards its label limit.
pub const SERVICE_NAME: &str = "service_name";

/// Labels that are moved to metadata last: the ones Loki, Grafana and operators select by.
const MOVED_LAST: &[&str] = &[
    SERVICE_NAME,
    "service",
    "app",
    "job",
    "level",
    "namespace",
    "pod",
    "container",
    "cluster",
];

/// A label pair.
pub type Pair = (Arc<str>, Arc<str>);

/// The label limits of one sink, and the counters of their repairs.
pub struct LabelRepair {
    enabled: bool,
    max_names: usize,
    max_name_len: usize,
    max_value_len: usize,
    invalid_name: IntCounter,
    long_name: IntCounter,
    long_value: IntCounter,
    too_many: IntCounter,
}

impl std::fmt::Debug for LabelRepair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelRepair")
            .field("enabled", &self.enabled)
            .field("max_names", &self.max_names)
            .field("max_name_len", &self.max_name_len)
            .field("max_value_len", &self.max_value_len)
            .finish_non_exhaustive()
    }
}

/// What repairing one label set did.
#[derive(Debug, Default)]
pub struct Repaired {
    /// Pairs moved out of the labels, to be sent as structured metadata of every entry.
    pub demoted: Vec<(MetadataName, Bytes)>,
    /// One counter per repair made, to be bumped once per line of the stream.
    pub counters: Vec<IntCounter>,
}

impl LabelRepair {
    /// The label repairs `limits` asks for, counted under sink `id`.
    pub fn new(limits: &LokiLimitsConfig, metrics: &Metrics, id: &str) -> Self {
        let c = |reason: &str| {
            metrics
                .loki_entries_repaired
                .with_label_values(&[id, reason])
        };
        Self {
            enabled: limits.repair_labels,
            max_names: limits.max_label_names_per_series.max(1),
            max_name_len: limits.max_label_name_length.max(1),
            max_value_len: limits.max_label_value_length.max(1),
            invalid_name: c("label_name_invalid"),
            long_name: c("label_name_too_long"),
            long_value: c("label_value_too_long"),
            too_many: c("too_many_labels"),
        }
    }

    /// Repairs `pairs` in place. `is_static` tells the sink's own labels, which are kept
    /// when labels must be moved to metadata.
    pub fn repair(&self, pairs: &mut Vec<Pair>, is_static: impl Fn(&str) -> bool) -> Repaired {
        let mut out = Repaired::default();
        if !self.enabled {
            return out;
        }
        let (mut invalid, mut long_name, mut long_value) = (false, false, false);
        let mut kept: Vec<Pair> = Vec::with_capacity(pairs.len());
        for (name, value) in pairs.drain(..) {
            let mut name = name;
            if let Some(valid) = valid_name(&name) {
                name = Arc::from(valid);
                invalid = true;
            }
            if name.len() > self.max_name_len {
                name = Arc::from(&name[..self.max_name_len]);
                long_name = true;
            }
            let mut value = value;
            if value.len() > self.max_value_len {
                let cut = floor_char_boundary(value.as_bytes(), self.max_value_len);
                value = Arc::from(&value[..cut]);
                long_value = true;
            }
            if kept.iter().any(|(k, _)| *k == name) {
                // Two names became one: the second travels as metadata.
                out.demoted
                    .push((name.into(), Bytes::from(value.to_string())));
                continue;
            }
            kept.push((name, value));
        }
        let with_service = |n: usize, kept: &[Pair]| {
            n + usize::from(!kept.iter().any(|(k, _)| &**k == SERVICE_NAME))
        };
        let mut too_many = false;
        while with_service(kept.len(), &kept) > self.max_names {
            // The last (by name) of the labels that are not the sink's own, well-known
            // selectors only when nothing else is left.
            let last_of = |pick: &dyn Fn(&str) -> bool| {
                (0..kept.len())
                    .filter(|&i| !is_static(&kept[i].0) && pick(&kept[i].0))
                    .max_by(|&a, &b| kept[a].0.cmp(&kept[b].0))
            };
            let Some(i) =
                last_of(&|name| !MOVED_LAST.contains(&name)).or_else(|| last_of(&|_| true))
            else {
                break;
            };
            let (name, value) = kept.remove(i);
            out.demoted
                .push((name.into(), Bytes::from(value.to_string())));
            too_many = true;
        }
        *pairs = kept;
        for (happened, counter) in [
            (invalid, &self.invalid_name),
            (long_name, &self.long_name),
            (long_value, &self.long_value),
            (too_many, &self.too_many),
        ] {
            if happened {
                out.counters.push(counter.clone());
            }
        }
        out
    }
}

/// `name` made a valid Loki label name, or `None` when it already is one.
fn valid_name(name: &str) -> Option<String> {
    let ok =
        |i: usize, c: char| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
    if !name.is_empty() && name.chars().enumerate().all(|(i, c)| ok(i, c)) {
        return None;
    }
    let mut out = String::with_capacity(name.len() + 1);
    if name.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c == '_' || c.is_ascii_alphanumeric() {
            c
        } else {
            '_'
        }
    }));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<Pair> {
        list.iter()
            .map(|(k, v)| (Arc::from(*k), Arc::from(*v)))
            .collect()
    }

    fn reasons(metrics: &Metrics, reason: &str) -> u64 {
        metrics
            .loki_entries_repaired
            .with_label_values(&["loki", reason])
            .get()
    }

    #[test]
    fn names_become_valid_and_long_values_are_cut() {
        let metrics = Metrics::new();
        let r = LabelRepair::new(&LokiLimitsConfig::default(), &metrics, "loki");
        let long = "é".repeat(1500); // 3000 bytes
        let mut p = pairs(&[
            ("app.kubernetes.io/name", "api"),
            ("9lives", "x"),
            ("v", &long),
        ]);
        let out = r.repair(&mut p, |_| false);
        let names: Vec<&str> = p.iter().map(|(k, _)| &**k).collect();
        assert_eq!(names, ["app_kubernetes_io_name", "_9lives", "v"]);
        assert_eq!(p[2].1.len(), 2048, "cut on a character boundary");
        assert!(out.demoted.is_empty());
        for c in &out.counters {
            c.inc();
        }
        assert_eq!(reasons(&metrics, "label_name_invalid"), 1);
        assert_eq!(reasons(&metrics, "label_value_too_long"), 1);
    }

    #[test]
    fn labels_beyond_the_limit_move_to_metadata_counting_service_name() {
        let metrics = Metrics::new();
        let r = LabelRepair::new(&LokiLimitsConfig::default(), &metrics, "loki");
        let names: Vec<String> = (0..15).map(|i| format!("l{i:02}")).collect();
        let mut p: Vec<Pair> = names
            .iter()
            .map(|n| (Arc::from(n.as_str()), Arc::from("v")))
            .collect();
        // 15 labels and no service_name: Loki would make it 16.
        let out = r.repair(&mut p, |n| n == "l14");
        assert_eq!(p.len(), 14);
        assert_eq!(out.demoted.len(), 1);
        assert_eq!(
            &*out.demoted[0].0, "l13",
            "the last label that is not static"
        );
        assert!(p.iter().any(|(k, _)| &**k == "l14"), "static labels stay");

        let mut with_service = pairs(&[("service_name", "api")]);
        with_service
            .extend((0..14).map(|i| (Arc::from(format!("l{i:02}").as_str()), Arc::from("v"))));
        assert!(r.repair(&mut with_service, |_| false).demoted.is_empty());
        assert_eq!(with_service.len(), 15);
    }

    #[test]
    fn names_that_become_equal_keep_the_first_and_demote_the_second() {
        let r = LabelRepair::new(&LokiLimitsConfig::default(), &Metrics::new(), "loki");
        let mut p = pairs(&[("a-b", "1"), ("a_b", "2")]);
        let out = r.repair(&mut p, |_| false);
        assert_eq!(p, pairs(&[("a_b", "1")]));
        assert_eq!(
            out.demoted,
            vec![(MetadataName::from("a_b"), Bytes::from("2"))]
        );
    }

    #[test]
    fn switched_off_changes_nothing() {
        let limits = LokiLimitsConfig {
            repair_labels: false,
            ..LokiLimitsConfig::default()
        };
        let r = LabelRepair::new(&limits, &Metrics::new(), "loki");
        let mut p = pairs(&[("a-b", "1")]);
        r.repair(&mut p, |_| false);
        assert_eq!(p, pairs(&[("a-b", "1")]));
    }
}
