//! Reading Loki's partial-failure answer: how many entries of a 400'd push were refused.
//!
//! Loki stores the valid entries of a push and answers 400 about the rest, in one of two
//! forms (see `shared/reference/loki-refusals.md`):
//! - the ingester's: one paragraph per failing stream, each ending
//!   `total ignored: N out of M for stream: {...}`; the sum of the `N`s was refused;
//! - the distributor's: its validation messages, one per line, one per refused entry
//!   (`... has timestamp too old: ...`, `Max entry size ... exceeded ...`, ...). A message
//!   about a stream's labels refuses all that stream's entries and does not say how many.
//!
//! What was not refused was stored and must not be sent again.

/// Distributor messages that each stand for exactly one refused entry.
const PER_ENTRY: &[&str] = &[
    "has timestamp too old",
    "has timestamp too new",
    "bytes exceeded for stream",
    "has structured metadata too large",
    "has too many structured metadata labels",
];

/// The number of entries Loki says it ignored, or `None` when the body does not say (then the
/// caller must assume the whole batch was refused).
pub fn ignored_entries(body: &str) -> Option<u64> {
    ingester_ignored(body).or_else(|| distributor_ignored(body))
}

/// The sum of the ingester's `total ignored: N` counts.
fn ingester_ignored(body: &str) -> Option<u64> {
    const MARKER: &str = "total ignored: ";
    let mut total = None;
    let mut rest = body;
    while let Some(at) = rest.find(MARKER) {
        rest = &rest[at + MARKER.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<u64>() {
            // Saturating: the text comes from the network (found by fuzzing).
            total = Some(total.unwrap_or(0u64).saturating_add(n));
        }
    }
    total
}

/// The number of distributor messages, when every line of `body` is one about a single entry.
fn distributor_ignored(body: &str) -> Option<u64> {
    let mut n = 0;
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !PER_ENTRY.iter().any(|m| line.contains(m)) {
            return None;
        }
        n += 1;
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_stream() {
        let body = "entry with timestamp 2024-06-10 12:00:00 +0000 UTC ignored, reason: 'entry too far behind',\n\
                    user 'fake', total ignored: 2 out of 5 for stream: {job=\"a\"}\n\
                    entry with timestamp 2024-06-10 12:00:01 +0000 UTC ignored, reason: 'line too long',\n\
                    user 'fake', total ignored: 1 out of 1 for stream: {job=\"b\"}";
        assert_eq!(ignored_entries(body), Some(3));
    }

    #[test]
    fn counts_distributor_messages_one_per_entry() {
        let body = "entry for stream '{job=\"a\", service_name=\"a\"}' has timestamp too old: 2026-10-31T14:48:01Z, oldest acceptable timestamp is: 2026-11-23T14:48:01Z\n\
                    Max entry size '262144' bytes exceeded for stream '{job=\"a\"}' while adding an entry with length '300000' bytes\n";
        assert_eq!(ignored_entries(body), Some(2));
        let labels = "entry for stream '{...}' has 17 label names; limit 15";
        assert_eq!(
            ignored_entries(labels),
            None,
            "a whole stream, of unknown size"
        );
        let mixed = format!("{body}{labels}");
        assert_eq!(ignored_entries(&mixed), None);
    }

    #[test]
    fn absurd_counts_saturate() {
        let body = "total ignored: 18446744073709551615 out of 1\ntotal ignored: 5 out of 5";
        assert_eq!(ignored_entries(body), Some(u64::MAX));
    }

    #[test]
    fn unknown_body_says_nothing() {
        assert_eq!(
            ignored_entries("error at least one valid stream is required"),
            None
        );
        assert_eq!(ignored_entries(""), None);
    }
}
