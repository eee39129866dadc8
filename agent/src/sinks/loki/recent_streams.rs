//! [`RecentStreams`]: the sink's memory, within one chunk, of which batch stream each
//! incoming label set goes to.

use smallvec::SmallVec;

use super::labels::Resolved;
use crate::pipeline::LabelSet;

/// How many label sets are remembered; past this the oldest is replaced. Lines of a few
/// streams interleave (a service's levels); a node's hundreds of streams arrive in chunks
/// of one source each.
const CAPACITY: usize = 16;

/// Incoming label sets (compared by identity: the transform interns them), what each
/// resolved to, and its stream's index in the current batch.
///
/// Indices are the batch's: after the batch is flushed they mean nothing, which is why
/// [`reopen`](Self::reopen) forgets every other entry.
#[derive(Default)]
pub(super) struct RecentStreams {
    entries: SmallVec<[(LabelSet, Resolved, usize); CAPACITY]>,
    /// The entry [`insert`](Self::insert) replaces when full.
    next_victim: usize,
}

impl RecentStreams {
    /// The slot holding `labels`, if remembered.
    #[inline]
    pub(super) fn find(&self, labels: &LabelSet) -> Option<usize> {
        self.entries.iter().position(|(l, _, _)| l.ptr_eq(labels))
    }

    /// Remembers `labels`; returns its slot.
    pub(super) fn insert(&mut self, labels: LabelSet, resolved: Resolved, stream: usize) -> usize {
        if self.entries.len() < CAPACITY {
            self.entries.push((labels, resolved, stream));
            return self.entries.len() - 1;
        }
        let slot = self.next_victim;
        self.next_victim = (slot + 1) % CAPACITY;
        self.entries[slot] = (labels, resolved, stream);
        slot
    }

    /// The batch stream of `slot`.
    #[inline]
    pub(super) fn stream(&self, slot: usize) -> usize {
        self.entries[slot].2
    }

    /// What the label set of `slot` resolved to.
    #[inline]
    pub(super) fn resolved(&self, slot: usize) -> &Resolved {
        &self.entries[slot].1
    }

    /// After a flush: forgets every entry but `slot`'s, whose label set `open` opens in the
    /// new batch, and returns its new stream index. Slots handed out before are invalid.
    pub(super) fn reopen(&mut self, slot: usize, open: impl FnOnce(&LabelSet) -> usize) -> usize {
        let mut kept = self.entries.swap_remove(slot);
        let stream = open(&kept.1.labels);
        kept.2 = stream;
        self.clear();
        self.entries.push(kept);
        stream
    }

    /// Forgets everything (the batch was flushed).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.next_victim = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sinks::loki::labels::Extras;

    fn resolved(labels: &LabelSet) -> Resolved {
        Resolved::for_tests(labels.clone(), Arc::new(Extras::default()))
    }

    #[test]
    fn finds_by_identity_replaces_the_oldest_and_reopens_one() {
        let sets: Vec<LabelSet> = (0..CAPACITY + 2)
            .map(|i| LabelSet::new([("n", i.to_string().as_str())]))
            .collect();
        let mut recent = RecentStreams::default();
        for (i, set) in sets.iter().take(CAPACITY).enumerate() {
            assert_eq!(recent.insert(set.clone(), resolved(set), i * 10), i);
        }
        // Equal content is not the same interned set.
        assert_eq!(recent.find(&LabelSet::new([("n", "3")])), None);
        assert_eq!(recent.find(&sets[3]).map(|s| recent.stream(s)), Some(30));
        // Full: the oldest two go, in order.
        assert_eq!(
            recent.insert(sets[CAPACITY].clone(), resolved(&sets[CAPACITY]), 1),
            0
        );
        assert_eq!(
            recent.insert(sets[CAPACITY + 1].clone(), resolved(&sets[CAPACITY + 1]), 2),
            1
        );
        assert_eq!(recent.find(&sets[0]), None);
        assert_eq!(recent.find(&sets[1]), None);
        assert_eq!(recent.find(&sets[CAPACITY + 1]), Some(1));
        // A flush keeps only the set being pushed, at its new index.
        let slot = recent.find(&sets[5]).unwrap();
        let mut opened = None;
        let stream = recent.reopen(slot, |l| {
            opened = Some(l.clone());
            7
        });
        assert_eq!(stream, 7);
        assert!(opened.is_some_and(|l| l.ptr_eq(&sets[5])));
        assert_eq!(recent.find(&sets[5]).map(|s| recent.stream(s)), Some(7));
        assert_eq!(recent.find(&sets[3]), None);
        recent.clear();
        assert_eq!(recent.find(&sets[5]), None);
    }
}
