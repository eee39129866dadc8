//! Reading which entries a Loki 400 refused, and why, from its text.
//!
//! Loki names a refused entry by its stream's labels and, for some reasons, its timestamp
//! (see `shared/reference/loki-refusals.md` for the bodies of a real Loki 3.3.4):
//!
//! | Message | [`Reason`] | Identifies the entry by |
//! |---|---|---|
//! | `entry with timestamp <Go time> ignored, reason: 'entry too far behind, ...'` (then `... for stream: {...}`) | `TooFarBehind` | its timestamp, to the nanosecond |
//! | `entry for stream '{...}' has timestamp too old: <RFC 3339>, ...` | `TooOld` | its timestamp, to the second |
//! | `entry for stream '{...}' has timestamp too new: <RFC 3339>` | `TooNew` | its timestamp, to the second |
//! | `stream '{...}' has structured metadata too large: 'N' bytes, limit: 'L' bytes. ...` | `MetadataTooLarge` | its metadata size `N` |
//! | `stream '{...}' has too many structured metadata labels: 'N', limit: 'L'. ...` | `MetadataTooMany` | its metadata count `N` |
//! | `Max entry size 'L' bytes exceeded for stream '{...}' while adding an entry with length 'N' bytes` | `LineTooLong` | its line length `N` |
//!
//! Anything else (labels Loki cannot take, out-of-order entries, rate limits per stream) is not
//! a [`Refusal`] here: it cannot be tied to an entry, or repairing it would not help.

use crate::pipeline::LabelSet;

/// Why Loki refused an entry, with what it said about the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More than half of `max_chunk_age` behind the stream's newest entry.
    TooFarBehind,
    /// Older than `reject_old_samples_max_age`.
    TooOld,
    /// Newer than now plus `creation_grace_period`.
    TooNew,
    /// Metadata of `size` bytes over `limit`.
    MetadataTooLarge {
        /// The entry's metadata bytes.
        size: usize,
        /// Loki's `max_structured_metadata_size`.
        limit: usize,
    },
    /// `count` metadata pairs over `limit`.
    MetadataTooMany {
        /// The entry's metadata pairs.
        count: usize,
        /// Loki's `max_structured_metadata_entries_count`.
        limit: usize,
    },
    /// A line of `len` bytes over `limit`.
    LineTooLong {
        /// The line's length.
        len: usize,
        /// Loki's `max_line_size`.
        limit: usize,
    },
}

impl Reason {
    /// The `reason` label of `logship_loki_entries_repaired_total` for its repair.
    pub fn repair_label(self) -> &'static str {
        match self {
            Reason::TooFarBehind => "entry_too_far_behind",
            Reason::TooOld => "timestamp_too_old",
            Reason::TooNew => "timestamp_too_new",
            Reason::MetadataTooLarge { .. } => "structured_metadata_too_large",
            Reason::MetadataTooMany { .. } => "structured_metadata_too_many",
            Reason::LineTooLong { .. } => "line_too_long",
        }
    }
}

/// One refused entry as Loki describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stream's labels as Loki printed them (it may have added `service_name`).
    pub stream: Vec<(String, String)>,
    /// Why.
    pub reason: Reason,
    /// The entry's timestamp (Unix ns) and how precisely Loki gave it: 1 for nanoseconds,
    /// 1e9 for seconds. `None` when the message has none.
    pub timestamp: Option<(i64, i64)>,
}

impl Refusal {
    /// Whether this refusal is about the stream `labels` (ignoring a `service_name` Loki
    /// added to a stream that had none).
    pub fn is_stream(&self, labels: &LabelSet) -> bool {
        let ours = labels.pairs();
        let theirs = self
            .stream
            .iter()
            .filter(|(k, _)| k != "service_name" || labels.get("service_name").is_some());
        let mut n = 0;
        for (k, v) in theirs {
            if labels.get(k) != Some(v.as_str()) {
                return false;
            }
            n += 1;
        }
        n == ours.len()
    }

    /// Whether an entry with this timestamp could be the one refused.
    pub fn matches_time(&self, timestamp_ns: i64) -> bool {
        match self.timestamp {
            None => true,
            Some((ts, 1)) => ts == timestamp_ns,
            Some((ts, unit)) => timestamp_ns.div_euclid(unit) == ts.div_euclid(unit),
        }
    }
}

