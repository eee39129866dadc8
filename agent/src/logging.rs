//! The agent's own logs on stderr, level from `LOGSHIP_LOG` (default `info`): readable text
//! when stderr is a terminal, JSON lines otherwise (for a collector);
//! `LOGSHIP_LOG_FORMAT=json|text` decides instead.
//!
//! The default quiets the Kubernetes client's own warnings: its watcher logs every failed
//! retry, while the kubernetes_logs source reports each kind of failure once, with advice.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// `info`, except kube-rs below `error`.
const DEFAULT_FILTER: &str = "info,kube_runtime=error,kube_client=error";

/// Installs the global subscriber. Safe to call once.
pub fn init() {
    let filter =
        EnvFilter::try_from_env("LOGSHIP_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let terminal = std::io::stderr().is_terminal();
    let format = std::env::var("LOGSHIP_LOG_FORMAT").ok();
    let json = match format.as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_ansi(terminal).try_init()
    };
    if let Some(other) = format.filter(|f| f != "json" && f != "text") {
        tracing::warn!(
            value = %other,
            "LOGSHIP_LOG_FORMAT is neither `json` nor `text`; using {}",
            if json { "json" } else { "text" }
        );
    }
}
