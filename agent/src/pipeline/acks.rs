//! End-to-end acknowledgements: how a checkpoint learns that Loki has the data.
//!
//! A source that can resume (a file, a container) owns one [`AckLedger`] per thing it reads.
//! For every chunk it emits it asks the ledger for an [`AckToken`] carrying the cursor *after*
//! that chunk (a file offset, a container timestamp). The token travels with the chunk; every
//! component that splits or copies the chunk clones the token. A sink calls
//! [`AckToken::delivered`] once its copy is safe (Loki answered 2xx, or a 4xx that retrying
//! would not change). When the last clone is gone the ledger records the outcome.
//!
//! The ledger only moves its committed cursor over a prefix of chunks that were all
//! delivered, in the order they were emitted: a later chunk delivered before an earlier one
//! waits for it. A clone dropped without `delivered` (shutdown, a task that died) marks the chunk
//! failed, and the committed cursor never passes it, so after a restart it is read again.
//!
//! A failed chunk *freezes* the ledger. From then on it tracks nothing new: chunks emitted
//! later get tokens that report to nobody (counted by the [`LedgerWatch`]), and the chunks it
//! was tracking after the failed one are forgotten. The checkpoint could never pass the failed
//! chunk anyway, so tracking more would only grow memory for the life of the process.
//!
//! Every settlement wakes the source's [`LedgerWatch`], which is how the checkpoint writer
//! learns that there may be something new to write. Nothing here is a channel: settling is a
//! short lock on the ledger, once per chunk.
//!
//! ```
//! use logship_agent::pipeline::AckLedger;
//!
//! let ledger = AckLedger::new(0u64);
//! let first = ledger.token(100);
//! let second = ledger.token(250);
//! second.delivered();
//! assert_eq!(ledger.committed(), 0); // waits for the first chunk
//! first.delivered();
//! assert_eq!(ledger.committed(), 250);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::IntCounter;
use tokio::sync::Notify;

/// Something a token can report its outcome to. Implemented by [`AckLedger`]; a source that
/// cannot resume (stdin) uses [`AckToken::untracked`].
trait Settle: Send + Sync {
    fn settle(&self, seq: u64, delivered: bool);
}

/// What the ledgers of one source tell the source's harness: that a chunk settled (so the
/// checkpoint may have moved), and how many chunks went untracked behind a failure.
///
/// Cheap to clone; every clone is the same watch.
#[derive(Clone)]
pub struct LedgerWatch {
    inner: Arc<WatchInner>,
}

struct WatchInner {
    component: Arc<str>,
    settled: Notify,
    untracked: Option<IntCounter>,
}

impl LedgerWatch {
    /// A watch for the ledgers of `component`; `untracked` counts chunks emitted by a frozen
    /// ledger.
    pub fn new(component: Arc<str>, untracked: IntCounter) -> Self {
        Self {
            inner: Arc::new(WatchInner {
                component,
                settled: Notify::new(),
                untracked: Some(untracked),
            }),
        }
    }

    /// A watch that counts nothing, for tests and examples.
    pub fn detached() -> Self {
        Self {
            inner: Arc::new(WatchInner {
                component: Arc::from(""),
                settled: Notify::new(),
                untracked: None,
            }),
        }
    }

    /// Resolves after the next settlement of any chunk of a ledger on this watch (or at once
    /// when one happened since the last call).
    pub async fn settled(&self) {
        self.inner.settled.notified().await;
    }

    fn notify(&self) {
        // notify_one stores a permit when nobody waits, so a settlement between two waits
        // is not lost.
        self.inner.settled.notify_one();
    }
}

impl Default for LedgerWatch {
    fn default() -> Self {
        Self::detached()
    }
}

impl fmt::Debug for LedgerWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerWatch")
            .field("component", &self.inner.component)
            .finish_non_exhaustive()
    }
}

/// The ordered record of one reader's chunks in flight, and the cursor safe to checkpoint.
pub struct AckLedger<C> {
    inner: Arc<LedgerShared<C>>,
}

struct LedgerShared<C> {
    state: Mutex<LedgerState<C>>,
    watch: LedgerWatch,
}

struct LedgerState<C> {
    next_seq: u64,
    /// Chunks not yet settled or blocked behind one that is not, oldest first; their
    /// sequence numbers are consecutive.
    pending: VecDeque<Pending<C>>,
    committed: C,
    /// The first chunk that failed: the committed cursor is frozen before it, and nothing
    /// after it is tracked.
    failed_at: Option<u64>,
}

