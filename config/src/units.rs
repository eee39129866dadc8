//! Values written with units, the way Loki's own `limits_config` writes them, so a user can
//! copy a limit from their Loki config unchanged.
//!
//! - [`LokiDuration`]: `"168h"`, `"10m"`, `"1h30m"`, `"7d"`, `"1w"`, `"500ms"` (Prometheus
//!   units: `ms`, `s`, `m`, `h`, `d` = 24 h, `w` = 7 d, `y` = 365 d), or an integer of seconds.
//! - [`ByteSize`]: `"256KB"`, `"64KB"`, `"1MB"`: `B`, `KB`/`KiB`/`K`, `MB`/`MiB`/`M`,
//!   `GB`/`GiB`/`G`, all powers of 1024 as in Loki (its `256KB` is 262,144 bytes), or an
//!   integer of bytes.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration written as Loki writes one (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LokiDuration(pub Duration);

/// A size in bytes written as Loki writes one (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size as a `usize` (saturating on 32-bit targets).
    pub fn bytes(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Parses `"1h30m"`-style text. `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_secs: f64 = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 7.0 * 86_400.0,
            "y" => 365.0 * 86_400.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(n as f64 * unit_secs).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses `"256KB"`-style text. `None` when it is not one.
pub fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = text[..digits].parse().ok()?;
    let multiplier: u64 = match text[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(multiplier)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = LokiDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"168h\", \"10m\" or \"7d\", or a number of seconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LokiDuration, E> {
        parse_duration(v).map(LokiDuration).ok_or_else(|| {
            E::custom(format!(
                "invalid duration {v:?}: use a number and a unit (ms, s, m, h, d, w), e.g. \"168h\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LokiDuration, E> {
        u64::try_from(v)
            .map(|s| LokiDuration(Duration::from_secs(s)))
            .map_err(|_| E::custom("a duration cannot be negative"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LokiDuration, E> {
        Ok(LokiDuration(Duration::from_secs(v)))
    }
}

impl<'de> Deserialize<'de> for LokiDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as \"256KB\" or \"1MB\", or a number of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        parse_byte_size(v).map(ByteSize).ok_or_else(|| {
            E::custom(format!(
                "invalid size {v:?}: use a number and a unit (B, KB, MB, GB; powers of 1024), e.g. \"256KB\""
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v)
            .map(ByteSize)
            .map_err(|_| E::custom("a size cannot be negative"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteSizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_loki_writes_them() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_duration("168h"), Some(h(168)));
        assert_eq!(parse_duration("7d"), Some(h(168)));
        assert_eq!(parse_duration("1w"), Some(h(168)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "h", "10", "10x", "1.5h", "-1h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_byte_size("256KB"), Some(262_144));
        assert_eq!(parse_byte_size("64KB"), Some(65_536));
        assert_eq!(parse_byte_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_byte_size("1gb"), Some(1 << 30));
        assert_eq!(parse_byte_size("100"), Some(100));
        for bad in ["", "KB", "12XB", "-1"] {
            assert_eq!(parse_byte_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn deserializes_from_text_and_numbers() {
        #[derive(serde::Deserialize)]
        struct T {
            d: LokiDuration,
            n: LokiDuration,
            s: ByteSize,
            b: ByteSize,
        }
        let t: T = toml::from_str("d = \"2h\"\nn = 90\ns = \"64KB\"\nb = 10").unwrap();
        assert_eq!(t.d.0, Duration::from_secs(7200));
        assert_eq!(t.n.0, Duration::from_secs(90));
        assert_eq!((t.s.0, t.b.0), (65_536, 10));
        let e = toml::from_str::<T>("d = \"2 hours\"\nn = 1\ns = \"1KB\"\nb = 1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("invalid duration"), "{e}");
    }
}
