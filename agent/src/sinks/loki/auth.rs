//! Credentials: the `Authorization` header built from `auth` (inline secrets, secret files, or
//! user info in the endpoint URL).
//!
//! Files are read once, when the sink is built, and trimmed (a trailing newline is the norm in
//! mounted secrets). The header value is marked sensitive, so `http`'s own `Debug` hides it,
//! and [`Credentials`] never prints it either.

use std::path::Path;

use logship_config::schema::AuthConfig;
use reqwest::header::HeaderValue;

use super::error::LokiSinkError;
use super::redact::Redactor;

/// An `Authorization` header value, kept out of every `Debug` and log.
#[derive(Clone)]
pub struct Credentials {
    header: HeaderValue,
    scheme: &'static str,
    /// Every text that reveals the secret: what a [`Redactor`] must remove.
    revealing: Vec<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} ***)", self.scheme)
    }
}

impl Credentials {
    /// Basic authentication for `user:password`.
    pub fn basic(user: &str, password: &str) -> Result<Self, LokiSinkError> {
        let mut raw = Vec::with_capacity(user.len() + password.len() + 1);
        raw.extend_from_slice(user.as_bytes());
        raw.push(b':');
        raw.extend_from_slice(password.as_bytes());
        let encoded = base64(&raw);
        let value = format!("Basic {encoded}");
        Ok(Self {
            header: sensitive(&value, "auth.user/password")?,
            scheme: "Basic",
            revealing: vec![password.to_owned(), format!("{user}:{password}"), encoded],
        })
    }

    /// Bearer authentication with `token`.
    pub fn bearer(token: &str) -> Result<Self, LokiSinkError> {
        Ok(Self {
            header: sensitive(&format!("Bearer {token}"), "auth.token")?,
            scheme: "Bearer",
            revealing: vec![token.to_owned()],
        })
    }

    /// The header value to send.
    pub fn header(&self) -> &HeaderValue {
        &self.header
    }

    /// A redactor for every form in which these credentials are sent.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.revealing.iter().map(String::as_str))
    }

    /// The credentials `auth` describes, or `None` when it describes none.
    pub fn from_config(auth: &AuthConfig) -> Result<Option<Self>, LokiSinkError> {
        let password = secret(
            auth.password.as_ref().map(|s| s.expose()),
            auth.password_file.as_deref(),
            "auth.password_file",
            "auth.password and auth.password_file are exclusive",
        )?;
        let token = secret(
            auth.token.as_ref().map(|s| s.expose()),
            auth.token_file.as_deref(),
            "auth.token_file",
            "auth.token and auth.token_file are exclusive",
        )?;
        match (&auth.user, password, token) {
            (Some(_), _, Some(_)) => Err(LokiSinkError::InvalidAuth(
                "basic (user) and bearer (token) are exclusive",
            )),
            (Some(user), Some(password), None) => Self::basic(user, &password).map(Some),
            (Some(_), None, None) => Err(LokiSinkError::InvalidAuth(
                "auth.user needs auth.password or auth.password_file",
            )),
            (None, Some(_), _) => Err(LokiSinkError::InvalidAuth("auth.password needs auth.user")),
            (None, None, Some(token)) => Self::bearer(&token).map(Some),
            (None, None, None) => Ok(None),
        }
    }
}

/// The secret from its inline value or its file, if either is given.
fn secret(
    inline: Option<&str>,
    file: Option<&Path>,
    what: &'static str,
    both: &'static str,
) -> Result<Option<String>, LokiSinkError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(LokiSinkError::InvalidAuth(both)),
        (Some(value), None) => Ok(Some(value.to_owned())),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| LokiSinkError::ReadSecret {
                    what,
                    path: path.to_owned(),
                    source,
                })?;
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Err(LokiSinkError::EmptySecret {
                    what,
                    path: path.to_owned(),
                });
            }
            Ok(Some(trimmed.to_owned()))
        }
        (None, None) => Ok(None),
    }
}

fn sensitive(value: &str, what: &'static str) -> Result<HeaderValue, LokiSinkError> {
    let mut header =
        HeaderValue::from_str(value).map_err(|_| LokiSinkError::InvalidCredential(what))?;
    header.set_sensitive(true);
    Ok(header)
}

/// Standard base64 with padding (RFC 4648 §4), for the Basic scheme.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use logship_config::schema::Secret;
    use std::io::Write;

    fn auth() -> AuthConfig {
        AuthConfig {
            user: None,
            password: None,
            password_file: None,
            token: None,
            token_file: None,
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn basic_from_inline_and_bearer_from_file() {
        let mut a = auth();
        a.user = Some("Aladdin".into());
        a.password = Some(Secret::new("open sesame"));
        let c = Credentials::from_config(&a).unwrap().unwrap();
        assert_eq!(c.header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(c.header().is_sensitive());
        let echoed = "authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ== (Aladdin:open sesame)";
        assert_eq!(
            c.redactor().redact(echoed),
            "authorization: Basic *** (***)"
        );

        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "  s3cr3t-token  ").unwrap();
        let mut b = auth();
        b.token_file = Some(file.path().to_owned());
        let c = Credentials::from_config(&b).unwrap().unwrap();
        assert_eq!(c.header(), "Bearer s3cr3t-token");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn contradictions_and_bad_files_are_typed_errors_without_secrets() {
        let mut a = auth();
        a.user = Some("u".into());
        a.password = Some(Secret::new("hunter2"));
        a.token = Some(Secret::new("tok-hunter2"));
        let e = Credentials::from_config(&a).unwrap_err();
        assert!(matches!(e, LokiSinkError::InvalidAuth(_)));
        assert!(!e.to_string().contains("hunter2"));

        let mut b = auth();
        b.user = Some("u".into());
        assert!(Credentials::from_config(&b).is_err());

        let mut c = auth();
        c.token_file = Some("/nonexistent/logship-token".into());
        let e = Credentials::from_config(&c).unwrap_err();
        assert!(matches!(e, LokiSinkError::ReadSecret { .. }), "{e}");

        let empty = tempfile::NamedTempFile::new().unwrap();
        let mut d = auth();
        d.token_file = Some(empty.path().to_owned());
        assert!(matches!(
            Credentials::from_config(&d),
            Err(LokiSinkError::EmptySecret { .. })
        ));

        let mut e = auth();
        e.token = Some(Secret::new("line\nbreak-hunter2"));
        let err = Credentials::from_config(&e).unwrap_err();
        assert!(matches!(err, LokiSinkError::InvalidCredential(_)));
        assert!(!format!("{err} {err:?}").contains("hunter2"));

        assert!(Credentials::from_config(&auth()).unwrap().is_none());
    }
}
