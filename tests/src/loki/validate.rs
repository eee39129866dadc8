//! Loki's validation with its default limits, in its two places:
//!
//! - the distributor (`pkg/distributor/validator.go`): a stream whose labels break a limit
//!   loses all its entries; an entry that breaks a limit is dropped on its own; the rest is
//!   stored and the answer is 400 with the refusals' messages, one per line, and no counts;
//! - the ingester: an entry more than `max_chunk_age / 2` behind the newest entry of its
//!   stream is "too far behind"; the answer then is the ingester's, one paragraph per stream
//!   ending `total ignored: N out of M` (it replaces the distributor's messages).

use std::time::Duration;

use super::decode::DecodedEntry;
use super::labels::{LabelPairs, format_labels};
use crate::timefmt::{go_time_string, rfc3339_seconds};

/// Loki's `limits_config` values that the receiver enforces. `Default` is Loki's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// `max_line_size` (256KB = 262144 bytes); 0 disables.
    pub max_line_size: usize,
    /// `reject_old_samples` (true).
    pub reject_old_samples: bool,
    /// `reject_old_samples_max_age` (7d).
    pub reject_old_samples_max_age: Duration,
    /// `creation_grace_period` (10m): newer timestamps are rejected.
    pub creation_grace_period: Duration,
    /// `max_chunk_age` (2h): the ingester refuses entries more than half of it behind the
    /// newest entry of their stream.
    pub max_chunk_age: Duration,
    /// `max_label_names_per_series` (15), counting the `service_name` Loki 3 adds to a
    /// stream that has none.
    pub max_label_names_per_series: usize,
    /// `max_label_name_length` (1024).
    pub max_label_name_length: usize,
    /// `max_label_value_length` (2048).
    pub max_label_value_length: usize,
    /// `max_structured_metadata_size` (64KB): sum of name and value bytes; 0 disables.
    pub max_structured_metadata_size: usize,
    /// `max_structured_metadata_entries_count` (128); 0 disables.
    pub max_structured_metadata_entries_count: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_size: 256 * 1024,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 24 * 3600),
            creation_grace_period: Duration::from_secs(600),
            max_chunk_age: Duration::from_secs(2 * 3600),
            max_label_names_per_series: 15,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_structured_metadata_size: 64 * 1024,
            max_structured_metadata_entries_count: 128,
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Stream-level validation (`ValidateLabels`): `Err` is Loki's message, and every entry of
/// the stream is ignored.
pub fn validate_labels(limits: &Limits, labels: &LabelPairs) -> Result<(), String> {
    let text = format_labels(labels);
    if labels.is_empty() {
        return Err("error at least one label pair is required per stream".to_owned());
    }
    // Loki 3 adds `service_name` (discover_service_name) before it counts.
    let mut count = labels.len();
    if !labels.iter().any(|(k, _)| k == "service_name") {
        count += 1;
    }
    if count > limits.max_label_names_per_series {
        return Err(format!(
            "entry for stream '{text}' has {count} label names; limit {}",
            limits.max_label_names_per_series
        ));
    }
    let mut last: Option<&str> = None;
    for (name, value) in labels {
        if name.len() > limits.max_label_name_length {
            return Err(format!("stream '{text}' has label name too long: '{name}'"));
        }
        if value.len() > limits.max_label_value_length {
            return Err(format!(
                "stream '{text}' has label value too long: '{value}'"
            ));
        }
        if last == Some(name.as_str()) {
            return Err(format!(
                "stream '{text}' has duplicate label name: '{name}'"
            ));
        }
        last = Some(name);
    }
    Ok(())
}

/// Entry-level validation (`ValidateEntry`), in Loki's order: too old, too new, line too
/// long, structured metadata too large, too many metadata entries.
pub fn validate_entry(
    limits: &Limits,
    labels_text: &str,
    entry: &DecodedEntry,
    now_ns: i64,
) -> Result<(), String> {
    let ts = entry.timestamp_ns;
    if limits.reject_old_samples {
        let oldest = now_ns.saturating_sub(nanos(limits.reject_old_samples_max_age));
        if ts < oldest {
            return Err(format!(
                "entry for stream '{labels_text}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                rfc3339_seconds(ts),
                rfc3339_seconds(oldest)
            ));
        }
    }
    let newest = now_ns.saturating_add(nanos(limits.creation_grace_period));
    if ts > newest {
        return Err(format!(
            "entry for stream '{labels_text}' has timestamp too new: {}",
            rfc3339_seconds(ts)
        ));
    }
    if limits.max_line_size != 0 && entry.line.len() > limits.max_line_size {
        return Err(format!(
            "max entry size '{}' bytes exceeded for stream '{labels_text}' while adding an entry with length '{}' bytes",
            limits.max_line_size,
            entry.line.len()
        ));
    }
    if !entry.metadata.is_empty() {
        let size: usize = entry.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if limits.max_structured_metadata_size != 0 && size > limits.max_structured_metadata_size {
            return Err(format!(
                "stream '{labels_text}' has structured metadata too large: '{size}' bytes, limit: '{}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.",
                limits.max_structured_metadata_size
            ));
        }
        let count = entry.metadata.len();
        if limits.max_structured_metadata_entries_count != 0
            && count > limits.max_structured_metadata_entries_count
        {
            return Err(format!(
                "stream '{labels_text}' has too many structured metadata labels: '{count}', limit: '{}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.",
                limits.max_structured_metadata_entries_count
            ));
        }
    }
    Ok(())
}

