//! What the receiver recorded: accepted entries, rejected entries, one record per request,
//! and the fault script. Shared between the server tasks and the test thread.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::faults::{Action, Fault, Mode};
use super::rate::{IngestionRate, TokenBucket};
use super::validate::Limits;

/// One log entry Loki would have stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEntry {
    /// `X-Scope-OrgID` of the request, if sent.
    pub tenant: Option<String>,
    /// The stream's labels exactly as sent (empty values dropped, as Loki does).
    pub labels: BTreeMap<String, String>,
    /// Unix nanoseconds.
    pub timestamp_ns: i64,
    /// The line's bytes.
    pub line: Vec<u8>,
    /// Structured metadata.
    pub metadata: BTreeMap<String, String>,
    /// When the receiver stored it (Unix ns): with `timestamp_ns` set to the time a line was
    /// written, the difference is its write-to-acknowledgement latency.
    pub received_ns: i64,
}

impl ReceivedEntry {
    /// The line as text (lossy for invalid UTF-8).
    pub fn line_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.line)
    }

    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// An entry that was refused (validation or an injected partial failure), with Loki's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEntry {
    /// The entry as decoded.
    pub entry: ReceivedEntry,
    /// The reason text that went into the 400 body.
    pub reason: String,
}

/// One push request as the receiver saw and answered it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// When its headers arrived.
    pub received_at: Instant,
    /// When it was answered (`None`: dropped or hung).
    pub answered_at: Option<Instant>,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Every header, lower-case name → value (repeated headers joined by `, `). Includes
    /// `authorization`, so tests can check that credentials were sent.
    pub headers: BTreeMap<String, String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// Body length as received (still compressed).
    pub body_len: usize,
    /// `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// Entries in the body (0 when it did not decode).
    pub entries: usize,
    /// Hash of the body's (timestamp, line) pairs, independent of their order: equal for a
    /// retried batch, different for the halves of a split one.
    pub lines_digest: u64,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// Status answered; `None` when no HTTP answer was written.
    pub status: Option<u16>,
    /// Response body text.
    pub response_body: String,
    /// Entries stored from this request.
    pub stored: usize,
    /// Entries refused from this request.
    pub rejected: usize,
}

impl RequestRecord {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Receiver settings fixed at creation.
#[derive(Debug, Clone, Default)]
pub struct ReceiverConfig {
    /// Port on 127.0.0.1; 0 picks a free one (kept across `stop`/`start`).
    pub port: u16,
    /// Loki's `auth_enabled`: `X-Scope-OrgID` is then required (401 `no org id`).
    pub auth_enabled: bool,
    /// Validation limits.
    pub limits: Limits,
    /// Loki's ingestion rate limit, when set (Loki's default is 4 MB/s with a 6 MB burst; the
    /// receiver has none unless asked).
    pub ingestion_rate: Option<IngestionRate>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub entries: Vec<ReceivedEntry>,
    pub rejected: Vec<RejectedEntry>,
    pub requests: Vec<RequestRecord>,
    /// Entries accepted: stored, or counted in ack-only mode.
    pub accepted: u64,
    pub script: VecDeque<Fault>,
    pub mode: Mode,
    /// The newest stored timestamp of each stream, by (tenant, labels text): what the
    /// ingester's "entry too far behind" compares with.
    pub newest: HashMap<(Option<String>, String), i64>,
    /// Each tenant's ingestion-rate bucket.
    pub buckets: HashMap<Option<String>, TokenBucket>,
}

/// State shared by the server and the handle.
pub(crate) struct Shared {
    pub config: ReceiverConfig,
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Shared {
    pub fn new(config: ReceiverConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
        }
    }

    /// The lock; a panic elsewhere does not make the records unreadable.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lock and wakes waiters.
    pub fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.notify_all();
        r
    }

    /// The next scripted fault, else the mode.
    pub fn next_action(&self) -> Action {
        let mut g = self.lock();
        if let Some(f) = g.script.pop_front() {
            return Action::Fault(f);
        }
        match &g.mode {
            Mode::Normal => Action::Normal,
            Mode::Fault(f) => Action::Fault(f.clone()),
            Mode::AckOnly => Action::AckOnly,
        }
    }

    /// Waits until `pred` holds or `timeout` passes; returns whether it held.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&Inner) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if pred(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
