//! Following Loki's ingestion rate limit instead of fighting it.
//!
//! Loki refuses a push with 429 when its tenant's token bucket (4 MB/s and a 6 MB burst by
//! default) cannot hold it. Retrying each refused batch on its own timer, at full concurrency,
//! makes most pushes of a backlog a 429. Instead the sink's delivery tasks share one
//! [`RateGate`] that paces the bytes they send (Loki's measure: line plus metadata bytes):
//!
//! - unlimited until Loki first answers 429;
//! - on a 429 the rate becomes [`DECREASE`] × the rate Loki accepted over the last few
//!   seconds (or × the current rate), at most once a second, since the 429s of requests
//!   already in flight are the same signal;
//! - every accepted push raises it by [`INCREASE_PER_SEC`] per second since the last raise,
//!   so the rate climbs back towards Loki's and finds it again when Loki's limit changes;
//! - [`RELEASE_AFTER`] without a 429, the gate opens again.
//!
//! This is additive-increase/multiplicative-decrease as in TCP or Vector's adaptive
//! concurrency, on the measure Loki limits. The current rate is the gauge
//! `logship_loki_rate_limit_bytes_per_second` (0 while not limiting).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::time::Instant;

/// The factor a 429 applies to the rate.
pub const DECREASE: f64 = 0.7;
/// Relative growth of the rate per second of accepted pushes.
pub const INCREASE_PER_SEC: f64 = 0.04;
/// How long without a 429 before the gate stops pacing.
pub const RELEASE_AFTER: Duration = Duration::from_secs(60);
/// The rate never goes below this (bytes per second).
pub const MIN_RATE: f64 = 16.0 * 1024.0;
/// How far back accepted pushes are measured.
const WINDOW: Duration = Duration::from_secs(5);
/// At most one decrease per this long.
const DECREASE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct State {
    /// Bytes per second; `None` while not limiting.
    rate: Option<f64>,
    /// When the next push may start (pushes are spaced by their cost at the rate).
    next_free: Instant,
    last_decrease: Option<Instant>,
    last_raise: Instant,
    last_limited: Option<Instant>,
    /// Accepted pushes in the last [`WINDOW`]: when, and their cost.
    accepted: VecDeque<(Instant, usize)>,
}

/// Paces one sink's pushes to the rate Loki accepts. See the module docs.
#[derive(Debug)]
pub struct RateGate {
    state: Mutex<State>,
    gauge: IntGauge,
}

impl RateGate {
    /// An open gate reporting its rate in `gauge`.
    pub fn new(gauge: IntGauge) -> Self {
        let now = Instant::now();
        gauge.set(0);
        Self {
            state: Mutex::new(State {
                rate: None,
                next_free: now,
                last_decrease: None,
                last_raise: now,
                last_limited: None,
                accepted: VecDeque::new(),
            }),
            gauge,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current rate in bytes per second, `None` while not limiting.
    #[cfg(test)]
    pub fn rate(&self) -> Option<f64> {
        self.lock().rate
    }

    /// Waits until a push of `cost` bytes may start.
    pub async fn admit(&self, cost: usize) {
        if let Some(start) = self.reserve(cost, Instant::now()) {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Books a push of `cost` bytes asked for at `now`: when it may start, or `None` when
    /// the gate is open.
    fn reserve(&self, cost: usize, now: Instant) -> Option<Instant> {
        let mut s = self.lock();
        let rate = s.rate?;
        let start = s.next_free.max(now);
        s.next_free = start + Duration::from_secs_f64(cost as f64 / rate);
        Some(start)
    }

    /// Loki accepted a push of `cost` bytes.
    pub fn accepted(&self, cost: usize) {
        self.accepted_at(cost, Instant::now());
    }

    fn accepted_at(&self, cost: usize, now: Instant) {
        let mut s = self.lock();
        s.accepted.push_back((now, cost));
        while s
            .accepted
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW)
        {
            s.accepted.pop_front();
        }
        let Some(rate) = s.rate else { return };
        if s.last_limited
            .is_some_and(|t| now.saturating_duration_since(t) >= RELEASE_AFTER)
        {
            s.rate = None;
            drop(s);
            self.gauge.set(0);
            return;
        }
        let elapsed = now.saturating_duration_since(s.last_raise).as_secs_f64();
        s.last_raise = now;
        let raised = rate * (1.0 + INCREASE_PER_SEC * elapsed.min(1.0));
        s.rate = Some(raised);
        drop(s);
        self.gauge.set(raised as i64);
    }

    /// Loki answered 429.
    pub fn limited(&self) {
        self.limited_at(Instant::now());
    }

    fn limited_at(&self, now: Instant) {
        let mut s = self.lock();
        s.last_limited = Some(now);
        if s.last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_EVERY)
        {
            return;
        }
        s.last_decrease = Some(now);
        s.last_raise = now;
        let base = match s.rate {
            Some(rate) => rate,
            None => measured(&s.accepted, now).unwrap_or(MIN_RATE / DECREASE),
        };
        let rate = (base * DECREASE).max(MIN_RATE);
        s.rate = Some(rate);
        s.next_free = s.next_free.max(now);
        drop(s);
        self.gauge.set(rate as i64);
    }
}

/// The accepted bytes per second over the window (at least one second long, so a burst
/// that Loki's bucket absorbed does not read as its sustained rate).
fn measured(accepted: &VecDeque<(Instant, usize)>, now: Instant) -> Option<f64> {
    let first = accepted.front()?.0;
    let span = now
        .saturating_duration_since(first)
        .max(Duration::from_secs(1));
    let bytes: usize = accepted.iter().map(|(_, c)| c).sum();
    Some(bytes as f64 / span.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> RateGate {
        RateGate::new(IntGauge::new("g", "g").unwrap())
    }

    #[test]
    fn open_until_the_first_429_then_paced_from_what_loki_accepted() {
        let g = gate();
        let t0 = Instant::now();
        assert_eq!(g.reserve(10_000_000, t0), None, "no pacing before a 429");
        for _ in 0..4 {
            g.accepted_at(1_000_000, t0);
        }
        g.limited_at(t0);
        let rate = g.rate().unwrap();
        assert!(
            (rate - 2_800_000.0).abs() < 1.0,
            "0.7 × 4 MB over 1 s: {rate}"
        );
        g.limited_at(t0 + Duration::from_millis(500));
        assert_eq!(g.rate(), Some(rate), "one decrease per second");
        // Pushes of one second's worth each start a second apart.
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(g.reserve(2_800_000, t1), Some(t1));
        let second = g.reserve(2_800_000, t1).unwrap();
        assert!(((second - t1).as_secs_f64() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn grows_while_accepted_and_opens_after_a_quiet_minute() {
        let g = gate();
        let t0 = Instant::now();
        g.accepted_at(100_000, t0);
        g.limited_at(t0);
        let low = g.rate().unwrap();
        g.accepted_at(1000, t0 + Duration::from_secs(1));
        let raised = g.rate().unwrap();
        assert!((raised / low - 1.04).abs() < 1e-6, "{low} → {raised}");
        let t3 = t0 + Duration::from_secs(3);
        g.limited_at(t3);
        assert!(g.rate().unwrap() < raised);
        g.accepted_at(1000, t3 + RELEASE_AFTER);
        assert_eq!(g.rate(), None);
    }
}
