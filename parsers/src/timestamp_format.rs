//! Timestamps in a format the user names: log4j's `2026-11-30 14:35:10,753`, the common log
//! format's `30/Nov/2026:14:00:00 +0000`, syslog's `Nov 30 14:00:00`.
//!
//! [`TimestampParser`] is what a transform's `timestamp_format` and `timezone` options build.
//! Without a format it is [`parse_timestamp`]'s hand-written RFC 3339 and epoch fast path;
//! with one, `strftime`-style directives parsed by the `jiff` crate (`%Y-%m-%d %H:%M:%S,%f`,
//! `%d/%b/%Y:%H:%M:%S %z`). A time without an offset is read in the configured `timezone`
//! (UTC by default); a format without a year (syslog) takes the year that puts the time
//! closest before the time the line was read.
//!
//! Building a parser may read the system's time-zone database (`/usr/share/zoneinfo`, with a
//! bundled copy as fallback); parsing does no I/O.

use jiff::Timestamp;
use jiff::fmt::strtime::{self, BrokenDownTime};
use jiff::tz::{Offset, TimeZone};

use crate::timestamp::parse_timestamp;

const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A `timestamp_format` or `timezone` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TimestampFormatError {
    /// The format has a directive `jiff` does not know, or cannot give a date and time.
    #[error("invalid timestamp format `{format}`: {reason}")]
    Format {
        /// The format as configured.
        format: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The time zone is neither an IANA name, `UTC`, `local` nor an offset like `+02:00`.
    #[error(
        "unknown time zone `{0}`: use an IANA name (`Europe/Berlin`), `UTC`, `local` or an offset (`+02:00`)"
    )]
    TimeZone(String),
}

/// Turns a timestamp field into Unix nanoseconds, as configured.
#[derive(Debug, Clone)]
pub struct TimestampParser {
    format: Option<Box<str>>,
    zone: TimeZone,
    /// Whether a `timezone` was given: only then is an RFC 3339 time without an offset read
    /// (in that zone) rather than refused.
    zone_given: bool,
}

impl Default for TimestampParser {
    /// RFC 3339 and epoch numbers only, as [`parse_timestamp`].
    fn default() -> Self {
        Self {
            format: None,
            zone: TimeZone::UTC,
            zone_given: false,
        }
    }
}

impl TimestampParser {
    /// A parser for `format` (strftime-style; `None`: RFC 3339 and epoch numbers) whose times
    /// without an offset are in `timezone` (an IANA name, `UTC`, `local` or `+HH:MM`;
    /// `None`: UTC).
    ///
    /// ```
    /// use logship_parsers::timestamp_format::TimestampParser;
    ///
    /// let log4j = TimestampParser::new(Some("%Y-%m-%d %H:%M:%S,%f"), Some("+01:00")).unwrap();
    /// assert_eq!(log4j.parse(b"1970-01-01 01:00:01,5", 0), Some(1_500_000_000));
    ///
    /// let clf = TimestampParser::new(Some("%d/%b/%Y:%H:%M:%S %z"), None).unwrap();
    /// assert_eq!(clf.parse(b"01/Jan/1970:00:00:02 +0000", 0), Some(2_000_000_000));
    /// ```
    pub fn new(format: Option<&str>, timezone: Option<&str>) -> Result<Self, TimestampFormatError> {
        let zone = match timezone {
            Some(name) => resolve_time_zone(name)?,
            None => TimeZone::UTC,
        };
        if let Some(format) = format {
            check_format(format)?;
        }
        Ok(Self {
            format: format.map(Box::from),
            zone,
            zone_given: timezone.is_some(),
        })
    }

    /// Parses `text`; `read_ns` (when the line was read, Unix nanoseconds) places a time
    /// whose format has no year. `None` when the text does not match.
    pub fn parse(&self, text: &[u8], read_ns: i64) -> Option<i64> {
        let Some(format) = &self.format else {
            return parse_timestamp(text).or_else(|| {
                if self.zone_given {
                    self.parse_civil(text)
                } else {
                    None
                }
            });
        };
        let text = std::str::from_utf8(text.trim_ascii()).ok()?;
        let mut tm = BrokenDownTime::parse(format.as_bytes(), text).ok()?;
        if tm.offset().is_some() || tm.timestamp().is_some() {
            return nanos(tm.to_timestamp().ok()?);
        }
        if tm.year().is_none() {
            return self.without_year(&mut tm, read_ns);
        }
        self.in_zone(&tm)
    }

