//! A Loki receiver for tests: decodes what Loki decodes and fails the way Loki fails.
//!
//! [`LokiReceiver`] serves `POST /loki/api/v1/push` and `GET /ready` on 127.0.0.1 from its
//! own tokio runtime, so plain `#[test]` functions can use it. It records every accepted
//! entry and every request, and can be told to misbehave ([`Fault`], [`Mode`]) or to go away
//! and come back on the same port ([`LokiReceiver::stop`], [`LokiReceiver::start`]).
//!
//! Layout: `decode` (content type/encoding, JSON, protobuf), `labels` (Loki's label
//! parser), `validate` (distributor limits and the 400 body), `handler` (one request),
//! `server` (accept loop), `store` (records), `count` (cheap counting for ack-only mode).

mod count;
pub mod decode;
mod faults;
mod handler;
pub mod labels;
pub mod proto;
mod rate;
mod server;
mod store;
pub mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use count::count_entries;
pub use faults::{Fault, Mode};
pub use rate::IngestionRate;
pub use store::{ReceivedEntry, ReceiverConfig, RejectedEntry, RequestRecord};
pub use validate::Limits;

use server::Listener;
use store::Shared;

/// A fake Loki on 127.0.0.1. Dropping it stops the server.
pub struct LokiReceiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Mutex<Option<Listener>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl LokiReceiver {
    /// Starts a receiver with Loki's defaults on a free port.
    pub fn new() -> std::io::Result<Self> {
        Self::with_config(ReceiverConfig::default())
    }

    /// Starts a receiver with `config`.
    pub fn with_config(config: ReceiverConfig) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loki-receiver")
            .enable_all()
            .build()?;
        let want = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let shared = Arc::new(Shared::new(config));
        let (listener, addr) = server::listen(&rt, want, shared.clone())?;
        Ok(Self {
            shared,
            addr,
            listener: Mutex::new(Some(listener)),
            rt: Some(rt),
        })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port (the same after a `stop`/`start`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>`: what a sink's `endpoint` should be.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>/loki/api/v1/push`.
    pub fn push_url(&self) -> String {
        format!("http://{}/loki/api/v1/push", self.addr)
    }

    // -- lifecycle ------------------------------------------------------------------------

    /// Closes the listener and every open connection: clients get "connection refused"
    /// until [`LokiReceiver::start`]. Recorded data is kept. No-op when already stopped.
    pub fn stop(&self) {
        let l = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(l) = l {
            l.stop();
        }
    }

    /// Listens again on the same port. No-op when running.
    pub fn start(&self) -> std::io::Result<()> {
        let mut guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Ok(());
        }
        let Some(rt) = self.rt.as_ref() else {
            return Err(std::io::Error::other("receiver runtime is gone"));
        };
        let (l, _) = server::listen(rt, self.addr, self.shared.clone())?;
        *guard = Some(l);
        Ok(())
    }

    /// True while listening.
    pub fn is_running(&self) -> bool {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    // -- faults ---------------------------------------------------------------------------

    /// Queues one scripted fault: the next push request gets it (FIFO, one per request,
    /// before the mode applies).
    pub fn push_fault(&self, fault: Fault) {
        self.shared.update(|g| g.script.push_back(fault));
    }

    /// Queues several scripted faults in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.update(|g| g.script.extend(faults));
    }

    /// Scripted faults not yet consumed.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Drops the scripted faults not yet consumed.
    pub fn clear_faults(&self) {
        self.shared.update(|g| g.script.clear());
    }

    /// Sets what happens to pushes when the script is empty, until changed.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.update(|g| g.mode = mode);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.shared.lock().mode.clone()
    }

    // -- what arrived ---------------------------------------------------------------------

    /// Every stored entry, in arrival order.
    pub fn entries(&self) -> Vec<ReceivedEntry> {
        self.shared.lock().entries.clone()
    }

    /// Runs `f` over the stored entries without copying them (the receiver waits meanwhile:
    /// keep `f` short).
    pub fn with_entries<R>(&self, f: impl FnOnce(&[ReceivedEntry]) -> R) -> R {
        f(&self.shared.lock().entries)
    }

    /// Entries accepted so far: stored ones plus those counted in [`Mode::AckOnly`].
    pub fn count(&self) -> usize {
        usize::try_from(self.shared.lock().accepted).unwrap_or(usize::MAX)
    }

    /// Lines of the stored entries whose label `key` equals `value`.
    pub fn lines_with_label(&self, key: &str, value: &str) -> Vec<Vec<u8>> {
        self.shared
            .lock()
            .entries
            .iter()
            .filter(|e| e.labels.get(key).is_some_and(|v| v == value))
            .map(|e| e.line.clone())
            .collect()
    }

    /// Waits until at least `n` entries were accepted; false on timeout.
    pub fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |g| g.accepted >= n as u64)
    }

    /// Waits until accepted + refused entries reach `n`; false on timeout.
    pub fn wait_for_accepted_or_rejected(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |g| {
            g.accepted + g.rejected.len() as u64 >= n as u64
        })
    }

    /// Waits until at least `n` push requests were recorded; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |g| g.requests.len() >= n)
    }

    /// Entries refused by validation or an injected partial failure, with the reason.
    pub fn rejected(&self) -> Vec<RejectedEntry> {
        self.shared.lock().rejected.clone()
    }

    /// Every push request, ordered by arrival.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut r = self.shared.lock().requests.clone();
        r.sort_by_key(|x| x.received_at);
        r
    }

    /// Forgets entries, refusals and requests (faults and mode stay).
    pub fn clear(&self) {
        self.shared.update(|g| {
            g.entries.clear();
            g.rejected.clear();
            g.requests.clear();
            g.accepted = 0;
        });
    }
}

impl Drop for LokiReceiver {
    fn drop(&mut self) {
        if let Some(l) = self
            .listener
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            l.stop();
        }
        // Safe inside an async context too, unlike dropping the runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests;
