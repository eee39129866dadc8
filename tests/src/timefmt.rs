//! Time formatting without a date crate: RFC 3339 with nanoseconds (what the log writer puts
//! in its lines and what the tests parse back) and Go's `time.Time.String()` (what Loki prints
//! in its partial-failure bodies).
//!
//! Everything is UTC; the civil-date conversion is Howard Hinnant's `days_from_civil` /
//! `civil_from_days`.

use std::time::{SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Unix nanoseconds of `t` (negative before 1970).
pub fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// Unix nanoseconds now.
pub fn now_nanos() -> i64 {
    unix_nanos(SystemTime::now())
}

/// Civil date of a day count since 1970-01-01: (year, month 1..=12, day 1..=31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Broken-down UTC time of Unix nanoseconds.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
}

fn civil(ns: i64) -> Civil {
    let secs = ns.div_euclid(NANOS_PER_SEC);
    let nanos = ns.rem_euclid(NANOS_PER_SEC);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        nanos,
    }
}

/// `2024-06-10T06:13:20.123456789Z`: always nine fraction digits, so the value round-trips
/// exactly through [`parse_rfc3339_nanos`].
pub fn rfc3339_nanos(ns: i64) -> String {
    let c = civil(ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
    )
}

/// `2024-06-10T06:13:20Z` (Go's `time.RFC3339`, UTC, no fraction).
pub fn rfc3339_seconds(ns: i64) -> String {
    let c = civil(ns);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Go's `time.Time.String()` for a UTC time: `2024-06-10 06:13:20.1234 +0000 UTC` (fraction
/// without trailing zeros, omitted when zero).
pub fn go_time_string(ns: i64) -> String {
    let c = civil(ns);
    let mut frac = String::new();
    if c.nanos != 0 {
        frac = format!(".{:09}", c.nanos);
        while frac.ends_with('0') {
            frac.pop();
        }
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{} +0000 UTC",
        c.year, c.month, c.day, c.hour, c.minute, c.second, frac
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into Unix nanoseconds; `None` when the
/// text is not of that shape.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = num(0..4)?;
    let month = u32::try_from(num(5..7)?).ok()?;
    let day = u32::try_from(num(8..10)?).ok()?;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits.min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2024-06-10T06:13:20Z is 1718000000 s.
        let ns = 1_718_000_000_123_456_789;
        assert_eq!(rfc3339_nanos(ns), "2024-06-10T06:13:20.123456789Z");
        assert_eq!(rfc3339_seconds(ns), "2024-06-10T06:13:20Z");
        assert_eq!(
            go_time_string(ns),
            "2024-06-10 06:13:20.123456789 +0000 UTC"
        );
        assert_eq!(
            go_time_string(1_718_000_000_100_000_000),
            "2024-06-10 06:13:20.1 +0000 UTC"
        );
        assert_eq!(
            go_time_string(1_718_000_000_000_000_000),
            "2024-06-10 06:13:20 +0000 UTC"
        );
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        // A leap day.
        assert_eq!(
            rfc3339_seconds(951_782_400 * NANOS_PER_SEC),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn parse_round_trips_and_handles_offsets() {
        for ns in [
            0,
            1_718_000_000_123_456_789,
            951_782_400_000_000_001,
            4_102_444_799_999_999_999,
        ] {
            assert_eq!(parse_rfc3339_nanos(&rfc3339_nanos(ns)), Some(ns));
        }
        assert_eq!(
            parse_rfc3339_nanos("2024-06-10T08:13:20.5+02:00"),
            Some(1_718_000_000_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos("2024-06-10 06:13:20"), None);
        assert_eq!(parse_rfc3339_nanos("not a time at all!!"), None);
        assert_eq!(parse_rfc3339_nanos("2024-13-10T06:13:20Z"), None);
    }
}
