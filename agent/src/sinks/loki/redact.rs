//! Removing the sink's own secrets from what Loki (or a proxy in front of it) says back.
//!
//! Some gateways echo the request's headers in an error body, so an answer may hold the
//! `Authorization` value logship sent. Every answer body is passed through a [`Redactor`]
//! before anything else sees it (logs, metrics, `/ready` problems), so no later change can
//! forget to. The redactor knows every form in which a configured secret went out: the
//! token, the password, `user:password`, its base64, and each of those as JSON (`\/`, `\"`)
//! and percent encoding would write them.

use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// Replaces every known form of the configured secrets with [`REDACTED`].
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for these secret texts (each is also matched in its escaped forms).
    /// Empty texts are ignored.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            for form in [
                secret.to_owned(),
                json_escaped(secret),
                percent_encoded(secret),
            ] {
                if !needles.contains(&form) {
                    needles.push(form);
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `text` with every secret replaced.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), REDACTED));
            }
        }
        out
    }
}

/// How a JSON encoder may write `s` inside a string (Go's escapes `/` only in HTML mode, but
/// some do; `"` and `\` always).
fn json_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out
}

/// `s` with everything but unreserved characters (RFC 3986) percent-encoded.
fn percent_encoded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_replaced() {
        let r = Redactor::new(["p/ss\"w:rd", "c2VjcmV0"]);
        let body = r#"{"headers":{"authorization":"Basic c2VjcmV0"},"pw":"p\/ss\"w:rd","q":"p%2Fss%22w%3Ard","raw":p/ss"w:rd}"#;
        let out = r.redact(body);
        for leaked in ["c2VjcmV0", "p\\/ss", "p%2Fss", "p/ss"] {
            assert!(!out.contains(leaked), "{leaked} in {out}");
        }
        assert_eq!(out.matches(REDACTED).count(), 4, "{out}");
    }

    #[test]
    fn longer_secrets_go_first_and_nothing_else_changes() {
        let r = Redactor::new(["abc", "user:abc"]);
        assert_eq!(r.redact("x user:abc y abc"), "x *** y ***");
        assert!(matches!(r.redact("clean"), Cow::Borrowed("clean")));
        assert_eq!(Redactor::new([""]).redact("x"), "x");
        assert!(!format!("{r:?}").contains("abc"));
    }
}
