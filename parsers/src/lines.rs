//! Splitting a growing read buffer into lines, without copying.
//!
//! A tailer reads a file in large blocks into a `BytesMut` and hands it to
//! [`LineSplitter::split`]. Every complete `\n`-terminated line is split off the front of the
//! buffer as one frozen block per call, and each line is a [`Bytes`] slice of that block: no
//! line is copied, and the events downstream share the block's allocation. The incomplete tail
//! stays in the buffer for the next read.
//!
//! Lines longer than `max_line_bytes` are truncated, never a reason to stop tailing or to grow
//! the buffer without bound: as soon as the buffer holds more than the limit without a newline,
//! the head of the line is emitted (`truncated: true`) and the rest of it is discarded, over as
//! many calls as it takes, up to its `\n`. The splitter counts every byte it consumes,
//! discarded ones included, so the caller's file offset stays exact.

use bytes::{Buf, Bytes, BytesMut};
use memchr::{memchr, memchr_iter, memrchr};

/// One line split off the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitLine {
    /// The line, without its `\n` and without a `\r` just before it. At most `max_line_bytes`.
    pub line: Bytes,
    /// Bytes consumed from the start of this call's buffer up to and including this line's
    /// `\n`: the file offset after this line is the offset before the call plus `end`. For a
    /// line emitted truncated before its `\n` arrived, this is the end of the bytes consumed so
    /// far (the rest of the line is discarded by later calls).
    pub end: usize,
    /// Whether the line was longer than `max_line_bytes` and was cut.
    pub truncated: bool,
}

/// Splits read buffers into lines; keeps the state of an overlong line across calls.
///
/// ```
/// use bytes::BytesMut;
/// use logship_parsers::lines::LineSplitter;
///
/// let mut splitter = LineSplitter::new(1024);
/// let mut buf = BytesMut::from(&b"one\r\ntwo\nthr"[..]);
/// let mut lines = Vec::new();
/// let consumed = splitter.split(&mut buf, |l| lines.push((l.line, l.end)));
/// assert_eq!(lines, [(b"one"[..].into(), 5), (b"two"[..].into(), 9)]);
/// assert_eq!(consumed, 9);
/// assert_eq!(&buf[..], b"thr"); // waits for the rest of the line
/// ```
#[derive(Debug, Clone)]
pub struct LineSplitter {
    max_line_bytes: usize,
    /// Inside an overlong line whose head was already emitted: drop bytes up to the next `\n`.
    discarding: bool,
    consumed: u64,
    discarded: u64,
}