struct Pending<C> {
    seq: u64,
    cursor: C,
    status: Status,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    InFlight,
    Delivered,
    Failed,
}

impl<C: Clone + Send + 'static> AckLedger<C> {
    /// A ledger whose committed cursor starts at `start` (the checkpoint it resumed from),
    /// reporting to nobody.
    pub fn new(start: C) -> Self {
        Self::watched(start, LedgerWatch::detached())
    }

    /// A ledger whose settlements wake `watch`.
    pub fn watched(start: C, watch: LedgerWatch) -> Self {
        Self {
            inner: Arc::new(LedgerShared {
                state: Mutex::new(LedgerState {
                    next_seq: 0,
                    pending: VecDeque::new(),
                    committed: start,
                    failed_at: None,
                }),
                watch,
            }),
        }
    }

    /// A token for the next chunk, which ends at `cursor`. Once the ledger is frozen by a
    /// failure the token is untracked (and counted).
    pub fn token(&self, cursor: C) -> AckToken {
        let mut state = lock(&self.inner.state);
        if state.failed_at.is_some() {
            drop(state);
            if let Some(c) = &self.inner.watch.inner.untracked {
                c.inc();
            }
            return AckToken::untracked();
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.pending.push_back(Pending {
            seq,
            cursor,
            status: Status::InFlight,
        });
        drop(state);
        AckToken::tracked(self.inner.clone(), seq)
    }

    /// The cursor after the longest prefix of chunks that were all delivered.
    pub fn committed(&self) -> C {
        lock(&self.inner.state).committed.clone()
    }

    /// Chunks whose outcome can still move the committed cursor and is not known yet.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.state)
            .pending
            .iter()
            .filter(|p| p.status == Status::InFlight)
            .count()
    }

    /// Entries the ledger holds: chunks in flight plus those settled behind one that is not.
    /// Bounded by what is in flight, and by the failure point once frozen.
    pub fn tracked(&self) -> usize {
        lock(&self.inner.state).pending.len()
    }

    /// True when a chunk was lost before delivery; the committed cursor will not move past it.
    pub fn has_failed(&self) -> bool {
        lock(&self.inner.state).failed_at.is_some()
    }
}

impl<C> Clone for AckLedger<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C> fmt::Debug for AckLedger<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckLedger").finish_non_exhaustive()
    }
}

impl<C: Clone + Send + 'static> Settle for LedgerShared<C> {
    fn settle(&self, seq: u64, delivered: bool) {
        let mut state = lock(&self.state);
        let Some(front_seq) = state.pending.front().map(|p| p.seq) else {
            return;
        };
        let Some(index) = seq
            .checked_sub(front_seq)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < state.pending.len())
        else {
            // Forgotten behind a failure.
            return;
        };
        let froze = !delivered && state.failed_at.is_none();
        state.pending[index].status = if delivered {
            Status::Delivered
        } else {
            Status::Failed
        };
        if froze {
            state.failed_at = Some(seq);
            state.pending.truncate(index + 1);
        }
        while let Some(front) = state.pending.front() {
            if front.status != Status::Delivered {
                break;
            }
            if let Some(done) = state.pending.pop_front() {
                state.committed = done.cursor;
            }
        }
        drop(state);
        if froze {
            tracing::warn!(
                component = %self.watch.inner.component,
                "a chunk was not delivered; this reader's checkpoint stays where it is until a restart, which reads its lines again"
            );
        }
        self.watch.notify();
    }
}

/// A poisoned lock only means another thread panicked mid-update; the state is still a
/// consistent queue, so keep going rather than spread the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The acknowledgement handle of one chunk. Clone it when a chunk is split or copied; call
/// [`AckToken::delivered`] on every clone once its part is safe. A clone dropped without
/// `delivered` marks the chunk failed.
pub struct AckToken {
    shared: Option<Arc<TokenShared>>,
    settled: bool,
}

struct TokenShared {
    ledger: Arc<dyn Settle>,
    seq: u64,
    failed: AtomicBool,
}

impl Drop for TokenShared {
    fn drop(&mut self) {
        self.ledger
            .settle(self.seq, !self.failed.load(Ordering::Acquire));
    }
}

impl AckToken {
    fn tracked(ledger: Arc<dyn Settle>, seq: u64) -> Self {
        Self {
            shared: Some(Arc::new(TokenShared {
                ledger,
                seq,
                failed: AtomicBool::new(false),
            })),
            settled: false,
        }
    }

