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
//! Nothing here is a channel: settling is a short lock on the ledger, once per chunk.
//!
//! ```
//! use logship_agent::acks::AckLedger;
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

/// Something a token can report its outcome to. Implemented by [`AckLedger`]; a source that
/// cannot resume (stdin) uses [`AckToken::untracked`].
trait Settle: Send + Sync {
    fn settle(&self, seq: u64, delivered: bool);
}

/// The ordered record of one reader's chunks in flight, and the cursor safe to checkpoint.
pub struct AckLedger<C> {
    inner: Arc<LedgerShared<C>>,
}

struct LedgerShared<C> {
    state: Mutex<LedgerState<C>>,
}

struct LedgerState<C> {
    next_seq: u64,
    /// Chunks not yet settled or blocked behind one that is not, oldest first.
    pending: VecDeque<Pending<C>>,
    committed: C,
    /// True once any chunk failed: the committed cursor is frozen until restart.
    failed: bool,
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
    /// A ledger whose committed cursor starts at `start` (the checkpoint it resumed from).
    pub fn new(start: C) -> Self {
        Self {
            inner: Arc::new(LedgerShared {
                state: Mutex::new(LedgerState {
                    next_seq: 0,
                    pending: VecDeque::new(),
                    committed: start,
                    failed: false,
                }),
            }),
        }
    }

    /// A token for the next chunk, which ends at `cursor`.
    pub fn token(&self, cursor: C) -> AckToken {
        let mut state = lock(&self.inner.state);
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

    /// Chunks emitted but not yet committed (in flight, or waiting behind one that is).
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.state).pending.len()
    }

    /// True when a chunk was lost before delivery; the committed cursor will not move again.
    pub fn has_failed(&self) -> bool {
        lock(&self.inner.state).failed
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
        let Some(entry) = seq
            .checked_sub(front_seq)
            .and_then(|i| state.pending.get_mut(i as usize))
        else {
            return;
        };
        entry.status = if delivered {
            Status::Delivered
        } else {
            Status::Failed
        };
        if !delivered {
            state.failed = true;
        }
        while let Some(front) = state.pending.front() {
            if front.status != Status::Delivered {
                break;
            }
            if let Some(done) = state.pending.pop_front() {
                state.committed = done.cursor;
            }
        }
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
    fn untracked_is_inert() {
        AckToken::untracked().delivered();
        drop(AckToken::untracked());
    }
}
