//! The agent's own logs: structured JSON on stderr, level from `LOGSHIP_LOG` (default `info`).
//!
//! The default quiets the Kubernetes client's own warnings: its watcher logs every failed
//! retry, while the kubernetes_logs source reports each kind of failure once, with advice.

use tracing_subscriber::EnvFilter;

/// `info`, except kube-rs below `error`.
const DEFAULT_FILTER: &str = "info,kube_runtime=error,kube_client=error";

/// Installs the global subscriber. Safe to call once.
pub fn init() {
    let filter =
        EnvFilter::try_from_env("LOGSHIP_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