/// Every refusal in a 400 body that names an entry (see the module docs).
pub fn refusals(body: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    // The ingester's entries come before the line naming their stream.
    let mut pending: Vec<(i64, Reason)> = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("entry with timestamp ") {
            if let Some((time, reason)) = rest.split_once(" ignored, reason: '")
                && reason.starts_with("entry too far behind")
                && let Some(ts) = parse_go_time(time)
            {
                pending.push((ts, Reason::TooFarBehind));
            }
        } else if let Some(at) = line.find("for stream: ") {
            let stream = parse_labels(&line[at + "for stream: ".len()..]).unwrap_or_default();
            for (ts, reason) in pending.drain(..) {
                out.push(Refusal {
                    stream: stream.clone(),
                    reason,
                    timestamp: Some((ts, 1)),
                });
            }
        } else if let Some(refusal) = distributor_refusal(line) {
            out.push(refusal);
        }
    }
    out
}

/// One line of the distributor's validation messages.
fn distributor_refusal(line: &str) -> Option<Refusal> {
    let stream = quoted_stream(line)?;
    let (reason, timestamp) = if let Some(rest) = after(line, "has timestamp too old: ") {
        (Reason::TooOld, Some(rfc3339_until(rest, ',')?))
    } else if let Some(rest) = after(line, "has timestamp too new: ") {
        (Reason::TooNew, Some(rfc3339_until(rest, ',')?))
    } else if let Some(rest) = after(line, "has structured metadata too large: '") {
        let [size, limit] = numbers(rest)?;
        (Reason::MetadataTooLarge { size, limit }, None)
    } else if let Some(rest) = after(line, "has too many structured metadata labels: '") {
        let [count, limit] = numbers(rest)?;
        (Reason::MetadataTooMany { count, limit }, None)
    } else if let Some(at) = line.to_ascii_lowercase().find("max entry size '") {
        // ASCII lowercasing keeps byte offsets.
        let [limit, len] = numbers(&line[at + "max entry size '".len()..])?;
        (Reason::LineTooLong { len, limit }, None)
    } else {
        return None;
    };
    Some(Refusal {
        stream,
        reason,
        timestamp: timestamp.map(|ts| (ts, 1_000_000_000)),
    })
}

fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|at| &text[at + marker.len()..])
}

/// The labels of the first `'{...}'` in a line.
fn quoted_stream(line: &str) -> Option<Vec<(String, String)>> {
    let start = line.find("'{")?;
    parse_labels(&line[start + 1..])
}

/// The first two numbers written between single quotes: `'N' ... 'L'`.
fn numbers(text: &str) -> Option<[usize; 2]> {
    let mut found = text
        .split('\'')
        .filter_map(|part| part.trim().parse::<usize>().ok());
    Some([found.next()?, found.next()?])
}