impl LineSplitter {
    /// A splitter that cuts lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes,
            discarding: false,
            consumed: 0,
            discarded: 0,
        }
    }

    /// The line length limit.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Total bytes consumed from buffers since creation or [`reset`](Self::reset), including
    /// discarded ones.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Total bytes of overlong lines dropped (beyond what was emitted) since creation or reset.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Whether the splitter is inside an overlong line, dropping bytes until its `\n`.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Forgets all state, e.g. when the file was truncated and is read again from 0.
    pub fn reset(&mut self) {
        *self = LineSplitter::new(self.max_line_bytes);
    }

    /// Takes every complete line out of `buf` and passes it to `out`, in order, leaving the
    /// incomplete tail in `buf`. Returns the bytes consumed from `buf` (lines, newlines and
    /// discarded bytes), which is also the `end` of the last line emitted.
    pub fn split(&mut self, buf: &mut BytesMut, mut out: impl FnMut(SplitLine)) -> usize {
        let mut base = 0;
        if self.discarding {
            match memchr(b'\n', buf) {
                None => {
                    let n = buf.len();
                    buf.clear();
                    self.discarded += n as u64;
                    self.consumed += n as u64;
                    return n;
                }
                Some(nl) => {
                    buf.advance(nl + 1);
                    self.discarded += nl as u64;
                    self.discarding = false;
                    base = nl + 1;
                }
            }
        }

        if let Some(last) = memrchr(b'\n', buf) {
            let block = buf.split_to(last + 1).freeze();
            let mut start = 0;
            for nl in memchr_iter(b'\n', &block) {
                let (line, truncated) = self.cut(&block, start, nl);
                out(SplitLine {
                    line,
                    end: base + nl + 1,
                    truncated,
                });
                start = nl + 1;
            }
            base += last + 1;
        }

        // The tail has no newline. Past the limit (one more byte allowed for a `\r` that may
        // precede the `\n`), emit its head now and drop the rest, so memory stays bounded.
        if buf.len() > self.max_line_bytes.saturating_add(1) {
            let n = buf.len();
            // Copy the head (rare path) so that `buf` keeps its capacity for the next read.
            let line = Bytes::copy_from_slice(&buf[..self.max_line_bytes]);
            buf.clear();
            self.discarded += (n - self.max_line_bytes) as u64;
            self.discarding = true;
            base += n;
            out(SplitLine {
                line,
                end: base,
                truncated: true,
            });
        }

        self.consumed += base as u64;
        base
    }

    /// At end of input: splits `buf` like [`split`](Self::split), then emits what is left as a
    /// final unterminated line (if any) and consumes it. Returns the bytes consumed; `buf` is
    /// empty afterwards and the splitter is ready for new input.
    pub fn finish(&mut self, buf: &mut BytesMut, mut out: impl FnMut(SplitLine)) -> usize {
        let mut n = self.split(buf, &mut out);
        let rest = buf.len();
        if self.discarding {
            buf.clear();
            self.discarded += rest as u64;
            self.discarding = false;
        } else if rest > 0 {
            let block = buf.split().freeze();
            let (line, truncated) = self.cut(&block, 0, rest);
            out(SplitLine {
                line,
                end: n + rest,
                truncated,
            });
        }
        n += rest;
        self.consumed += rest as u64;
        n
    }

    /// The line `block[start..end]` without a trailing `\r`, cut to the limit.
    #[inline]
    fn cut(&self, block: &Bytes, start: usize, mut end: usize) -> (Bytes, bool) {
        if end > start && block[end - 1] == b'\r' {
            end -= 1;
        }
        if end - start > self.max_line_bytes {
            (block.slice(start..start + self.max_line_bytes), true)
        } else {
            (block.slice(start..end), false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `input` in pieces cut at `cuts`, then finishes; returns (line, absolute end,
    /// truncated) triples and the total consumed.
    fn run(max: usize, input: &[u8], cuts: &[usize]) -> (Vec<(Vec<u8>, usize, bool)>, usize) {
        let mut splitter = LineSplitter::new(max);
        let mut buf = BytesMut::new();
        let mut offset = 0;
        let mut lines = Vec::new();
        let mut prev = 0;
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.sort_unstable();
        points.push(input.len());
        for p in points {
            buf.extend_from_slice(&input[prev..p]);
            prev = p;
            let base = offset;
            offset += splitter.split(&mut buf, |l| {
                lines.push((l.line.to_vec(), base + l.end, l.truncated))
            });
            assert!(buf.len() <= max + 1, "tail of {} bytes kept", buf.len());
        }
        let base = offset;
        offset += splitter.finish(&mut buf, |l| {
            lines.push((l.line.to_vec(), base + l.end, l.truncated))
        });
        assert!(buf.is_empty());
        assert_eq!(splitter.consumed(), offset as u64);
        (lines, offset)
    }

    #[test]
    fn splits_complete_lines_and_keeps_tail() {
        let mut s = LineSplitter::new(100);
        let mut buf = BytesMut::from(&b"a\nbb\n\nccc"[..]);
        let mut got = Vec::new();
        let n = s.split(&mut buf, |l| got.push(l));
        assert_eq!(n, 6);
        let lines: Vec<_> = got
            .iter()
            .map(|l| (&l.line[..], l.end, l.truncated))
            .collect();
        assert_eq!(
            lines,
            [
                (&b"a"[..], 2, false),
                (&b"bb"[..], 5, false),
                (&b""[..], 6, false)
            ]
        );
        assert_eq!(&buf[..], b"ccc");
        buf.extend_from_slice(b"c\n");
        got.clear();
        assert_eq!(s.split(&mut buf, |l| got.push(l)), 5);
        assert_eq!(&got[0].line[..], b"cccc");
        assert_eq!(got[0].end, 5);
        assert_eq!(s.consumed(), 11);
    }

    #[test]
    fn empty_buffer_and_no_newline() {
        let mut s = LineSplitter::new(10);
        let mut buf = BytesMut::new();
        assert_eq!(s.split(&mut buf, |_| panic!("no line")), 0);
        buf.extend_from_slice(b"partial");
        assert_eq!(s.split(&mut buf, |_| panic!("no line")), 0);
        assert_eq!(&buf[..], b"partial");
    }

    #[test]
    fn crlf_is_stripped_but_lone_cr_kept() {
        let (lines, _) = run(100, b"a\r\nb\rc\n\r\n\r\rx\r", &[]);
        let texts: Vec<&[u8]> = lines.iter().map(|l| &l.0[..]).collect();
        assert_eq!(texts, [&b"a"[..], b"b\rc", b"", b"\r\rx"]);
    }

    #[test]
    fn lines_share_one_block() {
        let mut s = LineSplitter::new(100);
        let mut buf = BytesMut::from(&b"first\nsecond\n"[..]);
        let mut got = Vec::new();
        s.split(&mut buf, |l| got.push(l.line));
        // Zero copy: the second line starts right after the first one's newline.
        assert_eq!(got[1].as_ptr() as usize - got[0].as_ptr() as usize, 6);
    }

    #[test]
    fn overlong_complete_line_is_cut() {
        let (lines, n) = run(4, b"abcdefgh\nxy\n", &[]);
        assert_eq!(
            lines,
            [(b"abcd".to_vec(), 9, true), (b"xy".to_vec(), 12, false)]
        );
        assert_eq!(n, 12);
    }

    #[test]
    fn overlong_line_across_calls_is_cut_and_discarded() {
        let mut s = LineSplitter::new(4);
        let mut buf = BytesMut::from(&b"ok\nabcdefg"[..]);
        let mut got = Vec::new();
        assert_eq!(s.split(&mut buf, |l| got.push(l)), 10);
        assert!(buf.is_empty());
        assert!(s.is_discarding());
        assert_eq!(got[1].line, &b"abcd"[..]);
        assert!(got[1].truncated);
        assert_eq!(got[1].end, 10);
        got.clear();
        buf.extend_from_slice(b"hijklmnop");
        assert_eq!(s.split(&mut buf, |l| got.push(l)), 9);
        assert!(got.is_empty());
        buf.extend_from_slice(b"qr\nnext\n");
        assert_eq!(s.split(&mut buf, |l| got.push(l)), 8);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, &b"next"[..]);
        assert_eq!(got[0].end, 8);
        assert!(!s.is_discarding());
        assert_eq!(s.consumed(), 27);
        assert_eq!(s.discarded(), 3 + 9 + 2);
    }

    #[test]
    fn line_at_limit_with_crlf_is_not_truncated() {
        let (lines, _) = run(4, b"abcd\r\n", &[5]);
        assert_eq!(lines, [(b"abcd".to_vec(), 6, false)]);
    }

    #[test]
    fn finish_emits_unterminated_tail() {
        let (lines, n) = run(10, b"a\nlast", &[]);
        assert_eq!(
            lines,
            [(b"a".to_vec(), 2, false), (b"last".to_vec(), 6, false)]
        );
        assert_eq!(n, 6);
        let (lines, _) = run(2, b"a\nlast", &[]);
        assert_eq!(lines[1], (b"la".to_vec(), 6, true));
    }

    #[test]
    fn reset_clears_discard_state() {
        let mut s = LineSplitter::new(2);
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        s.split(&mut buf, |_| {});
        assert!(s.is_discarding());
        s.reset();
        assert!(!s.is_discarding());
        assert_eq!(s.consumed(), 0);
        buf.extend_from_slice(b"x\n");
        let mut got = Vec::new();
        s.split(&mut buf, |l| got.push(l.line));
        assert_eq!(got, [Bytes::from_static(b"x")]);
    }

    proptest! {
        #[test]
        fn concatenation_reproduces_input(
            input in prop::collection::vec(prop::sample::select(b"ab\n\xc3".to_vec()), 0..300),
            cuts in prop::collection::vec(any::<usize>(), 0..10),
        ) {
            let (lines, n) = run(1000, &input, &cuts);
            prop_assert_eq!(n, input.len());
            let mut rebuilt = Vec::new();
            let mut prev_end = 0;
            for (line, end, truncated) in &lines {
                prop_assert!(!truncated);
                prop_assert!(*end > prev_end || (input.is_empty()));
                // The line is exactly the input between the previous end and its newline.
                let newline = usize::from(input.get(end - 1) == Some(&b'\n'));
                prop_assert_eq!(&input[prev_end..end - newline], &line[..]);
                prev_end = *end;
                rebuilt.extend_from_slice(line);
                if newline == 1 {
                    rebuilt.push(b'\n');
                }
            }
            prop_assert_eq!(rebuilt, input);
        }

        #[test]
        fn truncation_keeps_one_bounded_prefix_per_line(
            input in prop::collection::vec(prop::sample::select(b"abc\r\n".to_vec()), 0..300),
            cuts in prop::collection::vec(any::<usize>(), 0..10),
            max in 0usize..12,
        ) {
            let (lines, n) = run(max, &input, &cuts);
            prop_assert_eq!(n, input.len());
            let mut expected: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if input.last() == Some(&b'\n') || input.is_empty() {
                expected.pop();
            }
            prop_assert_eq!(lines.len(), expected.len());
            let mut prev_end = 0;
            for ((line, end, truncated), orig) in lines.iter().zip(&expected) {
                let orig = orig.strip_suffix(b"\r").unwrap_or(orig);
                prop_assert!(line.len() <= max);
                prop_assert_eq!(*truncated, orig.len() > max);
                prop_assert!(orig.starts_with(line));
                if !truncated {
                    prop_assert_eq!(&line[..], orig);
                }
                prop_assert!(*end > prev_end);
                prop_assert!(*end <= input.len());
                prev_end = *end;
            }
        }
    }
}
