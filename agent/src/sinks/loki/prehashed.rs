//! A hasher for keys that already carry a well-mixed 64-bit hash.
//!
//! [`LabelSet`](crate::pipeline::LabelSet) hashes its selector once when it is built and feeds only
//! that `u64` to a `Hasher`. Running it through SipHash again on every lookup would cost more
//! than the rest of the lookup, so maps keyed by label sets use this pass-through instead.

use std::hash::{BuildHasher, Hasher};

/// Builds [`PrehashedHasher`]s; use as the `S` parameter of a map keyed by `LabelSet`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedState;

impl BuildHasher for PrehashedState {
    type Hasher = PrehashedHasher;

    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// Mixes the `u64`s it is given with one multiply; other input falls back to FNV-1a, which is
/// correct but slow, so keys should write a single `u64`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

/// The 64-bit golden-ratio constant: an odd multiplier, so the mix is a bijection.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for PrehashedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(MIX);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::LabelSet;
    use std::collections::HashMap;

    #[test]
    fn label_sets_hash_by_content() {
        let mut map: HashMap<LabelSet, u32, PrehashedState> = HashMap::default();
        map.insert(LabelSet::new([("a", "1")]), 1);
        map.insert(LabelSet::new([("a", "2")]), 2);
        assert_eq!(map.get(&LabelSet::new([("a", "1")])), Some(&1));
        assert_eq!(map.get(&LabelSet::new([("a", "2")])), Some(&2));
        assert_eq!(map.get(&LabelSet::new([("a", "3")])), None);
    }

    #[test]
    fn different_u64s_hash_differently() {
        let h = |v: u64| {
            let mut s = PrehashedState.build_hasher();
            s.write_u64(v);
            s.finish()
        };
        assert_ne!(h(1), h(2));
        assert_ne!(h(0), h(1));
    }
}