    /// A token that reports to nobody, for sources with nothing to checkpoint.
    pub fn untracked() -> Self {
        Self {
            shared: None,
            settled: false,
        }
    }

    /// This copy of the chunk is safe; drops the token.
    pub fn delivered(mut self) {
        self.settled = true;
    }
}

impl Clone for AckToken {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            settled: false,
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if !self.settled
            && let Some(shared) = &self.shared
        {
            shared.failed.store(true, Ordering::Release);
        }
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shared {
            Some(s) => write!(f, "AckToken(#{})", s.seq),
            None => f.write_str("AckToken(untracked)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_in_order_only() {
        let ledger = AckLedger::new(0u64);
        let a = ledger.token(10);
        let b = ledger.token(20);
        let c = ledger.token(30);
        c.delivered();
        assert_eq!(ledger.committed(), 0);
        a.delivered();
        assert_eq!(ledger.committed(), 10);
        b.delivered();
        assert_eq!(ledger.committed(), 30);
        assert_eq!(ledger.in_flight(), 0);
        assert_eq!(ledger.tracked(), 0);
    }

    #[test]
    fn every_clone_must_deliver() {
        let ledger = AckLedger::new(0u64);
        let a = ledger.token(10);
        let a2 = a.clone();
        a.delivered();
        assert_eq!(ledger.committed(), 0);
        a2.delivered();
        assert_eq!(ledger.committed(), 10);
    }

    #[test]
    fn dropped_clone_blocks_forever() {
        let ledger = AckLedger::new(0u64);
        let a = ledger.token(10);
        let b = ledger.token(20);
        let a2 = a.clone();
        a.delivered();
        drop(a2);
        b.delivered();
        assert_eq!(ledger.committed(), 0);
        assert!(ledger.has_failed());
        let c = ledger.token(30);
        c.delivered();
        assert_eq!(ledger.committed(), 0);
    }

    #[test]
    fn chunks_before_the_failure_still_commit() {
        let ledger = AckLedger::new(0u64);
        let a = ledger.token(10);
        let b = ledger.token(20);
        let c = ledger.token(30);
        drop(b);
        assert!(ledger.has_failed());
        assert_eq!(ledger.in_flight(), 1, "a is still awaited; c is forgotten");
        c.delivered();
        a.delivered();
        assert_eq!(ledger.committed(), 10);
        assert_eq!(ledger.in_flight(), 0);
    }

    #[test]
    fn a_frozen_ledger_stays_bounded_and_counts_what_it_does_not_track() {
        let counter = IntCounter::new("untracked", "test").unwrap();
        let ledger = AckLedger::watched(0u64, LedgerWatch::new(Arc::from("src"), counter.clone()));
        // Many chunks in flight, one of them fails.
        let tokens: Vec<_> = (1..=100u64).map(|i| ledger.token(i * 10)).collect();
        let mut tokens = tokens.into_iter();
        for t in tokens.by_ref().take(10) {
            t.delivered();
        }
        drop(tokens.next()); // chunk 11 fails
        assert_eq!(ledger.committed(), 100);
        // The source keeps reading: 100,000 more chunks, most delivered, some held a while.
        let mut held = Vec::new();
        for i in 0..100_000u64 {
            let t = ledger.token(10_000 + i);
            if i % 7 == 0 {
                held.push(t);
            } else {
                t.delivered();
            }
            if held.len() > 50 {
                held.drain(..).for_each(AckToken::delivered);
            }
            assert!(
                ledger.tracked() <= 1,
                "the ledger grows: {}",
                ledger.tracked()
            );
        }
        for t in tokens {
            t.delivered();
        }
        assert_eq!(ledger.committed(), 100, "frozen before the failed chunk");
        assert_eq!(counter.get(), 100_000);
    }

    #[tokio::test]
    async fn settlements_wake_the_watch() {
        let watch = LedgerWatch::detached();
        let ledger = AckLedger::watched(0u64, watch.clone());
        let t = ledger.token(5);
        let waiter = tokio::spawn({
            let watch = watch.clone();
            async move { watch.settled().await }
        });
        tokio::task::yield_now().await;
        t.delivered();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the watch was woken")
            .unwrap();
    }

    #[test]
    fn untracked_is_inert() {
        AckToken::untracked().delivered();
        drop(AckToken::untracked());
    }
}
