//! The logship demo: a small order-processing system instrumented the way good teams instrument
//! services, so that logs, traces and metrics join up in Grafana.
//!
//! Two services share this library:
//! - **order-api** (`src/bin/order_api.rs`): accepts orders over HTTP, stores each order and an
//!   outbox row in one transaction, and runs the outbox relay that publishes jobs to the queue.
//! - **order-worker** (`src/bin/order_worker.rs`): consumes jobs, charges a fake payment provider
//!   and settles the order, recording the message in an inbox table in the same transaction so
//!   a redelivered job changes nothing.
//!
//! Every line they write is JSON on stdout with the OpenTelemetry `trace_id` and `span_id` of
//! the span it was written in ([`telemetry`]); spans go out over OTLP/HTTP; `/metrics` serves
//! OpenMetrics with trace exemplars ([`metrics`]); `/debug/pprof/profile` serves a CPU profile
//! ([`profiling`]). The `demo` binary (`src/main.rs`) runs the whole thing with `logship`
//! tailing the services' logs.

pub mod api;
pub mod db;
pub mod env;
pub mod inbox;
pub mod metrics;
pub mod ops;
pub mod outbox;
pub mod payment;
pub mod profiling;
pub mod queue;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod worker;

/// Milliseconds since the Unix epoch: the demo stores every time as a plain integer so that one
/// schema works on both PostgreSQL and SQLite.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
