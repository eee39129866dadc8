//! One batch's journey once it is encoded: send, read Loki's verdict, wait and retry, split on
//! 413, and finally settle its acknowledgements and count it.
//!
//! Each batch runs in its own task, holding one of the sink's `request.concurrency` slots until
//! it is settled, so retries of a batch never let more than that many requests fly. Every
//! attempt first passes the sink's [`RateGate`], which paces pushes once Loki answers 429. The encoded
//! body is kept and re-sent as is; only a 413 makes new bodies, encoded from the batch's events
//! (which is why the batch keeps them).
//!
//! A 400 stores the valid entries; the refused ones Loki names and the sink can repair to the
//! limits it states are sent once more, alone (`after_refusal`).
//!
//! Counting: `sent_events`/`sent_bytes` (line bytes) when Loki stored a batch;
//! `discarded_events{reason}` for what a 400-class answer refused and could not be repaired
//! (the whole batch when Loki does not say how many), `too_large` for single entries Loki still
//! refuses after splitting, `loki_blocked` for 260; `loki_sent_bytes` counts body bytes of
//! every attempt that got an HTTP answer, retries included.
//!
//! A batch is never dropped while the agent runs: it is settled when Loki stored it, or
//! answered that it never will (400, 413 for one entry, 260). Once the agent is stopping and
//! the shutdown grace is over (`give_up`), a batch still waiting is dropped unsettled, so its
//! chunks count as failed and their checkpoints do not move: they are read again after restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::after_refusal;
use super::batch::Batch;
use super::encode::BodyFormat;
use super::rate_gate::RateGate;
use super::request::{LokiClient, PushResponse};
use super::retry::{Backoff, RetryReason, Verdict, classify, retry_wait};
use crate::telemetry::{ComponentMetrics, Health, Metrics};

/// How often the same kind of complaint is logged at most, per sink.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Everything the delivery tasks of one sink share.
pub(super) struct Shared {
    pub id: Arc<str>,
    pub client: LokiClient,
    pub format: BodyFormat,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub metrics: SinkMetrics,
    pub health: Arc<Health>,
    /// Cancelled when the shutdown grace is over: stop retrying.
    pub give_up: CancellationToken,
    /// Paces pushes to the rate Loki accepts once it answers 429.
    pub rate_gate: RateGate,
    /// Which refused entries may be repaired and sent again.
    pub after_refusal: after_refusal::Allowed,
    /// True while this sink has a problem registered with `health`.
    problem_set: AtomicBool,
    /// How long failing to deliver is tolerated before `/ready` says so.
    not_ready_after: Duration,
    /// Since when every push has failed; `None` after a success.
    failing_since: Mutex<Option<Instant>>,
    retry_log: LogLimiter,
    config_log: LogLimiter,
    reject_log: LogLimiter,
}

impl Shared {
    /// A push succeeded: failures no longer add up.
    fn delivered(&self) {
        *self.failing_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.metrics.last_success.set(now);
    }

    /// A push failed: how long pushes have been failing, this one included.
    fn failing_for(&self) -> Duration {
        let mut since = self.failing_since.lock().unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(Instant::now).elapsed()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: Arc<str>,
        client: LokiClient,
        format: BodyFormat,
        initial_backoff: Duration,
        max_backoff: Duration,
        metrics: SinkMetrics,
        health: Arc<Health>,
        not_ready_after: Duration,
    ) -> Self {
        Self {
            rate_gate: RateGate::new(metrics.rate_limit.clone()),
            after_refusal: after_refusal::Allowed::from_limits(&Default::default()),
            id,
            client,
            format,
            initial_backoff,
            max_backoff,
            metrics,
            health,
            give_up: CancellationToken::new(),
            problem_set: AtomicBool::new(false),
            not_ready_after,
            failing_since: Mutex::new(None),
            retry_log: LogLimiter::new(LOG_EVERY),
            config_log: LogLimiter::new(LOG_EVERY),
            reject_log: LogLimiter::new(LOG_EVERY),
        }
    }

