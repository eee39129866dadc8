//! Loki's ingestion rate limit: a token bucket per tenant (`ingestion_rate_mb`, default 4 MB/s;
//! `ingestion_burst_size_mb`, default 6 MB) that a push must fit whole, measured in line plus
//! structured-metadata bytes of its valid entries. A push that does not fit is refused with 429
//! and consumes nothing, as Go's `rate.Limiter.AllowN` does; one larger than the burst never
//! fits.

use std::time::Instant;

/// Loki's default `ingestion_rate_mb`, in bytes per second.
pub const DEFAULT_RATE: f64 = 4.0 * 1024.0 * 1024.0;
/// Loki's default `ingestion_burst_size_mb`, in bytes.
pub const DEFAULT_BURST: f64 = 6.0 * 1024.0 * 1024.0;

/// `ingestion_rate_mb` and `ingestion_burst_size_mb`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestionRate {
    /// Bytes per second.
    pub bytes_per_sec: f64,
    /// Bucket size in bytes.
    pub burst: f64,
}

impl Default for IngestionRate {
    fn default() -> Self {
        Self {
            bytes_per_sec: DEFAULT_RATE,
            burst: DEFAULT_BURST,
        }
    }
}

/// The bucket of one tenant.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: IngestionRate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: IngestionRate) -> Self {
        Self {
            rate,
            tokens: rate.burst,
            at: Instant::now(),
        }
    }

    /// Takes `n` tokens if there are that many now; otherwise takes none.
    pub fn allow(&mut self, n: usize, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.bytes_per_sec).min(self.rate.burst);
        self.at = now;
        let n = n as f64;
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let rate = IngestionRate {
            bytes_per_sec: 1000.0,
            burst: 1500.0,
        };
        let mut b = TokenBucket::new(rate);
        let t0 = Instant::now();
        assert!(b.allow(1500, t0));
        assert!(!b.allow(1, t0), "empty");
        assert!(
            !b.allow(600, t0 + Duration::from_millis(500)),
            "500 refilled, not 600"
        );
        assert!(
            b.allow(600, t0 + Duration::from_millis(600)),
            "refused pushes cost nothing"
        );
        assert!(
            !b.allow(1501, t0 + Duration::from_secs(60)),
            "never more than the burst"
        );
    }
}
