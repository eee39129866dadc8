//! The HTTP side of the sink: a `reqwest` client (rustls) configured from the sink's settings,
//! and one push request with its answer.
//!
//! Every push is `POST {endpoint}{path}` with `Content-Type` (and `Content-Encoding` for gzip),
//! `User-Agent: logship/<version>`, `X-Scope-OrgID` when `tenant_id` is set, and the
//! `Authorization` header when credentials are configured. The URL kept here never holds user
//! info (credentials given in the URL are moved to the `Authorization` header), so it may be
//! logged. TLS trusts the built-in web PKI roots plus `tls.ca_file`, presents
//! `tls.crt_file`/`tls.key_file` for mutual TLS, and skips verification only when asked.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use logship_config::schema::{LokiSinkConfig, TlsConfig};
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::auth::Credentials;
use super::encode::BodyFormat;
use super::error::LokiSinkError;
use super::redact::Redactor;
use super::refusals::{self, Refusal};
use super::rejection;
use super::repair::floor_char_boundary;
use super::retry::parse_retry_after;
use crate::error_chain::error_chain;

/// Bytes of an error answer kept for the log.
pub const SNIPPET_BYTES: usize = 1024;

/// Bytes of an answer read at most (so the connection can be reused), the rest is dropped.
const DRAIN_BYTES: usize = 64 * 1024;

/// Bytes of a 400 answer read at most: Loki lists every refused entry before each stream's
/// `total ignored` count, so the whole answer is needed to know how much was refused.
const REJECTION_BYTES: usize = 4 * 1024 * 1024;

const TENANT_HEADER: HeaderName = HeaderName::from_static("x-scope-orgid");

/// What Loki answered to one push.
#[derive(Debug, Clone)]
pub struct PushResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The wait `Retry-After` asked for, if it was present and valid.
    pub retry_after: Option<Duration>,
    /// The first [`SNIPPET_BYTES`] of the body, as text, with the sink's secrets redacted.
    pub body: Bytes,
    /// For a 400: how many entries Loki says it ignored (its `total ignored: N` counts),
    /// or `None` when the answer does not say or was too long to read whole.
    pub ignored: Option<u64>,
    /// For a 400 read whole: the refused entries it names.
    pub refusals: Vec<Refusal>,
}

impl PushResponse {
    /// The body snippet as text, for logs.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// A push that got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No answer within `request.timeout_ms`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Connection(String),
}

/// The configured HTTP client and request headers of one sink.
#[derive(Clone)]
pub struct LokiClient {
    client: reqwest::Client,
    url: Url,
    content_type: HeaderValue,
    content_encoding: Option<HeaderValue>,
    credentials: Option<Credentials>,
    redactor: Redactor,
    tenant: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for LokiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiClient")
            .field("url", &self.url.as_str())
            .field("content_type", &self.content_type)
            .field("credentials", &self.credentials)
            .field("tenant", &self.tenant)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LokiClient {
    /// Builds the client for `config`, sending bodies of `format`. Reads the secret and TLS
    /// files it names.
    pub fn new(config: &LokiSinkConfig, format: BodyFormat) -> Result<Self, LokiSinkError> {
        let (url, url_credentials) = push_url(&config.endpoint, &config.path)?;
        let configured = match &config.auth {
            Some(auth) => Credentials::from_config(auth)?,
            None => None,
        };
        let credentials = match (configured, url_credentials) {
            (Some(_), Some(_)) => {
                return Err(LokiSinkError::InvalidAuth(
                    "credentials in both the endpoint URL and auth",
                ));
            }
            (Some(c), None) | (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        let tenant = match &config.tenant_id {
            Some(t) => Some(
                HeaderValue::from_str(t).map_err(|_| LokiSinkError::InvalidTenant(t.clone()))?,
            ),
            None => None,
        };
        let timeout = Duration::from_millis(config.request.timeout_ms.max(1));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("logship/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(config.request.concurrency.max(1));
        if let Some(tls) = &config.tls {
            builder = configure_tls(builder, tls)?;
        }
        let client = builder
            .build()
            .map_err(|e| LokiSinkError::Client(error_chain(&e.without_url())))?;
        Ok(Self {
            client,
            url,
            content_type: HeaderValue::from_static(format.content_type()),
            content_encoding: format.content_encoding().map(HeaderValue::from_static),
            redactor: credentials
                .as_ref()
                .map(Credentials::redactor)
                .unwrap_or_default(),
            credentials,
            tenant,
            timeout,
        })
    }

    /// The push URL (never with user info).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Sends one body and returns Loki's answer, or why there was none.
    pub async fn push(&self, body: Bytes) -> Result<PushResponse, PushError> {
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, self.content_type.clone())
            .body(body);
        if let Some(encoding) = &self.content_encoding {
            request = request.header(CONTENT_ENCODING, encoding.clone());
        }
        if let Some(tenant) = &self.tenant {
            request = request.header(TENANT_HEADER, tenant.clone());
        }
        if let Some(credentials) = &self.credentials {
            request = request.header(reqwest::header::AUTHORIZATION, credentials.header().clone());
        }
        let response = request.send().await.map_err(|e| self.push_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let limit = if status == StatusCode::BAD_REQUEST {
            REJECTION_BYTES
        } else {
            DRAIN_BYTES
        };
        let (whole, complete) = read_body(response, limit).await;
        // Redacted before anything looks at it, and only then cut, so no secret survives
        // even in part.
        let text = self
            .redactor
            .redact(&String::from_utf8_lossy(&whole))
            .into_owned();
        let rejected_whole = status == StatusCode::BAD_REQUEST && complete;
        let ignored = rejected_whole
            .then(|| rejection::ignored_entries(&text))
            .flatten();
        let refusals = if rejected_whole {
            refusals::refusals(&text)
        } else {
            Vec::new()
        };
        let body = Bytes::from(text);
        let body = body.slice(..floor_char_boundary(&body, SNIPPET_BYTES));
        Ok(PushResponse {
            status,
            retry_after,
            body,
            ignored,
            refusals,
        })
    }

    fn push_error(&self, e: reqwest::Error) -> PushError {
        if e.is_timeout() {
            PushError::Timeout(self.timeout)
        } else {
            PushError::Connection(error_chain(&e.without_url()))
        }
    }
}

/// The body, up to `limit` bytes, and whether that was all of it. Reading on (rather than
/// dropping the answer) lets the connection go back to the pool. A body that fails halfway
/// keeps what arrived: the status is what counts.
async fn read_body(mut response: reqwest::Response, limit: usize) -> (Bytes, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    return (Bytes::from(body), false);
                }
            }
            Ok(None) => return (Bytes::from(body), true),
            Err(_) => return (Bytes::from(body), false),
        }
    }
}

