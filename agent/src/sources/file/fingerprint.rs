//! What a file's content looks like at its start, to recognise it elsewhere.
//!
//! Identity is device + inode (see [`registry`](super::registry)). Two facts about the start
//! of a file only *add* knowledge to it:
//!
//! - the **fingerprint**, a hash of the first line (at most [`FINGERPRINT_BYTES`]): the
//!   candidates for "the same content on another inode" (a copy left by copytruncate) and
//!   "another content on the same inode" (inode reuse);
//! - the **head signature**, a hash of the first [`HEAD_BYTES`] (fewer while the file is
//!   shorter): it tells a real copy (the same bytes) from a second file that merely starts
//!   with the same line (a banner, a CSV header).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

/// Bytes hashed for the fingerprint at most; a longer first line is hashed over its first part.
pub(super) const FINGERPRINT_BYTES: usize = 1024;

/// Bytes the head signature covers once the file is that long.
pub(super) const HEAD_BYTES: usize = 4096;

/// A hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct HeadSig {
    pub len: u32,
    pub hash: u64,
}

impl HeadSig {
    /// The signature of `head` (a file's first bytes, at most [`HEAD_BYTES`]).
    pub(super) fn of(head: &[u8]) -> Self {
        let head = &head[..head.len().min(HEAD_BYTES)];
        Self {
            len: u32::try_from(head.len()).unwrap_or(u32::MAX),
            hash: fnv1a(head),
        }
    }

    /// True when this signature covers all the bytes it ever will.
    pub(super) fn is_complete(&self) -> bool {
        self.len as usize >= HEAD_BYTES
    }

    /// Compares with the first bytes of another file. `Some(true)`: the same bytes over this
    /// signature's length; `Some(false)`: different; `None`: the other file is too short to
    /// say yet.
    pub(super) fn matches(&self, other_head: &[u8]) -> Option<bool> {
        let n = self.len as usize;
        if other_head.len() < n {
            return None;
        }
        Some(fnv1a(&other_head[..n]) == self.hash)
    }
}

/// Fills `head` from the start of `file` (short only at end of file); returns the length.
pub(super) fn read_head(file: &File, head: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read_at(&mut head[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// The first bytes of `file`, up to [`HEAD_BYTES`].
pub(super) fn head_of(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; HEAD_BYTES];
    let n = read_head(file, &mut head)?;
    head.truncate(n);
    Ok(head)
}

/// The fingerprint of a file that starts with `head`, or `None` while it is too short to have
/// one (no complete first line and fewer than [`FINGERPRINT_BYTES`] bytes): its first line is
/// still being written, and it is not read yet.
pub(super) fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    let first_line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..=i],
        None if head.len() >= FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(fnv1a(first_line))
}

/// FNV-1a, 64 bit: tiny, and stable across Rust versions (the checkpoint outlives a binary).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_complete_first_line() {
        assert_eq!(fingerprint_of(b""), None);
        assert_eq!(fingerprint_of(b"partial"), None);
        assert!(fingerprint_of(b"line\n").is_some());
        assert_eq!(
            fingerprint_of(b"line\nmore"),
            fingerprint_of(b"line\nother")
        );
        assert_ne!(fingerprint_of(b"a\n"), fingerprint_of(b"b\n"));
        assert!(fingerprint_of(&[b'x'; FINGERPRINT_BYTES]).is_some());
        assert_eq!(
            fingerprint_of(&[b'x'; FINGERPRINT_BYTES + 10]),
            fingerprint_of(&[b'x'; FINGERPRINT_BYTES])
        );
    }

    #[test]
    fn head_signature_tells_copies_from_lookalikes() {
        let original = b"banner\nline one\nline two\n";
        let sig = HeadSig::of(original);
        assert_eq!(sig.matches(original), Some(true));
        let mut longer = original.to_vec();
        longer.extend_from_slice(b"line three\n");
        assert_eq!(sig.matches(&longer), Some(true), "a copy that grew further");
        assert_eq!(sig.matches(b"banner\nsomething else\n..."), Some(false));
        assert_eq!(sig.matches(b"banner\n"), None, "too short to say");
        assert!(!sig.is_complete());
        assert!(HeadSig::of(&[b'x'; HEAD_BYTES * 2]).is_complete());
    }

    #[test]
    fn stable_value() {
        // Persisted in checkpoints: must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
