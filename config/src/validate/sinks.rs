//! Checks for `[sinks.<id>]`. Their `inputs` are checked with the graph.

use crate::error::ProblemKind;
use crate::report::Issue;
use crate::schema::{AuthConfig, LokiCompression, LokiEncoding, LokiSinkConfig, SinkConfig};

use super::{Checker, extend};

/// Checks one sink.
pub(crate) fn check(c: &mut Checker<'_, '_, '_>, id: &str, sink: &SinkConfig) {
    if let SinkConfig::Loki(loki) = sink {
        check_loki(c, &["sinks", id], loki);
    }
}

fn check_loki(c: &mut Checker<'_, '_, '_>, base: &[&str], l: &LokiSinkConfig) {
    if let Some(why) = endpoint_problem(&l.endpoint) {
        c.error(
            Issue::new(
                ProblemKind::InvalidUrl,
                c.loc.value(&extend(base, "endpoint")),
                format!("`endpoint` must be an http:// or https:// URL: {why}"),
                "not an http(s) URL",
            )
            .with_help("for example `endpoint = \"http://127.0.0.1:3100\"`"),
        );
    }
    if !l.path.starts_with('/') {
        c.error_at_value(
            ProblemKind::InvalidValue,
            &extend(base, "path"),
            "`path` must start with `/`",
            "no leading `/`",
        );
    }
    c.static_labels(&extend(base, "labels"), &l.labels);
    if let Some(tenant) = &l.tenant_id {
        c.non_empty(&extend(base, "tenant_id"), tenant);
    }
    compression(c, base, l);
    if let Some(auth) = &l.auth {
        check_auth(c, &extend(base, "auth"), auth);
    }
    if let Some(tls) = &l.tls {
        let tls_path = extend(base, "tls");
        match (&tls.crt_file, &tls.key_file) {
            (None, Some(_)) => conflict(
                c,
                &extend(&tls_path, "key_file"),
                "`key_file` needs `crt_file` (the client certificate it belongs to)",
            ),
            (Some(_), None) => conflict(
                c,
                &extend(&tls_path, "crt_file"),
                "`crt_file` needs `key_file` (its private key)",
            ),
            _ => {}
        }
        if tls.insecure_skip_verify {
            let span = c.loc.key(&extend(&tls_path, "insecure_skip_verify"));
            c.warn(
                span,
                "TLS certificate verification is disabled; use only for tests",
            );
        }
        if l.endpoint.to_ascii_lowercase().starts_with("http://") {
            let span = c.loc.key(&tls_path);
            c.warn(
                span,
                "`tls` is set but `endpoint` is http://, so it is not used",
            );
        }
    }
    let batch = extend(base, "batch");
    c.positive(&extend(&batch, "max_bytes"), l.batch.max_bytes as u64);
    c.positive(&extend(&batch, "max_events"), l.batch.max_events as u64);
    c.positive(&extend(&batch, "timeout_ms"), l.batch.timeout_ms);
    let request = extend(base, "request");
    c.positive(
        &extend(&request, "concurrency"),
        l.request.concurrency as u64,
    );
    c.positive(&extend(&request, "timeout_ms"), l.request.timeout_ms);
    c.positive(
        &extend(&request, "retry_initial_backoff_ms"),
        l.request.retry_initial_backoff_ms,
    );
    if l.request.retry_max_backoff_ms < l.request.retry_initial_backoff_ms {
        c.error_at_value(
            ProblemKind::Conflict,
            &extend(&request, "retry_max_backoff_ms"),
            "`retry_max_backoff_ms` must be at least `retry_initial_backoff_ms`",
            "smaller than the initial backoff",
        );
    }
    c.positive(
        &extend(base, "label_cardinality_limit"),
        l.label_cardinality_limit as u64,
    );
    c.non_empty(
        &extend(base, "cardinality_overflow_value"),
        &l.cardinality_overflow_value,
    );
}