/// `endpoint` + `path` as a URL without user info, and the credentials that user info held.
fn push_url(endpoint: &str, path: &str) -> Result<(Url, Option<Credentials>), LokiSinkError> {
    let invalid = |reason: &str| LokiSinkError::InvalidEndpoint {
        endpoint: redact_userinfo(endpoint),
        reason: reason.to_owned(),
    };
    let mut text = endpoint.trim_end_matches('/').to_owned();
    if !path.is_empty() && !path.starts_with('/') {
        text.push('/');
    }
    text.push_str(path);
    let mut url = Url::parse(&text).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let credentials = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let user = percent_decode(url.username());
        let password = percent_decode(url.password().unwrap_or_default());
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(Credentials::basic(&user, &password)?)
    };
    Ok((url, credentials))
}

/// Decodes `%XX` escapes (user info in URLs is percent-encoded); malformed escapes stay as
/// they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `scheme://user:pass@host/...` → `scheme://***@host/...`, for error messages about URLs
/// that could not be parsed.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

fn read_tls_file(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, LokiSinkError> {
    std::fs::read(path).map_err(|source| LokiSinkError::ReadTls {
        what,
        path: path.to_owned(),
        source,
    })
}

fn configure_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> Result<reqwest::ClientBuilder, LokiSinkError> {
    if let Some(ca) = &tls.ca_file {
        let pem = read_tls_file("ca_file", ca)?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| LokiSinkError::InvalidTls {
                what: "ca_file",
                path: ca.clone(),
                reason: error_chain(&e),
            })?;
        if certs.is_empty() {
            return Err(LokiSinkError::InvalidTls {
                what: "ca_file",
                path: ca.clone(),
                reason: "no PEM certificate in it".to_owned(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    match (&tls.crt_file, &tls.key_file) {
        (Some(crt), Some(key)) => {
            let mut pem = read_tls_file("key_file", key)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read_tls_file("crt_file", crt)?);
            // The parser's error could quote the file; say only what is wrong.
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|_| LokiSinkError::InvalidTls {
                    what: "crt_file/key_file",
                    path: crt.clone(),
                    reason: "expected a PEM certificate and a PEM private key".to_owned(),
                })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => return Err(LokiSinkError::IncompleteClientCert),
    }
    if tls.insecure_skip_verify {
        tracing::warn!("tls.insecure_skip_verify is set: Loki's certificate is not checked");
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_endpoint_and_path() {
        let (url, creds) = push_url("http://127.0.0.1:3100/", "/loki/api/v1/push").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:3100/loki/api/v1/push");
        assert!(creds.is_none());
        let (url, _) = push_url("https://loki.example/base", "loki/api/v1/push").unwrap();
        assert_eq!(url.as_str(), "https://loki.example/base/loki/api/v1/push");
    }

    #[test]
    fn moves_user_info_out_of_the_url() {
        let (url, creds) = push_url("http://us%40er:p%3Ass@loki:3100", "/push").unwrap();
        assert_eq!(url.as_str(), "http://loki:3100/push");
        let creds = creds.unwrap();
        // base64("us@er:p:ss")
        assert_eq!(creds.header(), "Basic dXNAZXI6cDpzcw==");
    }

    #[test]
    fn rejects_bad_endpoints_without_leaking_passwords() {
        for endpoint in ["ftp://loki", "not a url", "http://user:hunter2@[::1"] {
            let e = push_url(endpoint, "/push").unwrap_err();
            assert!(
                matches!(e, LokiSinkError::InvalidEndpoint { .. }),
                "{endpoint}"
            );
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
        }
        assert_eq!(
            redact_userinfo("http://a:b@host/x@y"),
            "http://***@host/x@y"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }
}
