//! Unescaping JSON string text, eight bytes at a time between escapes.

use super::scanner::{HI, LO, hex4};

/// Extra room [`unescape`] needs in its output beyond the raw length, for 8-byte copies.
pub(super) const UNESCAPE_SLACK: usize = 8;

/// Unescapes validated raw JSON string text into `out` and returns the decoded length.
///
/// `out` must be at least `raw.len() + UNESCAPE_SLACK` long: decoding never makes JSON text
/// longer (the write index never passes the read index), and the slack lets runs without
/// escapes be copied eight bytes at a time. With a shorter `out` the result is cut short,
/// never a panic. Malformed escapes, which validation rules out, are kept as written.
pub(super) fn unescape(raw: &[u8], out: &mut [u8]) -> usize {
    let mut i = 0;
    let mut j = 0;
    loop {
        // Copy eight bytes at a time until a word holds a backslash.
        while let (Some(src), Some(dst)) = (
            raw.get(i..).and_then(|r| r.first_chunk::<8>()),
            out.get_mut(j..).and_then(|o| o.first_chunk_mut::<8>()),
        ) {
            *dst = *src;
            let w = u64::from_le_bytes(*src) ^ (LO * u64::from(b'\\'));
            let found = w.wrapping_sub(LO) & !w & HI;
            if found != 0 {
                let k = (found.trailing_zeros() / 8) as usize;
                i += k;
                j += k;
                break;
            }
            i += 8;
            j += 8;
        }
        let Some(&c) = raw.get(i) else {
            return j;
        };
        let Some(slot) = out.get_mut(j) else {
            return j;
        };
        if c != b'\\' {
            *slot = c;
            i += 1;
            j += 1;
            continue;
        }
        let simple = match raw.get(i + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(byte) = simple {
            *slot = byte;
            i += 2;
            j += 1;
        } else if let Some((ch, next)) = decode_u_escape(raw, i) {
            let mut tmp = [0; 4];
            let encoded = ch.encode_utf8(&mut tmp).as_bytes();
            let Some(dst) = out.get_mut(j..j + encoded.len()) else {
                return j;
            };
            dst.copy_from_slice(encoded);
            i = next;
            j += encoded.len();
        } else {
            *slot = b'\\';
            i += 1;
            j += 1;
        }
    }
}

/// Decodes `\uXXXX` (and a following low surrogate) at `raw[bs]`; returns the char (U+FFFD
/// for an unpaired surrogate) and the index after the escape, or `None` if it is not a `\u`
/// escape with four hex digits.
fn decode_u_escape(raw: &[u8], bs: usize) -> Option<(char, usize)> {
    if raw.get(bs + 1) != Some(&b'u') {
        return None;
    }
    let hi = hex4(raw, bs + 2)?;
    if (0xD800..=0xDBFF).contains(&hi)
        && raw.get(bs + 6) == Some(&b'\\')
        && raw.get(bs + 7) == Some(&b'u')
        && let Some(lo @ 0xDC00..=0xDFFF) = hex4(raw, bs + 8)
    {
        let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return Some((
            char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER),
            bs + 12,
        ));
    }
    Some((
        char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER),
        bs + 6,
    ))
}
