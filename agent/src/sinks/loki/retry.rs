//! What an answer from Loki means for the batch, and how long to wait before trying again.
//!
//! | Answer | Verdict |
//! |---|---|
//! | 2xx (204 normally) | delivered |
//! | 260 (Loki's `block_ingestion_status_code`) | Loki dropped it on purpose and asks not to retry: settled, counted as discarded (`loki_blocked`) |
//! | 429, 5xx except 501, 408, timeouts, connection errors | retried with backoff, forever |
//! | 401, 403, 407 | configuration (credentials, tenant): kept, retried with backoff, agent marked unready |
//! | 404, 405, 501, 3xx left after redirects | configuration (endpoint or path): same |
//! | 413 | split in halves; one entry alone that is still too large is discarded (`too_large`) |
//! | 400, 422, any other 4xx | never retried: Loki stored the valid part; counted as discarded (`loki_rejected`) |
//!
//! 501 is not retried as a server error: Loki never answers it on its push path, so it means the
//! URL reaches something else; like 404 it needs an operator, and like 404 the data is kept.
//!
//! Backoff is exponential with full jitter: attempt `n` waits a uniformly random time in
//! `[0, min(max, initial × 2^n)]`, which spreads many agents hitting one recovering Loki.
//! A `Retry-After` header (seconds or HTTP-date), when present, replaces the random wait: the
//! server knows when it can take more, and answering earlier only earns another 429. It is
//! capped at [`MAX_RETRY_AFTER`] so that a wrong header cannot park the sink for hours.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

pub use crate::backoff::Backoff;

/// The longest `Retry-After` honoured; a longer one is treated as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Why a push is tried again; the `reason` label of `loki_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 429: Loki's ingestion or stream limits.
    RateLimited,
    /// 5xx or 408.
    ServerError,
    /// No answer within `request.timeout_ms`.
    Timeout,
    /// Could not connect, or the connection broke.
    Connection,
    /// 401, 403, 407: credentials or tenant.
    Unauthorized,
    /// 404, 405, 501, unfollowed 3xx: the endpoint or path is wrong.
    WrongEndpoint,
}

impl RetryReason {
    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Unauthorized => "unauthorized",
            Self::WrongEndpoint => "wrong_endpoint",
        }
    }

    /// True for answers that need an operator to fix the config.
    pub fn is_config_error(self) -> bool {
        matches!(self, Self::Unauthorized | Self::WrongEndpoint)
    }
}

/// What to do with a batch after Loki answered with a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stored.
    Delivered,
    /// 260: Loki is blocking ingestion for this tenant and asks clients not to retry.
    Blocked,
    /// 4xx that retrying cannot change: settle, count as discarded.
    Rejected,
    /// 413: split and send the halves.
    TooLarge,
    /// Try again later.
    Retry(RetryReason),
}

/// Loki's default `block_ingestion_status_code`.
const BLOCKED: u16 = 260;

/// The verdict for an HTTP status. See the module table.
pub fn classify(status: StatusCode) -> Verdict {
    match status.as_u16() {
        BLOCKED => Verdict::Blocked,
        200..=299 => Verdict::Delivered,
        413 => Verdict::TooLarge,
        429 => Verdict::Retry(RetryReason::RateLimited),
        408 => Verdict::Retry(RetryReason::ServerError),
        401 | 403 | 407 => Verdict::Retry(RetryReason::Unauthorized),
        404 | 405 | 501 => Verdict::Retry(RetryReason::WrongEndpoint),
        500..=599 => Verdict::Retry(RetryReason::ServerError),
        400..=499 => Verdict::Rejected,
        // 1xx never reaches us; 3xx means redirects were exhausted or not followable.
        _ => Verdict::Retry(RetryReason::WrongEndpoint),
    }
}

/// The wait before retrying a push: `retry_after` (capped at [`MAX_RETRY_AFTER`]) when Loki
/// gave one, else the backoff's jittered delay. Either way the attempt is counted.
pub fn retry_wait(backoff: &mut Backoff, retry_after: Option<Duration>) -> Duration {
    match retry_after {
        Some(wait) => {
            backoff.skip();
            wait.min(MAX_RETRY_AFTER)
        }
        None => backoff.next_delay(),
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds, or an HTTP-date relative to `now`
/// (a date in the past means no wait). Anything else is ignored.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: u16) -> StatusCode {
        StatusCode::from_u16(n).unwrap()
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(classify(code(204)), Verdict::Delivered);
        assert_eq!(classify(code(200)), Verdict::Delivered);
        assert_eq!(classify(code(260)), Verdict::Blocked);
        assert_eq!(classify(code(400)), Verdict::Rejected);
        assert_eq!(classify(code(422)), Verdict::Rejected);
        assert_eq!(classify(code(413)), Verdict::TooLarge);
        assert_eq!(
            classify(code(429)),
            Verdict::Retry(RetryReason::RateLimited)
        );
        for c in [500, 502, 503, 504, 408] {
            assert_eq!(
                classify(code(c)),
                Verdict::Retry(RetryReason::ServerError),
                "{c}"
            );
        }
        for c in [401, 403, 407] {
            assert_eq!(classify(code(c)), Verdict::Retry(RetryReason::Unauthorized));
        }
        for c in [404, 405, 501, 302] {
            assert_eq!(
                classify(code(c)),
                Verdict::Retry(RetryReason::WrongEndpoint)
            );
        }
        assert!(RetryReason::Unauthorized.is_config_error());
        assert!(!RetryReason::RateLimited.is_config_error());
    }

    #[test]
    fn retry_after_replaces_jitter_up_to_its_own_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(
            retry_wait(&mut b, Some(Duration::from_secs(30))),
            Duration::from_secs(30),
            "the server's wait wins over the operator's max backoff"
        );
        assert_eq!(
            retry_wait(&mut b, Some(Duration::from_secs(3600))),
            MAX_RETRY_AFTER
        );
        assert!(retry_wait(&mut b, None) <= Duration::from_millis(400));
        assert_eq!(b.attempts(), 3);
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let p = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap(), now);
        assert_eq!(p("120"), Some(Duration::from_secs(120)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            p("Sun, 06 Nov 1994 08:50:07 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(p("soon"), None);
        assert_eq!(p("-5"), None);
    }
}