    /// An RFC 3339-like time without an offset (`2026-11-30T14:35:10.5`), in the zone.
    fn parse_civil(&self, text: &[u8]) -> Option<i64> {
        let text = std::str::from_utf8(text.trim_ascii()).ok()?;
        self.civil_in_zone(text.parse().ok()?)
    }

    fn in_zone(&self, tm: &BrokenDownTime) -> Option<i64> {
        self.civil_in_zone(tm.to_datetime().ok()?)
    }

    /// A wall-clock time in the configured zone; in a DST gap or overlap, the earlier
    /// reading (jiff's `compatible`).
    fn civil_in_zone(&self, dt: jiff::civil::DateTime) -> Option<i64> {
        let zoned = self.zone.to_ambiguous_zoned(dt).compatible().ok()?;
        nanos(zoned.timestamp())
    }

    /// Syslog's `Nov 30 14:00:00`: the read year, unless that is more than a day ahead of the
    /// read time (a December line read in January), then the year before.
    fn without_year(&self, tm: &mut BrokenDownTime, read_ns: i64) -> Option<i64> {
        let read = Timestamp::from_nanosecond(i128::from(read_ns)).ok()?;
        let year = read.to_zoned(self.zone.clone()).year();
        tm.set_year(Some(year)).ok()?;
        let this_year = self.in_zone(tm)?;
        if this_year <= read_ns.saturating_add(NANOS_PER_DAY) {
            return Some(this_year);
        }
        tm.set_year(Some(year - 1)).ok()?;
        self.in_zone(tm)
    }
}

fn nanos(ts: Timestamp) -> Option<i64> {
    i64::try_from(ts.as_nanosecond()).ok()
}

/// `UTC`, `local` (the system's zone), a fixed offset (`+02:00`, `-0530`, `+02`) or an IANA name.
fn resolve_time_zone(name: &str) -> Result<TimeZone, TimestampFormatError> {
    let unknown = || TimestampFormatError::TimeZone(name.to_owned());
    match name {
        "UTC" | "utc" | "Z" => return Ok(TimeZone::UTC),
        // The system's zone (TZ, /etc/localtime); UTC when it cannot be found.
        "local" => return Ok(TimeZone::system()),
        _ => {}
    }
    if let Some(sign) = name.strip_prefix(['+', '-']).map(|_| name.as_bytes()[0]) {
        let digits: String = name[1..].chars().filter(|c| *c != ':').collect();
        let (hours, minutes) = match digits.len() {
            2 => (digits.parse::<i32>().ok(), Some(0)),
            4 => (digits[..2].parse().ok(), digits[2..].parse().ok()),
            _ => (None, None),
        };
        let (Some(hours), Some(minutes)) = (hours, minutes) else {
            return Err(unknown());
        };
        if hours > 23 || minutes > 59 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown());
        }
        let seconds = (hours * 3600 + minutes * 60) * if sign == b'-' { -1 } else { 1 };
        return Offset::from_seconds(seconds)
            .map(TimeZone::fixed)
            .map_err(|_| unknown());
    }
    TimeZone::get(name).map_err(|_| unknown())
}