fn compression(c: &mut Checker<'_, '_, '_>, base: &[&str], l: &LokiSinkConfig) {
    let path = extend(base, "compression");
    match (l.encoding, l.compression) {
        (LokiEncoding::Protobuf, Some(LokiCompression::Gzip | LokiCompression::None)) => {
            c.error(
                Issue::new(
                    ProblemKind::Conflict,
                    c.loc.value(&path),
                    "protobuf pushes are always snappy-compressed: with `encoding = \"protobuf\"`, `compression` may only be `snappy`",
                    "not allowed with protobuf",
                )
                .with_help("remove `compression`, or set `encoding = \"json\"`"),
            );
        }
        (LokiEncoding::Json, Some(LokiCompression::Snappy)) => {
            c.error(
                Issue::new(
                    ProblemKind::Conflict,
                    c.loc.value(&path),
                    "JSON pushes take `compression = \"gzip\"` or `\"none\"`, not `snappy`",
                    "not allowed with json",
                )
                .with_help("use `encoding = \"protobuf\"` for snappy"),
            );
        }
        _ => {}
    }
}

fn check_auth(c: &mut Checker<'_, '_, '_>, path: &[&str], a: &AuthConfig) {
    let basic = a.user.is_some() || a.password.is_some() || a.password_file.is_some();
    let bearer = a.token.is_some() || a.token_file.is_some();
    if basic && bearer {
        conflict(
            c,
            path,
            "`auth` has both basic (`user`, `password`) and bearer (`token`) settings; choose one",
        );
        return;
    }
    if !basic && !bearer {
        c.error_at_value(
            ProblemKind::MissingField,
            path,
            "`auth` needs `user` with `password` (or `password_file`), or `token` (or `token_file`)",
            "empty auth",
        );
        return;
    }
    let has_password = a.password.is_some() || a.password_file.is_some();
    match &a.user {
        Some(user) if user.is_empty() => c.non_empty(&extend(path, "user"), user),
        Some(_) if !has_password => conflict(
            c,
            &extend(path, "user"),
            "`user` needs `password` or `password_file`",
        ),
        None if has_password => {
            let key = if a.password.is_some() {
                "password"
            } else {
                "password_file"
            };
            conflict(c, &extend(path, key), "a password needs `user`");
        }
        _ => {}
    }
    if a.password.is_some() && a.password_file.is_some() {
        conflict(
            c,
            &extend(path, "password_file"),
            "set `password` or `password_file`, not both",
        );
    }
    if a.token.is_some() && a.token_file.is_some() {
        conflict(
            c,
            &extend(path, "token_file"),
            "set `token` or `token_file`, not both",
        );
    }
}

/// A conflict reported at the key of `path`.
fn conflict(c: &mut Checker<'_, '_, '_>, path: &[&str], message: &str) {
    let span = c.loc.key(path);
    c.error(Issue::new(
        ProblemKind::Conflict,
        span,
        message,
        "conflicting option",
    ));
}

/// Why `endpoint` is not a usable http(s) URL; `None` when it is. Never quotes the URL,
/// which could carry credentials.
pub(crate) fn endpoint_problem(endpoint: &str) -> Option<&'static str> {
    let lower = endpoint.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &endpoint[7..]
    } else if lower.starts_with("https://") {
        &endpoint[8..]
    } else {
        return Some("it must start with `http://` or `https://`");
    };
    if endpoint.chars().any(char::is_whitespace) {
        return Some("it contains whitespace");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Some("credentials in the URL would be logged; use `auth` instead");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return Some("an IPv6 host must be closed by `]`"),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Some("it has no host");
    }
    if let Some(port) = port
        && port.parse::<u16>().is_err()
    {
        return Some("the port is not a number from 0 to 65535");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::endpoint_problem;

    #[test]
    fn endpoints_must_be_http_urls() {
        for ok in [
            "http://127.0.0.1:3100",
            "https://loki.example.com",
            "HTTP://loki:3100/",
            "http://[::1]:3100",
            "https://loki/prefix?x=1",
        ] {
            assert_eq!(endpoint_problem(ok), None, "{ok}");
        }
        for bad in [
            "127.0.0.1:3100",
            "ftp://x",
            "http://",
            "http://:3100",
            "http://host:99999",
            "http://host:abc",
            "http://u:p@host",
            "http://ho st",
            "http://[::1",
        ] {
            assert!(endpoint_problem(bad).is_some(), "{bad}");
        }
    }
}
