//! Joining partial line pieces into whole lines.
//!
//! Container runtimes cut long lines: Docker into 16 KiB pieces whose `log` lacks the final
//! `\n`, CRI runtimes into lines tagged `P`. [`PartialMerger`] buffers the pieces of one stream
//! until a final piece arrives and returns the whole line. The buffer is capped: past
//! `max_bytes` the rest of the line is dropped and the result is marked truncated, so one
//! endless line cannot grow memory without bound.
//!
//! Use one merger per container stream (stdout and stderr interleave). The common case, a
//! whole line with nothing pending, goes through [`PartialMerger::push_bytes`] without a copy.

use bytes::{Bytes, BytesMut};

/// A whole line assembled from one or more pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedLine {
    /// The joined text, at most `max_bytes`.
    pub line: Bytes,
    /// The pieces together were longer than `max_bytes`; the excess was dropped.
    pub truncated: bool,
    /// How many pieces were joined (1 for a line that was never split).
    pub pieces: usize,
}

/// Joins partial pieces of one stream into whole lines, up to a size cap.
///
/// ```
/// use logship_parsers::partial::PartialMerger;
///
/// let mut m = PartialMerger::new(1 << 20);
/// assert_eq!(m.push(b"first half, ", true), None);
/// assert!(m.is_pending());
/// let whole = m.push(b"second half", false).unwrap();
/// assert_eq!(&whole.line[..], b"first half, second half");
/// assert_eq!(whole.pieces, 2);
/// assert!(!m.is_pending());
/// ```
#[derive(Debug)]
pub struct PartialMerger {
    buf: BytesMut,
    max_bytes: usize,
    pieces: usize,
    truncated: bool,
}

impl PartialMerger {
    /// A merger that keeps at most `max_bytes` of one line.
    pub fn new(max_bytes: usize) -> PartialMerger {
        PartialMerger {
            buf: BytesMut::new(),
            max_bytes,
            pieces: 0,
            truncated: false,
        }
    }

    /// Whether pieces of an unfinished line are buffered.
    pub fn is_pending(&self) -> bool {
        self.pieces > 0
    }

    /// Bytes buffered for the unfinished line.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Adds a piece; `partial` means more pieces of the same line follow. Returns the whole
    /// line when `piece` is its last piece.
    pub fn push(&mut self, piece: &[u8], partial: bool) -> Option<MergedLine> {
        self.append(piece);
        if partial { None } else { Some(self.take()) }
    }

    /// Like [`push`](Self::push), but a whole line with nothing pending is returned as the
    /// same `Bytes` (cut to `max_bytes` if need be), without copying.
    pub fn push_bytes(&mut self, piece: Bytes, partial: bool) -> Option<MergedLine> {
        if partial || self.is_pending() {
            return self.push(&piece, partial);
        }
        let truncated = piece.len() > self.max_bytes;
        let line = if truncated {
            piece.slice(..self.max_bytes)
        } else {
            piece
        };
        Some(MergedLine {
            line,
            truncated,
            pieces: 1,
        })
    }

    /// Returns the unfinished line as it is, e.g. when its stream ended or the final piece is
    /// overdue. `None` when nothing is pending.
    pub fn flush(&mut self) -> Option<MergedLine> {
        self.is_pending().then(|| self.take())
    }

    fn append(&mut self, piece: &[u8]) {
        self.pieces += 1;
        let room = self.max_bytes.saturating_sub(self.buf.len());
        if piece.len() > room {
            self.truncated = true;
            self.buf.extend_from_slice(&piece[..room]);
        } else {
            self.buf.extend_from_slice(piece);
        }
    }

    fn take(&mut self) -> MergedLine {
        let merged = MergedLine {
            line: self.buf.split().freeze(),
            truncated: self.truncated,
            pieces: self.pieces,
        };
        self.pieces = 0;
        self.truncated = false;
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_line_passes_through_without_copy() {
        let mut m = PartialMerger::new(100);
        let line = Bytes::from_static(b"whole");
        let out = m.push_bytes(line.clone(), false).unwrap();
        assert_eq!(out.line.as_ptr(), line.as_ptr());
        assert_eq!(out.pieces, 1);
        assert!(!out.truncated);
    }

    #[test]
    fn pieces_join_in_order() {
        let mut m = PartialMerger::new(100);
        assert_eq!(m.push_bytes(Bytes::from_static(b"a"), true), None);
        assert_eq!(m.push(b"b", true), None);
        assert_eq!(m.pending_bytes(), 2);
        let out = m.push_bytes(Bytes::from_static(b"c"), false).unwrap();
        assert_eq!(&out.line[..], b"abc");
        assert_eq!(out.pieces, 3);
        assert!(!m.is_pending());
        // The merger is reusable.
        assert_eq!(&m.push(b"next", false).unwrap().line[..], b"next");
    }

    #[test]
    fn empty_pieces() {
        let mut m = PartialMerger::new(10);
        assert_eq!(m.push(b"", true), None);
        assert!(m.is_pending());
        let out = m.push(b"", false).unwrap();
        assert_eq!(&out.line[..], b"");
        assert_eq!(out.pieces, 2);
    }

    #[test]
    fn cap_truncates_and_reports() {
        let mut m = PartialMerger::new(5);
        assert_eq!(m.push(b"abc", true), None);
        assert_eq!(m.push(b"defg", true), None);
        assert_eq!(m.push(b"hij", true), None);
        assert_eq!(m.pending_bytes(), 5);
        let out = m.push(b"k", false).unwrap();
        assert_eq!(&out.line[..], b"abcde");
        assert!(out.truncated);
        assert_eq!(out.pieces, 4);
        let out = m.push(b"ok", false).unwrap();
        assert!(!out.truncated);

        let out = m
            .push_bytes(Bytes::from_static(b"too long"), false)
            .unwrap();
        assert_eq!(&out.line[..], b"too l");
        assert!(out.truncated);
    }

    #[test]
    fn flush_returns_unfinished_line() {
        let mut m = PartialMerger::new(100);
        assert_eq!(m.flush(), None);
        m.push(b"dangling", true);
        let out = m.flush().unwrap();
        assert_eq!(&out.line[..], b"dangling");
        assert_eq!(m.flush(), None);
    }

    proptest! {
        #[test]
        fn merge_is_concatenation_capped(
            pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..8),
            max in 0usize..100,
        ) {
            let mut m = PartialMerger::new(max);
            let last = pieces.len() - 1;
            let mut result = None;
            for (i, p) in pieces.iter().enumerate() {
                result = m.push_bytes(Bytes::copy_from_slice(p), i != last);
                prop_assert_eq!(result.is_some(), i == last);
            }
            let out = result.unwrap();
            let all: Vec<u8> = pieces.concat();
            prop_assert_eq!(out.truncated, all.len() > max);
            prop_assert_eq!(&out.line[..], &all[..all.len().min(max)]);
            prop_assert_eq!(out.pieces, pieces.len());
        }
    }
}
