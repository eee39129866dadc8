//! Timestamp parsing and formatting in Unix nanoseconds.
//!
//! Log lines carry their time as RFC 3339 text (`2024-06-10T12:00:00.123456789Z`, Docker, CRI
//! and most JSON loggers) or as an epoch number (`1718000000`, `1718000000.123`,
//! `1718000000123`). [`parse_timestamp`] accepts both and returns nanoseconds since the Unix
//! epoch as an `i64`, the unit Loki uses. It is hand-written, allocation-free and does its own
//! calendar arithmetic (Howard Hinnant's `days_from_civil`), because a general date library is
//! both slower and more permissive than a per-line hot path needs.
//!
//! [`format_rfc3339_nanos`] and [`format_unix_seconds_nanos`] write the inverse, for the Docker
//! logs API `since` parameter and for human-readable output.
//!
//! The representable range is that of `i64` nanoseconds: 1677-09-21 to 2262-04-11. Anything
//! outside it parses to `None`.

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Parses an RFC 3339 timestamp or an epoch number into Unix nanoseconds.
///
/// Accepted forms (surrounding ASCII whitespace is ignored):
///
/// * RFC 3339: `YYYY-MM-DDTHH:MM:SS[.f…]<zone>`, with `T`, `t` or a space between date and
///   time; 0 to 9 fractional digits are significant (further digits are accepted and truncated);
///   the zone is `Z`, `z`, `±HH:MM` or `±HHMM`. A zone is required: a local time without an
///   offset is ambiguous, so it is rejected rather than guessed. Second `60` (a leap second) is
///   read as the first second of the next minute.
/// * Epoch numbers: an integer with an optional fraction (`1718000000`, `1718000000.5`). The
///   unit follows from the magnitude of the integer part: below 1e11 seconds, below 1e14
///   milliseconds, below 1e17 microseconds, otherwise nanoseconds. Fraction digits finer than a
///   nanosecond are truncated. Signs and exponents are not accepted.
///
/// Returns `None` for anything else, or when the instant does not fit in `i64` nanoseconds.
///
/// ```
/// use logship_parsers::timestamp::parse_timestamp;
///
/// assert_eq!(parse_timestamp(b"1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
/// assert_eq!(parse_timestamp(b"1970-01-01T01:00:00+01:00"), Some(0));
/// assert_eq!(parse_timestamp(b"1718000000123"), Some(1_718_000_000_123_000_000));
/// assert_eq!(parse_timestamp(b"yesterday"), None);
/// ```
pub fn parse_timestamp(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    if text.len() >= 19 && text[4] == b'-' {
        parse_rfc3339(text)
    } else {
        parse_epoch(text)
    }
}

/// Two ASCII digits at `at`, or `None`.
#[inline]
fn two_digits(b: &[u8], at: usize) -> Option<u32> {
    let hi = b.get(at)?.wrapping_sub(b'0');
    let lo = b.get(at + 1)?.wrapping_sub(b'0');
    (hi < 10 && lo < 10).then_some(u32::from(hi) * 10 + u32::from(lo))
}

#[inline]
fn expect(b: &[u8], at: usize, byte: u8) -> Option<()> {
    (b.get(at) == Some(&byte)).then_some(())
}

fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    let year = two_digits(b, 0)? * 100 + two_digits(b, 2)?;
    expect(b, 4, b'-')?;
    let month = two_digits(b, 5)?;
    expect(b, 7, b'-')?;
    let day = two_digits(b, 8)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = two_digits(b, 11)?;
    expect(b, 13, b':')?;
    let minute = two_digits(b, 14)?;
    expect(b, 16, b':')?;
    let second = two_digits(b, 17)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut pos = 19;
    let mut nanos: i64 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let digits_start = pos;
        while let Some(d) = b.get(pos).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10) {
            if pos - digits_start < 9 {
                nanos = nanos * 10 + i64::from(d);
            }
            pos += 1;
        }
        let n = pos - digits_start;
        if n == 0 {
            return None;
        }
        if n < 9 {
            nanos *= POW10[9 - n];
        }
    }

    let offset_secs: i64 = match b.get(pos)? {
        b'Z' | b'z' => {
            pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = two_digits(b, pos + 1)?;
            pos += 3;
            if b.get(pos) == Some(&b':') {
                pos += 1;
            }
            let om = two_digits(b, pos)?;
            pos += 2;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    if pos != b.len() {
        return None;
    }

    let days = days_from_civil(i64::from(year), month, day);
    let secs =
        days * SECS_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
            - offset_secs;
    let ns = i128::from(secs) * i128::from(NANOS_PER_SEC) + i128::from(nanos);
    i64::try_from(ns).ok()
}

const POW10: [i64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

fn parse_epoch(b: &[u8]) -> Option<i64> {
    let (int_part, frac_part) = match memchr::memchr(b'.', b) {
        Some(dot) => (&b[..dot], Some(&b[dot + 1..])),
        None => (b, None),
    };
    if int_part.is_empty() || int_part.len() > 19 {
        return None;
    }
    let mut int: i64 = 0;
    for &c in int_part {
        let d = c.wrapping_sub(b'0');
        if d >= 10 {
            return None;
        }
        int = int.checked_mul(10)?.checked_add(i64::from(d))?;
    }
    // Nanoseconds per unit, and how many fraction digits that unit resolves.
    let (per_unit, frac_digits) = if int < 100_000_000_000 {
        (NANOS_PER_SEC, 9)
    } else if int < 100_000_000_000_000 {
        (1_000_000, 6)
    } else if int < 100_000_000_000_000_000 {
        (1_000, 3)
    } else {
        (1, 0)
    };
    let mut frac: i64 = 0;
    if let Some(f) = frac_part {
        if f.is_empty() {
            return None;
        }
        for (i, &c) in f.iter().enumerate() {
            let d = c.wrapping_sub(b'0');
            if d >= 10 {
                return None;
            }
            if i < frac_digits {
                frac = frac * 10 + i64::from(d);
            }
        }
        let used = f.len().min(frac_digits);
        frac *= POW10[frac_digits - used];
    }
    int.checked_mul(per_unit)?.checked_add(frac)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `value` as exactly `dst.len()` decimal digits (zero-padded, high digits dropped).
fn put_digits(dst: &mut [u8], mut value: u64) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Appends `value` in decimal, at least `width` digits (zero-padded).
fn push_digits(out: &mut String, value: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let digits = (value.checked_ilog10().unwrap_or(0) as usize + 1)
        .max(width)
        .min(20);
    let start = buf.len() - digits;
    put_digits(&mut buf[start..], value);
    if let Ok(text) = std::str::from_utf8(&buf[start..]) {
        out.push_str(text);
    }
}

/// Appends `ns` (Unix nanoseconds) as RFC 3339 UTC with nine fractional digits, e.g.
/// `2024-06-10T12:00:00.123456789Z`. Fixed width, so the text sorts like the instant.
///
/// ```
/// use logship_parsers::timestamp::format_rfc3339_nanos;
///
/// let mut s = String::new();
/// format_rfc3339_nanos(1_718_020_800_123_456_789, &mut s);
/// assert_eq!(s, "2024-06-10T12:00:00.123456789Z");
/// ```
pub fn format_rfc3339_nanos(ns: i64, out: &mut String) {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let nanos = ns.rem_euclid(NANOS_PER_SEC) as u64;
    let days = secs.div_euclid(SECS_PER_DAY);
    let sod = secs.rem_euclid(SECS_PER_DAY) as u64;
    let (year, month, day) = civil_from_days(days);
    // i64 nanoseconds span years 1677..=2262: always four digits and never negative.
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut buf[0..4], year.unsigned_abs());
    put_digits(&mut buf[5..7], u64::from(month));
    put_digits(&mut buf[8..10], u64::from(day));
    put_digits(&mut buf[11..13], sod / 3600);
    put_digits(&mut buf[14..16], sod / 60 % 60);
    put_digits(&mut buf[17..19], sod % 60);
    put_digits(&mut buf[20..29], nanos);
    // Only ASCII was written, so this is always Ok.
    if let Ok(text) = std::str::from_utf8(&buf) {
        out.push_str(text);
    }
}

/// Appends `ns` (Unix nanoseconds) as `<seconds>.<nine digits>`, e.g. `1718020800.123456789`:
/// the form the Docker logs API accepts for `since` with nanosecond precision. Instants before
/// 1970 are written with a leading `-` on the seconds and a non-negative fraction that counts
/// forward from them (`-1.5 s` is `-2.500000000`), matching `div_euclid`.
///
/// ```
/// use logship_parsers::timestamp::format_unix_seconds_nanos;
///
/// let mut s = String::new();
/// format_unix_seconds_nanos(1_718_020_800_000_000_042, &mut s);
/// assert_eq!(s, "1718020800.000000042");
/// ```
pub fn format_unix_seconds_nanos(ns: i64, out: &mut String) {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let nanos = ns.rem_euclid(NANOS_PER_SEC) as u64;
    if secs < 0 {
        out.push('-');
    }
    push_digits(out, secs.unsigned_abs(), 1);
    out.push('.');
    push_digits(out, nanos, 9);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fmt(ns: i64) -> String {
        let mut s = String::new();
        format_rfc3339_nanos(ns, &mut s);
        s
    }

    #[test]
    fn rfc3339_known_values() {
        let cases: &[(&str, i64)] = &[
            ("1970-01-01T00:00:00Z", 0),
            ("2024-06-10T12:00:00Z", 1_718_020_800_000_000_000),
            ("2024-06-10T12:00:00.123456789Z", 1_718_020_800_123_456_789),
            ("2024-06-10T12:00:00.1Z", 1_718_020_800_100_000_000),
            ("2024-06-10T12:00:00.123Z", 1_718_020_800_123_000_000),
            ("2024-06-10 12:00:00.123Z", 1_718_020_800_123_000_000),
            ("2024-06-10t12:00:00z", 1_718_020_800_000_000_000),
            ("2024-06-10T14:00:00+02:00", 1_718_020_800_000_000_000),
            ("2024-06-10T14:00:00+0200", 1_718_020_800_000_000_000),
            ("2024-06-10T07:30:00-04:30", 1_718_020_800_000_000_000),
            // More than nine fraction digits are truncated, not rounded.
            ("2024-06-10T12:00:00.1234567899Z", 1_718_020_800_123_456_789),
            ("2016-10-06T00:17:09.669794202Z", 1_475_713_029_669_794_202),
            ("2000-02-29T00:00:00Z", 951_782_400_000_000_000),
            ("1969-12-31T23:59:59.5Z", -500_000_000),
            ("2262-04-11T23:47:16.854775807Z", i64::MAX),
            ("1677-09-21T00:12:43.145224192Z", i64::MIN),
            // A leap second is read as the next minute's first second.
            ("2016-12-31T23:59:60Z", 1_483_228_800_000_000_000),
            ("  2024-06-10T12:00:00Z\n", 1_718_020_800_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp(text.as_bytes()), Some(*want), "{text}");
        }
    }

    #[test]
    fn rfc3339_rejects_malformed() {
        for text in [
            "",
            "2024-06-10T12:00:00",
            "2024-06-10T12:00:00.Z",
            "2024-06-10T12:00:00.123",
            "2024-13-10T12:00:00Z",
            "2024-00-10T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-06-31T12:00:00Z",
            "2024-06-00T12:00:00Z",
            "2024-06-10T24:00:00Z",
            "2024-06-10T12:60:00Z",
            "2024-06-10T12:00:61Z",
            "2024-06-10X12:00:00Z",
            "2024-06-10T12:00:00ZZ",
            "2024-06-10T12:00:00+2:00",
            "2024-06-10T12:00:00+24:00",
            "2024-06-10T12:00:00+02:60",
            "2024-06-10T12:00:00+02:0",
            "2024-6-10T12:00:00Z",
            "2262-04-11T23:47:16.854775808Z",
            "1677-09-21T00:12:43.145224191Z",
            "9999-12-31T23:59:59Z",
            "2024-06-10T12:00:00Z trailing",
            "2024-06-10T12:00:00.12a3Z",
        ] {
            assert_eq!(parse_timestamp(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn epoch_units_follow_magnitude() {
        let cases: &[(&str, i64)] = &[
            ("0", 0),
            ("1718000000", 1_718_000_000_000_000_000),
            ("1718000000.123", 1_718_000_000_123_000_000),
            ("1718000000.123456789", 1_718_000_000_123_456_789),
            ("1718000000.1234567891", 1_718_000_000_123_456_789),
            ("9223372036", 9_223_372_036_000_000_000),
            ("1718000000123", 1_718_000_000_123_000_000),
            ("1718000000123.5", 1_718_000_000_123_500_000),
            ("1718000000123456", 1_718_000_000_123_456_000),
            ("1718000000123456.7", 1_718_000_000_123_456_700),
            ("1718000000123456789", 1_718_000_000_123_456_789),
            ("1718000000123456789.9", 1_718_000_000_123_456_789),
            ("100000000000", 100_000_000_000_000_000),
            (" 1718000000 ", 1_718_000_000_000_000_000),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp(text.as_bytes()), Some(*want), "{text}");
        }
    }

    #[test]
    fn epoch_rejects_malformed() {
        for text in [
            "-1",
            "+1",
            "1.",
            ".5",
            "1e9",
            "17180000x0",
            "1.2.3",
            "99999999999999999999",
            "9223372036854775808",
            // Seconds that do not fit in i64 nanoseconds.
            "9223372037",
            "99999999999",
        ] {
            assert_eq!(parse_timestamp(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn formats_known_values() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(fmt(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            fmt(1_475_713_029_669_794_202),
            "2016-10-06T00:17:09.669794202Z"
        );
        assert_eq!(fmt(i64::MAX), "2262-04-11T23:47:16.854775807Z");
        assert_eq!(fmt(i64::MIN), "1677-09-21T00:12:43.145224192Z");
        let mut s = String::from("since=");
        format_unix_seconds_nanos(-1_500_000_000, &mut s);
        assert_eq!(s, "since=-2.500000000");
        s.clear();
        format_unix_seconds_nanos(0, &mut s);
        assert_eq!(s, "0.000000000");
    }

    #[test]
    fn days_from_civil_matches_civil_from_days() {
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    proptest! {
        #[test]
        fn rfc3339_round_trip(ns in any::<i64>()) {
            prop_assert_eq!(parse_timestamp(fmt(ns).as_bytes()), Some(ns));
        }

        #[test]
        fn unix_seconds_round_trip(ns in 0i64..i64::MAX) {
            let mut s = String::new();
            format_unix_seconds_nanos(ns, &mut s);
            // Every i64 instant is below 1e11 seconds (year 5138), so it reads back as seconds.
            prop_assert_eq!(parse_timestamp(s.as_bytes()), Some(ns));
        }

        #[test]
        fn never_panics(text in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_timestamp(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "[0-9:.TZ+ -]{0,40}") {
            let _ = parse_timestamp(text.as_bytes());
        }
    }
}