/// Refuses a format `jiff` cannot parse with, or one that cannot give a day and a time.
fn check_format(format: &str) -> Result<(), TimestampFormatError> {
    let invalid = |reason: String| TimestampFormatError::Format {
        format: format.to_owned(),
        reason,
    };
    // Formatting a known instant with it finds unknown directives; parsing the result back
    // finds formats that lose the day or the time of day.
    let sample = Timestamp::from_second(1_796_049_310)
        .map_err(|e| invalid(e.to_string()))?
        .to_zoned(TimeZone::UTC);
    let text = strtime::format(format, &sample).map_err(|e| invalid(e.to_string()))?;
    let tm = BrokenDownTime::parse(format, &text).map_err(|e| invalid(e.to_string()))?;
    if tm.timestamp().is_some() {
        return Ok(());
    }
    let missing_day = tm.month().is_none() || tm.day().is_none();
    if missing_day || tm.hour().is_none() {
        return Err(invalid(
            "it needs a month and day (`%m`/`%b`, `%d`) and an hour (`%H`), or `%s`".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30T14:35:10Z in Unix seconds.
    const NOV_30: i64 = 1_796_049_310;
    const NS: i64 = 1_000_000_000;

    fn parser(format: &str, zone: Option<&str>) -> TimestampParser {
        TimestampParser::new(Some(format), zone).unwrap()
    }

    #[test]
    fn log4j_with_comma_millis_in_a_zone() {
        let p = parser("%Y-%m-%d %H:%M:%S,%f", Some("Europe/Berlin"));
        // Berlin is UTC+1 in November.
        assert_eq!(
            p.parse(b"2026-11-30 15:35:10,753", 0),
            Some(NOV_30 * NS + 753_000_000)
        );
        let utc = parser("%Y-%m-%d %H:%M:%S,%f", None);
        assert_eq!(
            utc.parse(b"2026-11-30 14:35:10,753", 0),
            Some(NOV_30 * NS + 753_000_000)
        );
    }

    #[test]
    fn common_log_format_uses_its_own_offset() {
        let p = parser("%d/%b/%Y:%H:%M:%S %z", Some("Asia/Tokyo"));
        assert_eq!(p.parse(b"30/Nov/2026:16:35:10 +0200", 0), Some(NOV_30 * NS));
    }

    #[test]
    fn syslog_without_a_year_takes_the_read_year_or_the_one_before() {
        let p = parser("%b %d %H:%M:%S", None);
        let read = (NOV_30 + 60) * NS;
        assert_eq!(p.parse(b"Nov 30 14:35:10", read), Some(NOV_30 * NS));
        // A December line read on the first of January belongs to the year before.
        let jan_1_2027 = 1_798_761_600 * NS;
        let dec_31_2026 = parser("%Y-%m-%d %H:%M:%S", None)
            .parse(b"2026-12-31 23:59:00", 0)
            .unwrap();
        assert_eq!(p.parse(b"Dec 31 23:59:00", jan_1_2027), Some(dec_31_2026));
    }

    #[test]
    fn without_a_format_rfc3339_and_epochs_still_parse() {
        let p = TimestampParser::new(None, None).unwrap();
        assert_eq!(p.parse(b"2026-11-30T14:35:10Z", 0), Some(NOV_30 * NS));
        assert_eq!(p.parse(b"1796049310", 0), Some(NOV_30 * NS));
        assert_eq!(
            p.parse(b"2026-11-30T14:35:10", 0),
            None,
            "no offset, no zone"
        );
        let zoned = TimestampParser::new(None, Some("+02:00")).unwrap();
        assert_eq!(zoned.parse(b"2026-11-30T16:35:10", 0), Some(NOV_30 * NS));
        assert_eq!(zoned.parse(b"2026-11-30T14:35:10Z", 0), Some(NOV_30 * NS));
    }

    #[test]
    fn text_that_does_not_match_is_none() {
        let p = parser("%Y-%m-%d %H:%M:%S,%f", None);
        assert_eq!(p.parse(b"yesterday", 0), None);
        assert_eq!(p.parse(b"2026-13-30 14:35:10,753", 0), None);
        assert_eq!(p.parse(b"\xff\xfe", 0), None);
    }

    #[test]
    fn offsets_and_names_resolve_and_nonsense_does_not() {
        for ok in ["UTC", "+02:00", "-0530", "+02", "America/New_York", "local"] {
            assert!(resolve_time_zone(ok).is_ok(), "{ok}");
        }
        for bad in ["Mars/Olympus", "+25:00", "+2:00", "+ab:cd", ""] {
            assert!(resolve_time_zone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_that_cannot_give_a_time_are_refused() {
        assert!(check_format("%Y-%m-%d %H:%M:%S").is_ok());
        assert!(check_format("%s").is_ok());
        assert!(check_format("%b %d %H:%M:%S").is_ok());
        assert!(check_format("%Y-%m-%d").is_err(), "no time of day");
        assert!(check_format("%H:%M:%S").is_err(), "no day");
        assert!(
            check_format("%Y-%m-%d %H:%M:%S %!").is_err(),
            "unknown directive"
        );
    }
}
