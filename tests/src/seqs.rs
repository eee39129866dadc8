//! Counting what arrived by each line's `"seq":N`: how many distinct lines, how many
//! duplicates, which are missing. The reliability tests assert on these numbers.

use std::fmt;
use std::time::{Duration, Instant};

use crate::loki::{LokiReceiver, ReceivedEntry};

/// The outcome of comparing received lines with lines `1..=written`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqCounts {
    /// Distinct seqs received within `1..=written`.
    pub unique: usize,
    /// Extra copies of seqs already seen.
    pub duplicates: usize,
    /// Seqs in `1..=written` never received, ascending.
    pub missing: Vec<u64>,
    /// Received lines with no `"seq":N` (for example non-JSON lines).
    pub without_seq: usize,
    /// Received seqs outside `1..=written`.
    pub out_of_range: usize,
}

impl SeqCounts {
    /// Every line arrived exactly once and nothing else arrived.
    pub fn is_exactly_once(&self) -> bool {
        self.missing.is_empty() && self.duplicates == 0 && self.out_of_range == 0
    }
}

impl fmt::Display for SeqCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unique={} duplicates={} missing={} without_seq={} out_of_range={}",
            self.unique,
            self.duplicates,
            self.missing.len(),
            self.without_seq,
            self.out_of_range
        )?;
        if !self.missing.is_empty() {
            let shown: Vec<String> = self.missing.iter().take(20).map(u64::to_string).collect();
            write!(f, " first missing: [{}]", shown.join(", "))?;
        }
        Ok(())
    }
}

/// The `seq` number in a line written by [`crate::logwriter`], if any.
pub fn seq_of(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq\":";
    // memchr is built optimised even in debug test builds; 300k-line scans stay fast.
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let digits = &line[at..];
    let end = digits
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// Counts seqs over raw lines, against lines `1..=written`.
pub fn count_seq_lines<'a>(lines: impl IntoIterator<Item = &'a [u8]>, written: u64) -> SeqCounts {
    let mut seen = vec![0u32; usize::try_from(written).unwrap_or(0) + 1];
    let mut c = SeqCounts::default();
    for line in lines {
        match seq_of(line) {
            None => c.without_seq += 1,
            Some(s) if s == 0 || s > written => c.out_of_range += 1,
            Some(s) => {
                let slot = &mut seen[s as usize];
                if *slot > 0 {
                    c.duplicates += 1;
                } else {
                    c.unique += 1;
                }
                *slot += 1;
            }
        }
    }
    c.missing = (1..=written).filter(|s| seen[*s as usize] == 0).collect();
    c
}

/// Counts seqs over received entries, against lines `1..=written`.
pub fn count_seqs(entries: &[ReceivedEntry], written: u64) -> SeqCounts {
    count_seq_lines(entries.iter().map(|e| e.line.as_slice()), written)
}

/// Waits until every seq in `1..=written` is stored in `loki` (or `timeout` passes) and
/// returns the counts at that moment; check `missing` for the outcome.
pub fn wait_for_seqs(loki: &LokiReceiver, written: u64, timeout: Duration) -> SeqCounts {
    let deadline = Instant::now() + timeout;
    let n = usize::try_from(written).unwrap_or(usize::MAX);
    loki.wait_for_count(n, timeout);
    loop {
        let c = loki.with_entries(|e| count_seqs(e, written));
        if c.missing.is_empty() || Instant::now() >= deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_unique_duplicates_missing() {
        let lines: Vec<Vec<u8>> = [1u64, 2, 2, 4, 9, 4, 4]
            .iter()
            .map(|s| format!(r#"{{"msg":"x","seq":{s},"trace_id":"t"}}"#).into_bytes())
            .chain([b"plain text".to_vec()])
            .collect();
        let c = count_seq_lines(lines.iter().map(Vec::as_slice), 5);
        assert_eq!(c.unique, 3);
        assert_eq!(c.duplicates, 3);
        assert_eq!(c.missing, vec![3, 5]);
        assert_eq!(c.without_seq, 1);
        assert_eq!(c.out_of_range, 1);
        assert!(!c.is_exactly_once());
        assert!(c.to_string().contains("first missing: [3, 5]"));
        let ok = count_seq_lines([&b"{\"seq\":1}"[..], b"{\"seq\":2}"], 2);
        assert!(ok.is_exactly_once());
        assert_eq!(seq_of(b"{\"seq\":12345}"), Some(12345));
        assert_eq!(seq_of(b"{\"seq\":\"x\"}"), None);
    }
}
