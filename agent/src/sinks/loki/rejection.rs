//! Reading Loki's partial-failure answer: how many entries of a 400'd push were refused.
//!
//! Loki writes the valid entries and answers 400 with one paragraph per failing stream, each
//! ending `total ignored: N out of M for stream: {...}`. The sum of the `N`s is what was lost;
//! the rest was stored and must not be sent again.

/// The number of entries Loki says it ignored, or `None` when the body does not say (then the
/// caller must assume the whole batch was refused).
pub(super) fn ignored_entries(body: &str) -> Option<u64> {
    const MARKER: &str = "total ignored: ";
    let mut total = None;
    let mut rest = body;
    while let Some(at) = rest.find(MARKER) {
        rest = &rest[at + MARKER.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<u64>() {
            total = Some(total.unwrap_or(0) + n);
        }
    }
    total
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
    fn unknown_body_says_nothing() {
        assert_eq!(
            ignored_entries("error at least one valid stream is required"),
            None
        );
        assert_eq!(ignored_entries(""), None);
    }
}