/// The ingester's check: `Err` when `ts` is more than half of `max_chunk_age` behind
/// `newest`, the stream's newest timestamp so far (`None` for a new stream).
pub fn validate_not_behind(limits: &Limits, newest: Option<i64>, ts: i64) -> Result<(), String> {
    let Some(newest) = newest else {
        return Ok(());
    };
    let oldest = newest.saturating_sub(nanos(limits.max_chunk_age / 2));
    if ts < oldest {
        return Err(format!(
            "entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}",
            rfc3339_seconds(ts),
            rfc3339_seconds(oldest)
        ));
    }
    Ok(())
}

/// The ignored entries of one stream, for the 400 body.
#[derive(Debug, Default)]
pub struct StreamFailures {
    /// `{a="b"}` text of the stream.
    pub labels_text: String,
    /// Entries in the stream.
    pub total: usize,
    /// (timestamp ns, reason) per ignored entry.
    pub ignored: Vec<(i64, String)>,
}

/// Loki's partial-failure text, one block per stream with failures:
/// `entry with timestamp <t> ignored, reason: '<why>',` per entry, then
/// `user '<tenant>', total ignored: N out of M for stream: {...}`. Blocks are joined by a
/// newline. `None` when nothing was ignored.
pub fn failure_body(tenant: &str, streams: &[StreamFailures]) -> Option<String> {
    let blocks: Vec<String> = streams
        .iter()
        .filter(|s| !s.ignored.is_empty())
        .map(|s| {
            let mut b = String::new();
            for (ts, why) in &s.ignored {
                b.push_str(&format!(
                    "entry with timestamp {} ignored, reason: '{why}',\n",
                    go_time_string(*ts)
                ));
            }
            b.push_str(&format!(
                "user '{tenant}', total ignored: {} out of {} for stream: {}",
                s.ignored.len(),
                s.total,
                s.labels_text
            ));
            b
        })
        .collect();
    if blocks.is_empty() {
        None
    } else {
        Some(blocks.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_718_000_000_000_000_000;

    fn entry(ts: i64, line: &[u8], meta: &[(&str, &str)]) -> DecodedEntry {
        DecodedEntry {
            timestamp_ns: ts,
            line: line.to_vec(),
            metadata: meta
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn entry_limits() {
        let l = Limits::default();
        let day = 86_400 * 1_000_000_000i64;
        assert!(validate_entry(&l, "{a=\"b\"}", &entry(NOW, b"x", &[]), NOW).is_ok());
        let old = validate_entry(&l, "{a=\"b\"}", &entry(NOW - 8 * day, b"x", &[]), NOW);
        assert!(old.unwrap_err().contains("timestamp too old"));
        assert!(validate_entry(&l, "s", &entry(NOW - 6 * day, b"x", &[]), NOW).is_ok());
        let new = validate_entry(
            &l,
            "s",
            &entry(NOW + 11 * 60 * 1_000_000_000, b"x", &[]),
            NOW,
        );
        assert!(new.unwrap_err().contains("timestamp too new"));
        let long = vec![b'a'; 256 * 1024 + 1];
        assert!(
            validate_entry(&l, "s", &entry(NOW, &long, &[]), NOW)
                .unwrap_err()
                .contains("max entry size '262144' bytes exceeded")
        );
        assert!(validate_entry(&l, "s", &entry(NOW, &long[1..], &[]), NOW).is_ok());
        let big = "v".repeat(64 * 1024);
        assert!(
            validate_entry(&l, "s", &entry(NOW, b"x", &[("k", &big)]), NOW)
                .unwrap_err()
                .contains("structured metadata too large")
        );
    }

    #[test]
    fn label_limits() {
        let l = Limits::default();
        let mk = |n: usize| -> LabelPairs {
            (0..n)
                .map(|i| (format!("l{i:02}"), "v".to_owned()))
                .collect()
        };
        assert!(validate_labels(&l, &mk(14)).is_ok());
        assert!(
            validate_labels(&l, &mk(15))
                .unwrap_err()
                .contains("16 label names; limit 15"),
            "Loki adds service_name, which counts"
        );
        assert!(
            validate_labels(&l, &mk(16))
                .unwrap_err()
                .contains("17 label names; limit 15")
        );
        let mut with_service = mk(14);
        with_service.push(("service_name".to_owned(), "x".to_owned()));
        assert!(validate_labels(&l, &with_service).is_ok());
        assert!(validate_labels(&l, &vec![]).is_err());
        let long: LabelPairs = vec![("a".to_owned(), "v".repeat(2049))];
        assert!(
            validate_labels(&l, &long)
                .unwrap_err()
                .contains("label value too long")
        );
        let dup: LabelPairs = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(
            validate_labels(&l, &dup)
                .unwrap_err()
                .contains("duplicate label name")
        );
    }

    #[test]
    fn too_far_behind_is_half_the_chunk_age() {
        let l = Limits::default();
        let hour = 3_600_000_000_000i64;
        assert!(validate_not_behind(&l, None, 0).is_ok());
        assert!(validate_not_behind(&l, Some(NOW), NOW - hour).is_ok());
        let e = validate_not_behind(&l, Some(NOW), NOW - hour - 1).unwrap_err();
        assert!(
            e.starts_with("entry too far behind, entry timestamp is: "),
            "{e}"
        );
    }

    #[test]
    fn body_format() {
        let body = failure_body(
            "fake",
            &[StreamFailures {
                labels_text: "{a=\"b\"}".to_owned(),
                total: 3,
                ignored: vec![(NOW, "boom".to_owned())],
            }],
        )
        .unwrap();
        assert_eq!(
            body,
            "entry with timestamp 2024-06-10 06:13:20 +0000 UTC ignored, reason: 'boom',\n\
             user 'fake', total ignored: 1 out of 3 for stream: {a=\"b\"}"
        );
        assert!(failure_body("fake", &[StreamFailures::default()]).is_none());
    }
}