/// An RFC 3339 time that ends at `end` (or the end of the text), as Unix nanoseconds.
fn rfc3339_until(text: &str, end: char) -> Option<i64> {
    let time = text.split(end).next()?.trim();
    let ts: jiff::Timestamp = time.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// Go's default time format, `2026-11-30 12:48:01.462172459 +0000 UTC`, as Unix nanoseconds.
fn parse_go_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let (date, time, offset) = (parts.next()?, parts.next()?, parts.next()?);
    // `+hhmm`; checked byte by byte, since the text came from the network.
    let b = offset.as_bytes();
    if b.len() != 5 || !matches!(b[0], b'+' | b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let rfc3339 = format!("{date}T{time}{}:{}", &offset[..3], &offset[3..]);
    let ts: jiff::Timestamp = rfc3339.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// `{a="b", c="d\"e"}` (a prefix of `text`) as pairs. `None` when it is not one.
fn parse_labels(text: &str) -> Option<Vec<(String, String)>> {
    let mut chars = text.trim_start().chars().peekable();
    if chars.next()? != '{' {
        return None;
    }
    let mut pairs = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        if chars.peek() == Some(&'}') {
            return Some(pairs);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next()? != '=' || chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        pairs.push((name.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies as a real Loki 3.3.4 wrote them (shared/reference/loki-refusals.md).
    #[test]
    fn reads_every_kind_loki_names_an_entry_by() {
        let body = "entry for stream '{c=\"old\", job=\"j\", service_name=\"j\"}' has timestamp too old: 2026-10-31T14:48:01Z, oldest acceptable timestamp is: 2026-11-23T14:48:01Z\n\
            entry for stream '{c=\"x\\\"y\"}' has timestamp too new: 2026-11-30T16:48:01Z\n\
            stream '{c=\"m\"}' has structured metadata too large: '70008' bytes, limit: '65536' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.\n\
            Max entry size '262144' bytes exceeded for stream '{c=\"l\"}' while adding an entry with length '300000' bytes\n\
            entry for stream '{c=\"n\"}' has 17 label names; limit 15";
        let r = refusals(body);
        assert_eq!(r.len(), 4, "{r:#?}");
        assert_eq!(r[0].reason, Reason::TooOld);
        assert_eq!(
            r[0].stream,
            vec![
                ("c".to_owned(), "old".to_owned()),
                ("job".to_owned(), "j".to_owned()),
                ("service_name".to_owned(), "j".to_owned())
            ]
        );
        assert_eq!(
            r[0].timestamp,
            Some((1_793_458_081_000_000_000, 1_000_000_000))
        );
        assert_eq!(r[1].stream, vec![("c".to_owned(), "x\"y".to_owned())]);
        assert_eq!(r[1].reason, Reason::TooNew);
        assert_eq!(
            r[2].reason,
            Reason::MetadataTooLarge {
                size: 70008,
                limit: 65536
            }
        );
        assert_eq!(
            r[3].reason,
            Reason::LineTooLong {
                len: 300_000,
                limit: 262_144
            }
        );
    }

    #[test]
    fn reads_the_ingesters_paragraphs_to_the_nanosecond() {
        let body = "entry with timestamp 2026-11-30 12:48:01.462172459 +0000 UTC ignored, reason: 'entry too far behind, entry timestamp is: 2026-11-30T12:48:01Z, oldest acceptable timestamp is: 2026-11-30T13:48:01Z',\n\
            entry with timestamp 2026-11-30 12:48:02 +0000 UTC ignored, reason: 'entry out of order',\n\
            user 'fake', total ignored: 2 out of 3 for stream: {job=\"j\"}";
        let r = refusals(body);
        assert_eq!(r.len(), 1, "out of order is not repairable: {r:#?}");
        assert_eq!(r[0].reason, Reason::TooFarBehind);
        assert_eq!(r[0].timestamp, Some((1_796_042_881_462_172_459, 1)));
        assert_eq!(r[0].stream, vec![("job".to_owned(), "j".to_owned())]);
        assert!(r[0].matches_time(1_796_042_881_462_172_459));
        assert!(!r[0].matches_time(1_796_042_881_462_172_458));
    }

    #[test]
    fn streams_match_with_or_without_the_service_name_loki_added() {
        let r = Refusal {
            stream: vec![
                ("job".to_owned(), "j".to_owned()),
                ("service_name".to_owned(), "j".to_owned()),
            ],
            reason: Reason::TooOld,
            timestamp: Some((5_000_000_000, 1_000_000_000)),
        };
        assert!(r.is_stream(&LabelSet::new([("job", "j")])));
        assert!(r.is_stream(&LabelSet::new([("job", "j"), ("service_name", "j")])));
        assert!(!r.is_stream(&LabelSet::new([("job", "k")])));
        assert!(!r.is_stream(&LabelSet::new([("job", "j"), ("x", "y")])));
        assert!(r.matches_time(5_999_999_999));
        assert!(!r.matches_time(6_000_000_000));
    }

    #[test]
    fn a_mangled_offset_is_not_a_time() {
        // Found by fuzzing: slicing a non-ASCII offset panicked.
        assert_eq!(
            parse_go_time("2026-11-30 12:48:01 +0000"),
            Some(1_796_042_881_000_000_000)
        );
        assert_eq!(parse_go_time("2026-11-30 12:48:01 U\u{fffd}0"), None);
        assert_eq!(parse_go_time("2026-11-30 12:48:01 +00:0"), None);
    }

    #[test]
    fn garbage_names_nothing() {
        for body in [
            "",
            "oops",
            "entry for stream '{",
            "stream '{a=\"b\"}' has structured metadata too large: 'x'",
        ] {
            assert!(refusals(body).is_empty(), "{body}");
        }
    }
}
