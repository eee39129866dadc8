//! Why a Loki sink could not be built. No variant carries a secret: credential problems name
//! the file or the setting, never the value.

use std::path::PathBuf;

use super::encode::UnsupportedFormat;

/// A Loki sink's configuration cannot be turned into a working sink.
#[derive(Debug, thiserror::Error)]
pub enum LokiSinkError {
    /// `endpoint` + `path` is not an absolute http(s) URL.
    #[error("invalid Loki endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The URL with any user info removed.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding and compression do not go together.
    #[error(transparent)]
    UnsupportedFormat(#[from] UnsupportedFormat),
    /// A secret file could not be read.
    #[error("cannot read {what} from {path}: {source}")]
    ReadSecret {
        /// Which setting (`auth.password_file`, `auth.token_file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error (never the contents).
        source: std::io::Error,
    },
    /// A secret file is empty after trimming.
    #[error("{what} {path} is empty")]
    EmptySecret {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The auth settings contradict each other or are incomplete.
    #[error("invalid auth settings: {0}")]
    InvalidAuth(&'static str),
    /// A credential contains bytes that cannot go in an HTTP header (a newline, say).
    #[error("{0} contains characters not allowed in an HTTP header")]
    InvalidCredential(&'static str),
    /// `tenant_id` cannot go in an HTTP header.
    #[error("tenant_id {0:?} contains characters not allowed in an HTTP header")]
    InvalidTenant(String),
    /// A TLS file could not be read.
    #[error("cannot read TLS {what} {path}: {source}")]
    ReadTls {
        /// `ca_file`, `crt_file` or `key_file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS file is not what it should be.
    #[error("invalid TLS {what} {path}: {reason}")]
    InvalidTls {
        /// `ca_file`, `crt_file`/`key_file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (never key material).
        reason: String,
    },
    /// `crt_file` without `key_file` or the other way round.
    #[error("tls.crt_file and tls.key_file must be given together")]
    IncompleteClientCert,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// `label_cardinality_limit` is 0.
    #[error("label_cardinality_limit must be at least 1")]
    ZeroCardinalityLimit,
    /// `request.concurrency` is 0.
    #[error("request.concurrency must be at least 1")]
    ZeroConcurrency,
}
