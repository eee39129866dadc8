//! A file's content identity: a hash of its first line.
//!
//! Device and inode say which file is open; the fingerprint says which *content* it holds.
//! It is what recognises a copy left by copytruncate (same first line, new inode) and an inode
//! reused by a new file (same inode, different first line).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes hashed at most; a first line longer than this is hashed over its first part.
pub(super) const FINGERPRINT_BYTES: usize = 1024;

/// The fingerprint of `file`, or `None` while it is too short to have one (no complete first
/// line and fewer than [`FINGERPRINT_BYTES`] bytes). Such a file is not read yet: its first
/// line is still being written.
pub(super) fn fingerprint(file: &File) -> io::Result<Option<u64>> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let n = read_head(file, &mut head)?;
    Ok(fingerprint_of(&head[..n]))
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

/// The fingerprint of a file that starts with `head`.
pub(super) fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let first_line = match memchr::memchr(b'\n', head) {
        Some(i) => &head[..=i],
        None if head.len() >= FINGERPRINT_BYTES => &head[..FINGERPRINT_BYTES],
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
    }

    #[test]
    fn stable_value() {
        // Persisted in checkpoints: must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