    /// Counts a batch's events as given up on for `reason`, and settles it.
    /// Settles a batch of which Loki stored all but `refused` entries (a 400 partial failure).
    pub fn partially_discard(&self, batch: Batch, refused: u64, reason: &str) {
        let stored = (batch.len() as u64).saturating_sub(refused);
        self.metrics.component.sent_events.inc_by(stored);
        self.metrics
            .discarded
            .with_label_values(&[&*self.id, reason])
            .inc_by(refused);
        batch.settle();
    }

    pub fn discard(&self, batch: Batch, reason: &str) {
        self.metrics
            .discarded
            .with_label_values(&[&*self.id, reason])
            .inc_by(batch.len() as u64);
        batch.settle();
    }
}

/// The metric handles of one sink, resolved once.
pub(super) struct SinkMetrics {
    pub component: ComponentMetrics,
    pub requests: IntCounterVec,
    pub retries: IntCounterVec,
    pub discarded: IntCounterVec,
    pub inflight: IntGauge,
    pub latency: Histogram,
    pub sent_bytes: IntCounter,
    pub last_success: IntGauge,
    pub rate_limit: IntGauge,
    pub repaired: IntCounterVec,
}

impl SinkMetrics {
    pub fn new(metrics: &Metrics, id: &str) -> Self {
        Self {
            component: metrics.component(id),
            requests: metrics.loki_requests.clone(),
            retries: metrics.loki_retries.clone(),
            discarded: metrics.discarded_events.clone(),
            inflight: metrics.loki_inflight.with_label_values(&[id]),
            latency: metrics.loki_latency(id),
            sent_bytes: metrics.loki_sent_bytes.with_label_values(&[id]),
            last_success: metrics.loki_last_success.with_label_values(&[id]),
            rate_limit: metrics.loki_rate_limit.with_label_values(&[id]),
            repaired: metrics.loki_entries_repaired.clone(),
        }
    }
}

