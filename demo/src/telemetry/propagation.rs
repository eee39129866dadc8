//! W3C `traceparent` in and out: from HTTP headers, into outbox rows and jobs, and back into a
//! span's parent, so that one order is one trace across both services.

use std::collections::HashMap;

use axum::http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of `span`, for storing next to a message it causes.
pub fn traceparent_of(span: &Span) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

/// The remote context a stored `traceparent` describes; an invalid value gives an empty context,
/// so the span it parents starts a new trace rather than failing the job.
pub fn context_from_traceparent(traceparent: Option<&str>) -> Context {
    let mut carrier: HashMap<String, String> = HashMap::new();
    if let Some(tp) = traceparent {
        carrier.insert("traceparent".to_owned(), tp.to_owned());
    }
    TraceContextPropagator::new().extract(&carrier)
}

/// The remote context of an incoming HTTP request (`traceparent`, `tracestate`).
pub fn context_from_headers(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `parent` the parent of `span`. Call before the span is first entered or logged in:
/// afterwards its OpenTelemetry span exists and keeps its own root.
pub fn set_parent(span: &Span, parent: Context) {
    if parent.span().span_context().is_valid() {
        // The only error is "span already started", a programming error that at worst leaves
        // the span as a root; it must not fail a request.
        let _ = span.set_parent(parent);
    }
}

/// The trace id of `span` and whether the trace is sampled (exported).
pub fn trace_id_of(span: &Span) -> Option<(String, bool)> {
    let cx = span.context();
    let s = cx.span();
    let sc = s.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.is_sampled()))
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_traceparent_gives_a_remote_parent() {
        let cx = context_from_traceparent(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid());
        assert!(sc.is_remote());
        assert!(sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn invalid_traceparents_give_no_parent() {
        for tp in [
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let cx = context_from_traceparent(Some(tp));
            assert!(!cx.span().span_context().is_valid(), "{tp}");
        }
        assert!(
            !context_from_traceparent(None)
                .span()
                .span_context()
                .is_valid()
        );
    }

    #[test]
    fn headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
                .parse()
                .unwrap(),
        );
        let cx = context_from_headers(&h);
        assert!(cx.span().span_context().is_valid());
        assert!(!cx.span().span_context().is_sampled());
    }
}
