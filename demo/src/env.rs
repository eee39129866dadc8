//! Settings read from the environment, the twelve-factor way: the same binaries run in the
//! quickstart, in Docker Compose and in the tests with nothing but different variables.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A variable that is set but cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct EnvError {
    /// The variable's name.
    pub name: &'static str,
    /// Its value (never a secret: secrets are not read through this module).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// The variable's value when it is set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `name` when set, else returns `default`.
pub fn parse_or<T>(name: &'static str, default: T) -> Result<T, EnvError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|e: T::Err| EnvError {
            name,
            reason: e.to_string(),
            value,
        }),
    }
}

/// A probability in `[0, 1]`.
pub fn probability_or(name: &'static str, default: f64) -> Result<f64, EnvError> {
    let p: f64 = parse_or(name, default)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(EnvError {
            name,
            value: p.to_string(),
            reason: "must be between 0 and 1".to_owned(),
        })
    }
}

/// A duration given in milliseconds.
pub fn millis_or(name: &'static str, default_ms: u64) -> Result<Duration, EnvError> {
    parse_or(name, default_ms).map(Duration::from_millis)
}

/// A listen address such as `127.0.0.1:8080` or `0.0.0.0:8080`.
pub fn addr_or(name: &'static str, default: &str) -> Result<SocketAddr, EnvError> {
    let value = var(name).unwrap_or_else(|| default.to_owned());
    value
        .trim()
        .parse()
        .map_err(|e: std::net::AddrParseError| EnvError {
            name,
            reason: e.to_string(),
            value,
        })
}

/// The database URL: `DATABASE_URL`, or an embedded SQLite file in the working directory.
pub fn database_url() -> String {
    var("DATABASE_URL").unwrap_or_else(|| "sqlite://orders-demo.db?mode=rwc".to_owned())
}

/// The Redis URL when the job queue lives in Redis; `None` means the database-backed queue.
pub fn redis_url() -> Option<String> {
    var("REDIS_URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variable_gives_the_default() {
        assert_eq!(
            parse_or::<u32>("LOGSHIP_DEMO_TEST_SURELY_UNSET", 7).unwrap(),
            7
        );
        assert_eq!(
            millis_or("LOGSHIP_DEMO_TEST_SURELY_UNSET", 250).unwrap(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn default_address_must_parse() {
        let a = addr_or("LOGSHIP_DEMO_TEST_SURELY_UNSET", "127.0.0.1:8080").unwrap();
        assert_eq!(a.port(), 8080);
        assert!(addr_or("LOGSHIP_DEMO_TEST_SURELY_UNSET", "nope").is_err());
    }
}
