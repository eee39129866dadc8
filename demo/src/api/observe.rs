//! Per-request observation: a server span continuing the caller's trace, one access log line,
//! and the `http_*` metrics with the trace as exemplar.
//!
//! Scrapes, health checks and profiles are counted but not traced: a trace every few seconds
//! per Prometheus target would bury the traces people look for.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, field};

use crate::metrics::{HttpLabels, Metrics, RouteLabels, current_exemplar};
use crate::telemetry::propagation::{context_from_headers, set_parent};

/// Routes that are measured but never traced or logged.
pub fn is_operational(route: &str) -> bool {
    route == "/metrics" || route == "/healthz" || route.starts_with("/debug/")
}

/// The middleware; install with `axum::middleware::from_fn_with_state(metrics, observe)`.
pub async fn observe(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    metrics.http_in_flight.inc();
    let started = Instant::now();
    let (response, exemplar) = if is_operational(&route) {
        (next.run(req).await, None)
    } else {
        let span = tracing::info_span!(
            "http.request",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = field::Empty,
            http.request.method = %method,
            http.route = %route,
            url.path = %req.uri().path(),
            http.response.status_code = field::Empty,
            order_id = field::Empty,
        );
        set_parent(&span, context_from_headers(req.headers()));
        let response = next.run(req).instrument(span.clone()).await;
        let status = response.status().as_u16();
        span.record("http.response.status_code", status);
        if status >= 500 {
            span.record("otel.status_code", "ERROR");
        }
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        span.in_scope(|| match status {
            500.. => tracing::error!(method, route, status, duration_ms, "request handled"),
            400..=499 => tracing::warn!(method, route, status, duration_ms, "request handled"),
            _ => tracing::info!(method, route, status, duration_ms, "request handled"),
        });
        let exemplar = span.in_scope(current_exemplar);
        (response, exemplar)
    };
    metrics.http_in_flight.dec();
    let status = response.status().as_u16().to_string();
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    metrics
        .http_duration
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64(), exemplar, None);
    response
}
