//! The payment provider, simulated: each call takes a random time (now and then a slow one, so
//! the collector's latency policy has something to keep) and fails at a configurable rate. The
//! worker retries failed calls with exponential backoff and full jitter, and gives up after a
//! few attempts, which fails the order.

use std::time::Duration;

use rand::Rng;
use tracing::{Instrument, field};

use crate::env::{self, EnvError};
use crate::metrics::{Metrics, ResultLabels};

/// How the simulated provider behaves and how hard the worker tries.
#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// Probability that one call fails (`PAYMENT_FAILURE_RATE`, default 0.3).
    pub failure_rate: f64,
    /// Calls per order before giving up (`PAYMENT_MAX_ATTEMPTS`, default 3).
    pub max_attempts: u32,
    /// Fastest call (`PAYMENT_LATENCY_MIN_MS`, default 20).
    pub latency_min: Duration,
    /// Slowest ordinary call (`PAYMENT_LATENCY_MAX_MS`, default 250).
    pub latency_max: Duration,
    /// Probability of a slow call (`PAYMENT_SLOW_RATE`, default 0.03).
    pub slow_rate: f64,
    /// Extra time of a slow call (`PAYMENT_SLOW_MS`, default 700).
    pub slow_extra: Duration,
    /// First retry delay bound; doubles per attempt (`PAYMENT_BACKOFF_MS`, default 100).
    pub backoff: Duration,
}

impl PaymentConfig {
    /// Reads the `PAYMENT_*` variables.
    pub fn from_env() -> Result<Self, EnvError> {
        let c = Self {
            failure_rate: env::probability_or("PAYMENT_FAILURE_RATE", 0.3)?,
            max_attempts: env::parse_or("PAYMENT_MAX_ATTEMPTS", 3u32)?.max(1),
            latency_min: env::millis_or("PAYMENT_LATENCY_MIN_MS", 20)?,
            latency_max: env::millis_or("PAYMENT_LATENCY_MAX_MS", 250)?,
            slow_rate: env::probability_or("PAYMENT_SLOW_RATE", 0.03)?,
            slow_extra: env::millis_or("PAYMENT_SLOW_MS", 700)?,
            backoff: env::millis_or("PAYMENT_BACKOFF_MS", 100)?,
        };
        Ok(c)
    }
}

/// How the charge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// The provider accepted the charge.
    Paid {
        /// Calls it took.
        attempts: u32,
    },
    /// Every attempt failed.
    Failed {
        /// Calls made.
        attempts: u32,
        /// Why, for the order's `failure_reason`.
        reason: String,
    },
}

/// One simulated call: its latency and whether it fails.
fn draw(config: &PaymentConfig) -> (Duration, bool) {
    let mut rng = rand::rng();
    let (lo, hi) = (
        config.latency_min,
        config.latency_max.max(config.latency_min),
    );
    let mut latency = if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    };
    if rng.random_bool(config.slow_rate) {
        latency += config.slow_extra;
    }
    (latency, rng.random_bool(config.failure_rate))
}

/// The delay before retry number `attempt` (1-based): full jitter up to `base * 2^(attempt-1)`.
pub fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    if cap.is_zero() {
        return cap;
    }
    rand::rng().random_range(Duration::ZERO..=cap)
}

/// Charges `amount_cents` for `order_id`, retrying transient failures. The order id is the
/// idempotency key a real provider would get, so a retried or redelivered charge is one charge.
pub async fn charge(
    order_id: &str,
    amount_cents: i64,
    config: &PaymentConfig,
    metrics: &Metrics,
) -> PaymentOutcome {
    for attempt in 1..=config.max_attempts {
        let span = tracing::info_span!(
            "payment.charge",
            otel.name = "POST /v1/charges",
            otel.kind = "client",
            otel.status_code = field::Empty,
            peer.service = "payment-provider",
            http.request.method = "POST",
            http.response.status_code = field::Empty,
            payment.idempotency_key = order_id,
            payment.amount_cents = amount_cents,
            attempt,
        );
        let (latency, fails) = draw(config);
        let ok = async {
            tokio::time::sleep(latency).await;
            let span = tracing::Span::current();
            if fails {
                span.record("http.response.status_code", 503);
                span.record("otel.status_code", "ERROR");
                tracing::warn!(
                    latency_ms = latency.as_millis() as u64,
                    "payment provider answered 503"
                );
                false
            } else {
                span.record("http.response.status_code", 201);
                tracing::info!(latency_ms = latency.as_millis() as u64, "payment accepted");
                true
            }
        }
        .instrument(span)
        .await;
        metrics
            .payment_attempts
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
        if ok {
            return PaymentOutcome::Paid { attempts: attempt };
        }
        if attempt < config.max_attempts {
            let delay = backoff_delay(config.backoff, attempt);
            tracing::info!(
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                "retrying payment"
            );
            tokio::time::sleep(delay).await;
        }
    }
    PaymentOutcome::Failed {
        attempts: config.max_attempts,
        reason: format!(
            "payment provider unavailable after {} attempts",
            config.max_attempts
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(failure_rate: f64) -> PaymentConfig {
        PaymentConfig {
            failure_rate,
            max_attempts: 3,
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(2),
            slow_rate: 0.0,
            slow_extra: Duration::ZERO,
            backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn always_failing_provider_fails_after_max_attempts() {
        let m = Metrics::new();
        let out = charge("o-1", 100, &config(1.0), &m).await;
        assert_eq!(
            out,
            PaymentOutcome::Failed {
                attempts: 3,
                reason: "payment provider unavailable after 3 attempts".into()
            }
        );
        let errors = m
            .payment_attempts
            .get_or_create(&ResultLabels {
                result: "error".into(),
            })
            .get();
        assert_eq!(errors, 3);
    }

    #[tokio::test]
    async fn healthy_provider_pays_first_time() {
        let out = charge("o-2", 100, &config(0.0), &Metrics::new()).await;
        assert_eq!(out, PaymentOutcome::Paid { attempts: 1 });
    }

    #[test]
    fn backoff_stays_within_its_doubling_cap() {
        let base = Duration::from_millis(100);
        for attempt in 1..6 {
            let cap = base * (1 << (attempt - 1));
            for _ in 0..50 {
                assert!(backoff_delay(base, attempt) <= cap);
            }
        }
        assert_eq!(backoff_delay(Duration::ZERO, 3), Duration::ZERO);
    }
}
