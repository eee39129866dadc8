//! Exponential backoff with full jitter, for everything that retries: Loki pushes and the
//! Docker connection alike.
//!
//! Attempt `n` waits a uniformly random time in `[0, min(max, initial × 2^n)]`. Full jitter
//! spreads many agents that lost one Loki (or one daemon) at the same moment, so they do not
//! come back in lockstep.
//!
//! ```
//! use std::time::Duration;
//! use logship_agent::backoff::Backoff;
//!
//! let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! assert_eq!(b.ceiling(), Duration::from_millis(100));
//! assert!(b.next_delay() <= Duration::from_millis(100));
//! assert_eq!(b.ceiling(), Duration::from_millis(200));
//! b.reset();
//! assert_eq!(b.ceiling(), Duration::from_millis(100));
//! ```

use std::time::Duration;

/// The state of one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff whose first bound is `initial` and whose bounds stop growing at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The current upper bound: `min(max, initial × 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The wait before the next attempt: a random fraction of the ceiling. Advances the
    /// attempt count.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(rand::random::<f64>())
    }

    /// [`Backoff::next_delay`] with the random fraction `unit` in `[0, 1]` given.
    pub fn next_delay_with(&mut self, unit: f64) -> Duration {
        let delay = self.ceiling().mul_f64(unit.clamp(0.0, 1.0));
        self.skip();
        delay
    }

    /// Counts an attempt whose wait was decided elsewhere (a server's `Retry-After`).
    pub fn skip(&mut self) {
        self.attempt = self.attempt.saturating_add(1);
    }

    /// Back to the first, short bound (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts made since the start or the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_full_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.ceiling(), Duration::from_millis(100));
        assert_eq!(b.next_delay_with(0.5), Duration::from_millis(50));
        assert_eq!(b.ceiling(), Duration::from_millis(200));
        assert_eq!(b.next_delay_with(0.0), Duration::ZERO);
        assert_eq!(b.ceiling(), Duration::from_millis(400));
        for _ in 0..100 {
            b.next_delay_with(0.3);
        }
        assert_eq!(b.ceiling(), Duration::from_secs(1), "capped, no overflow");
        assert_eq!(b.next_delay_with(1.0), Duration::from_secs(1));
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
    }

    #[test]
    fn resets_and_skips() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(4));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(500));
        b.skip();
        assert_eq!(b.attempts(), 2);
        assert_eq!(b.ceiling(), Duration::from_secs(2));
    }
}
