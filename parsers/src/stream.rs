//! The output stream a container line was written to.
//!
//! Docker json-file lines and CRI lines both name the stream (`stdout` or `stderr`); the type
//! lives in its own module so both decoders, and the agent's `stream` label, share it.

use std::fmt;

/// The standard stream a container wrote a line to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Parses the exact names `stdout` and `stderr`; anything else is `None`.
    #[inline]
    pub fn from_bytes(name: &[u8]) -> Option<Stream> {
        match name {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }

    /// The stream's name as written in log files and used as a label value.
    #[inline]
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_names_only() {
        assert_eq!(Stream::from_bytes(b"stdout"), Some(Stream::Stdout));
        assert_eq!(Stream::from_bytes(b"stderr"), Some(Stream::Stderr));
        assert_eq!(Stream::from_bytes(b"Stdout"), None);
        assert_eq!(Stream::from_bytes(b""), None);
        assert_eq!(Stream::from_bytes(b"stdout "), None);
    }

    #[test]
    fn round_trips_through_as_str() {
        for s in [Stream::Stdout, Stream::Stderr] {
            assert_eq!(Stream::from_bytes(s.as_str().as_bytes()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
        }
    }
}
