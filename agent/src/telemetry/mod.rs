//! The agent's own telemetry: Prometheus metrics, readiness, and the HTTP server for both.

mod health;
mod metrics;
mod server;

pub use health::Health;
pub use metrics::{ComponentMetrics, Metrics};
pub use server::serve;