/// Lets a message through at most once per interval.
struct LogLimiter {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl LogLimiter {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    fn allow(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.saturating_duration_since(t) < self.every) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Decrements the in-flight gauge however the request ends (answer, error, cancellation).
struct InflightGuard<'a>(&'a IntGauge);

impl<'a> InflightGuard<'a> {
    fn new(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// How the attempts at one body ended.
enum Outcome {
    Delivered,
    Blocked(PushResponse),
    Rejected(PushResponse),
    TooLarge,
    GaveUp,
}

/// Delivers `batch`, whose encoded body is `body`, until Loki has answered for all of it.
pub(super) async fn deliver(shared: Arc<Shared>, batch: Batch, body: Bytes) {
    // Each piece of work is a batch, its body, and whether it is already a second attempt
    // at entries Loki refused (those get no third).
    let mut work = vec![(batch, body, false)];
    let mut encoder = None;
    while let Some((batch, body, resent)) = work.pop() {
        match send(&shared, &body, batch.bytes()).await {
            Outcome::Delivered => {
                let m = &shared.metrics.component;
                m.sent_events.inc_by(batch.len() as u64);
                m.sent_bytes.inc_by(batch.line_bytes() as u64);
                batch.settle();
            }
            Outcome::Blocked(response) => {
                if shared.reject_log.allow() {
                    tracing::warn!(
                        component = %shared.id,
                        status = response.status.as_u16(),
                        events = batch.len(),
                        "Loki is blocking ingestion for this tenant and dropped the batch"
                    );
                }
                shared.discard(batch, "loki_blocked");
            }
            Outcome::Rejected(response) => {
                if let Some(again) = rejected(&shared, batch, &response, resent) {
                    let encoder = encoder.get_or_insert_with(|| shared.format.encoder());
                    match encoder.encode(again.streams()) {
                        Ok(body) => work.push((again, body, true)),
                        Err(e) => {
                            tracing::error!(component = %shared.id, error = %e, "cannot encode repaired entries");
                            shared.discard(again, "encode_failed");
                        }
                    }
                }
            }
            Outcome::TooLarge => match batch.split() {
                Ok((first, second)) => {
                    let encoder = encoder.get_or_insert_with(|| shared.format.encoder());
                    // Pushed in reverse so the first half is sent first.
                    for half in [second, first] {
                        match encoder.encode(half.streams()) {
                            Ok(body) => work.push((half, body, resent)),
                            Err(e) => {
                                tracing::error!(component = %shared.id, error = %e, "cannot encode half a batch");
                                shared.discard(half, "encode_failed");
                            }
                        }
                    }
                }
                Err(single) => {
                    tracing::warn!(
                        component = %shared.id,
                        bytes = single.bytes(),
                        "Loki answered 413 for a single entry; it is discarded"
                    );
                    shared.discard(single, "too_large");
                }
            },
            Outcome::GaveUp => {
                let pending = batch.len() + work.iter().map(|(b, _, _)| b.len()).sum::<usize>();
                tracing::info!(
                    component = %shared.id,
                    events = pending,
                    "stopping with undelivered events; their sources will read them again"
                );
                return;
            }
        }
    }
}

/// Accounts for a 400: what Loki stored is sent, what it refused is discarded, except the
/// refused entries it names that can be repaired to its limits, which are returned (in a batch
/// holding every token) to be sent once more. A batch that is itself such a second attempt
/// gets no third.
fn rejected(shared: &Shared, batch: Batch, response: &PushResponse, resent: bool) -> Option<Batch> {
    if shared.reject_log.allow() {
        tracing::warn!(
            component = %shared.id,
            status = response.status.as_u16(),
            events = batch.len(),
            body = %response.body_text(),
            "Loki rejected (part of) a batch"
        );
    }
    let total = batch.len() as u64;
    let refused = response.ignored.map_or(total, |n| n.min(total));
    let repairable: Vec<_> = response
        .refusals
        .iter()
        .filter(|r| shared.after_refusal.allows(r.reason))
        .cloned()
        .collect();
    if resent || repairable.is_empty() {
        shared.partially_discard(batch, refused, "loki_rejected");
        return None;
    }
    let (again, reasons) = after_refusal::repairable(batch, &repairable, super::wall_clock_ns());
    let repairable = (again.len() as u64).min(refused);
    shared.metrics.component.sent_events.inc_by(total - refused);
    shared
        .metrics
        .discarded
        .with_label_values(&[&*shared.id, "loki_rejected"])
        .inc_by(refused - repairable);
    if again.is_empty() {
        again.settle();
        return None;
    }
    for reason in &reasons {
        shared
            .metrics
            .repaired
            .with_label_values(&[&*shared.id, reason.repair_label()])
            .inc();
    }
    tracing::info!(
        component = %shared.id,
        events = again.len(),
        "re-sending the entries Loki refused, repaired to the limits its answer names"
    );
    Some(again)
}

/// Sends `body`, whose entries weigh `cost` bytes in Loki's rate limit, until Loki gives an
/// answer that is not "try again", or the sink gives up. Every attempt passes the rate gate.
async fn send(shared: &Shared, body: &Bytes, cost: usize) -> Outcome {
    let m = &shared.metrics;
    let id = &*shared.id;
    let mut backoff = Backoff::new(shared.initial_backoff, shared.max_backoff);
    loop {
        if shared.give_up.is_cancelled() {
            return Outcome::GaveUp;
        }
        tokio::select! {
            biased;
            () = shared.give_up.cancelled() => return Outcome::GaveUp,
            () = shared.rate_gate.admit(cost) => {}
        }
        let started = Instant::now();
        let result = {
            let _inflight = InflightGuard::new(&m.inflight);
            tokio::select! {
                biased;
                () = shared.give_up.cancelled() => return Outcome::GaveUp,
                result = shared.client.push(body.clone()) => result,
            }
        };
        m.latency.observe(started.elapsed().as_secs_f64());
        let (reason, retry_after) = match result {
            Ok(response) => {
                m.requests
                    .with_label_values(&[id, response.status.as_str()])
                    .inc();
                m.sent_bytes.inc_by(body.len() as u64);
                match classify(response.status) {
                    Verdict::Delivered => {
                        shared.rate_gate.accepted(cost);
                        shared.delivered();
                        if shared.problem_set.swap(false, Ordering::AcqRel) {
                            shared.health.clear_problem(id);
                            tracing::info!(component = %id, "Loki accepts pushes again");
                        }
                        return Outcome::Delivered;
                    }
                    Verdict::Blocked => return Outcome::Blocked(response),
                    Verdict::Rejected => return Outcome::Rejected(response),
                    Verdict::TooLarge => return Outcome::TooLarge,
                    Verdict::Retry(reason) => {
                        if reason == RetryReason::RateLimited {
                            shared.rate_gate.limited();
                        }
                        report_retry(shared, reason, Some(&response), None);
                        (reason, response.retry_after)
                    }
                }
            }
            Err(error) => {
                m.requests.with_label_values(&[id, "error"]).inc();
                let reason = match error {
                    super::request::PushError::Timeout(_) => RetryReason::Timeout,
                    super::request::PushError::Connection(_) => RetryReason::Connection,
                };
                report_retry(shared, reason, None, Some(&error));
                (reason, None)
            }
        };
        m.retries.with_label_values(&[id, reason.as_str()]).inc();
        let wait = retry_wait(&mut backoff, retry_after);
        tokio::select! {
            biased;
            () = shared.give_up.cancelled() => return Outcome::GaveUp,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Logs (rate-limited) why a push is retried; configuration errors mark the agent unready at
/// once, any other failure once pushes have failed for `not_ready_after_secs`; both until the
/// next 2xx.
fn report_retry(
    shared: &Shared,
    reason: RetryReason,
    response: Option<&PushResponse>,
    error: Option<&super::request::PushError>,
) {
    let id = &*shared.id;
    let url = shared.client.url().as_str();
    let failing = shared.failing_for();
    if !reason.is_config_error() && failing >= shared.not_ready_after {
        let what = response.map_or_else(
            || reason.as_str().to_owned(),
            |r| format!("{} ({})", r.status, reason.as_str()),
        );
        shared.problem_set.store(true, Ordering::Release);
        shared.health.set_problem(
            id,
            format!(
                "cannot deliver to Loki at {url} for {} s: {what}; data is kept and retried",
                failing.as_secs()
            ),
        );
    }
    if reason.is_config_error() {
        let status = response.map_or_else(String::new, |r| r.status.to_string());
        let hint = match reason {
            RetryReason::Unauthorized => "check auth and tenant_id",
            _ => "check endpoint and path",
        };
        let problem = format!("Loki answered {status} at {url}: {hint}; data is kept and retried");
        shared.problem_set.store(true, Ordering::Release);
        shared.health.set_problem(id, problem.clone());
        if shared.config_log.allow() {
            tracing::error!(
                component = %id,
                body = %response.map(PushResponse::body_text).unwrap_or_default(),
                "{problem}"
            );
        }
    } else if shared.retry_log.allow() {
        match (response, error) {
            (Some(r), _) => tracing::warn!(
                component = %id,
                status = r.status.as_u16(),
                reason = reason.as_str(),
                body = %r.body_text(),
                "Loki push failed; retrying with backoff"
            ),
            (None, Some(e)) => tracing::warn!(
                component = %id,
                url,
                reason = reason.as_str(),
                error = %e,
                "Loki push failed; retrying with backoff"
            ),
            (None, None) => {}
        }
    }
}
