//! Every metric the agent exports, registered once in one [`Metrics`] value.
//!
//! Components resolve their label values when they are built ([`Metrics::component`]), so the
//! hot path only increments atomics.

use std::sync::Arc;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::pipeline::LedgerWatch;

/// The agent's metric families. Cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    /// Lines a component took in.
    pub received_events: IntCounterVec,
    /// Line bytes a component took in.
    pub received_bytes: IntCounterVec,
    /// Lines a component passed on (sinks: delivered).
    pub sent_events: IntCounterVec,
    /// Line bytes a component passed on (sinks: delivered, uncompressed).
    pub sent_bytes: IntCounterVec,
    /// Lines given up on, by reason (`filtered`, `loki_rejected`, ...).
    pub discarded_events: IntCounterVec,
    /// Lines cut to `max_line_bytes`.
    pub truncated_lines: IntCounterVec,
    /// Lines that were not valid for their transform's parser and shipped raw.
    pub parse_errors: IntCounterVec,
    /// Lines whose timestamp field is present but does not parse; they keep the read time.
    pub timestamp_errors: IntCounterVec,
    /// Lines whose container envelope (docker json-file, CRI) did not decode; shipped as read.
    pub decode_errors: IntCounterVec,
    /// Config reloads by result (`success`, `error`, `unchanged`).
    pub config_reloads: IntCounterVec,
    /// Loki push requests by HTTP status (or `error` for no answer).
    pub loki_requests: IntCounterVec,
    /// Loki push request latency.
    pub loki_request_duration: HistogramVec,
    /// Retried Loki pushes by reason.
    pub loki_retries: IntCounterVec,
    /// Push requests in flight.
    pub loki_inflight: IntGaugeVec,
    /// Compressed bytes sent to Loki.
    pub loki_sent_bytes: IntCounterVec,
    /// The rate the sink paces its pushes to after Loki's 429s (0 = not limiting).
    pub loki_rate_limit: IntGaugeVec,
    /// Entries changed so that Loki accepts them, by reason.
    pub loki_entries_repaired: IntCounterVec,
    /// Labels whose value collapsed into the overflow value.
    pub label_overflow: IntCounterVec,
    /// Bytes read from a source but not yet acknowledged by every sink.
    pub checkpoint_lag_bytes: IntGaugeVec,
    /// Checkpoint files written.
    pub checkpoints_written: IntCounter,
    /// Checkpoint writes that failed (disk full, permissions).
    pub checkpoint_errors: IntCounter,
    /// Files being tailed (open).
    pub files_watched: IntGaugeVec,
    /// Files found but not open because `open_files_limit` is reached.
    pub files_waiting: IntGaugeVec,
    /// Unread bytes of files deleted while open (reachable only through the descriptor).
    pub files_deleted_unread_bytes: IntGaugeVec,
    /// Walks of the globs, by reason (`start`, `timer`, `overflow`).
    pub file_rescans: IntCounterVec,
    /// Files that could not be opened or read.
    pub file_errors: IntCounterVec,
    /// Containers being followed.
    pub containers_watched: IntGaugeVec,
    /// Lines read per container.
    pub container_lines: IntCounterVec,
    /// Reconnections to the Docker daemon.
    pub docker_reconnects: IntCounterVec,
    /// Docker API calls that failed.
    pub docker_api_errors: IntCounterVec,
    /// Bytes of open files not read yet: how far each file source is behind.
    pub source_unread_bytes: IntGaugeVec,
    /// Unix time of each Loki sink's last accepted push.
    pub loki_last_success: IntGaugeVec,
    /// Kubernetes API calls (list, watch) that failed, by reason.
    pub kubernetes_api_errors: IntCounterVec,
    /// Pods of this node in the kubernetes_logs source's metadata cache.
    pub kubernetes_pods_cached: IntGaugeVec,
    /// Components that stopped with an error (a source that failed, a task that panicked).
    pub component_errors: IntCounterVec,
    /// Chunks a source emitted after a delivery failure froze its checkpoint; not tracked.
    pub untracked_chunks: IntCounterVec,
    /// 1 while the agent is ready (every sink can deliver), else 0.
    pub ready: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    g
}

impl Metrics {
    /// Registers every family in a fresh registry. Panics only on a programming error (a
    /// malformed or duplicate metric name), never on input.
    pub fn new() -> Self {
        let r = Registry::new();
        let c = |name: &str, help: &str, labels: &[&str]| counter(&r, name, help, labels);
        let g = |name: &str, help: &str, labels: &[&str]| gauge(&r, name, help, labels);
        let comp = &["component"];
        let loki_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "logship_loki_request_duration_seconds",
                "Latency of Loki push requests.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            comp,
        )
        .unwrap_or_else(|e| panic!("histogram is malformed: {e}"));
        r.register(Box::new(loki_request_duration.clone()))
            .unwrap_or_else(|e| panic!("histogram registered twice: {e}"));
        let checkpoints_written = IntCounter::new(
            "logship_checkpoints_written_total",
            "Checkpoint files written.",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let checkpoint_errors = IntCounter::new(
            "logship_checkpoint_errors_total",
            "Checkpoint writes that failed.",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ready = IntGauge::new("logship_ready", "1 while every sink can deliver, else 0.")
            .unwrap_or_else(|e| panic!("{e}"));
        let build_info = IntGaugeVec::new(
            Opts::new(
                "logship_build_info",
                "Always 1; the version of the running agent is a label.",
            ),
            &["version"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for m in [
            Box::new(checkpoints_written.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(checkpoint_errors.clone()),
            Box::new(ready.clone()),
            Box::new(build_info),
            // process_resident_memory_bytes, process_cpu_seconds_total, process_open_fds, ...
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            r.register(m).unwrap_or_else(|e| panic!("{e}"));
        }
        Self {
            received_events: c(
                "logship_component_received_events_total",
                "Lines a component took in.",
                comp,
            ),
            received_bytes: c(
                "logship_component_received_bytes_total",
                "Line bytes a component took in.",
                comp,
            ),
            sent_events: c(
                "logship_component_sent_events_total",
                "Lines a component passed on; for sinks, lines delivered.",
                comp,
            ),
            sent_bytes: c(
                "logship_component_sent_bytes_total",
                "Line bytes a component passed on; for sinks, delivered (uncompressed).",
                comp,
            ),
            discarded_events: c(
                "logship_component_discarded_events_total",
                "Lines given up on, by reason.",
                &["component", "reason"],
            ),
            truncated_lines: c(
                "logship_source_truncated_lines_total",
                "Lines cut to max_line_bytes.",
                comp,
            ),
            parse_errors: c(
                "logship_transform_parse_errors_total",
                "Lines that did not parse and shipped unchanged.",
                comp,
            ),
            timestamp_errors: c(
                "logship_transform_timestamp_errors_total",
                "Lines whose timestamp field did not parse; they keep the time they were read.",
                comp,
            ),
            decode_errors: c(
                "logship_source_decode_errors_total",
                "Lines whose container log envelope (docker json-file, CRI) did not decode; shipped as read.",
                comp,
            ),
            config_reloads: c(
                "logship_config_reloads_total",
                "Config reloads (SIGHUP, --watch-config) by result: success, error, unchanged.",
                &["result"],
            ),
            loki_requests: c(
                "logship_loki_requests_total",
                "Loki push requests by HTTP status, or 'error' when there was no answer.",
                &["component", "status"],
            ),
            loki_request_duration,
            loki_retries: c(
                "logship_loki_retries_total",
                "Loki pushes retried, by reason.",
                &["component", "reason"],
            ),
            loki_inflight: g(
                "logship_loki_inflight_requests",
                "Loki push requests in flight.",
                comp,
            ),
            loki_rate_limit: g(
                "logship_loki_rate_limit_bytes_per_second",
                "Line and metadata bytes per second the sink paces its pushes to, learnt from Loki's 429s; 0 while not limiting.",
                comp,
            ),
            loki_entries_repaired: c(
                "logship_loki_entries_repaired_total",
                "Entries changed before sending so that Loki's limits accept them, by reason.",
                &["component", "reason"],
            ),
            loki_sent_bytes: c(
                "logship_loki_sent_bytes_total",
                "Request body bytes (compressed) sent to Loki.",
                comp,
            ),
            label_overflow: c(
                "logship_label_cardinality_overflow_total",
                "Lines whose label value collapsed into the overflow value.",
                &["component", "label"],
            ),
            checkpoint_lag_bytes: g(
                "logship_checkpoint_lag_bytes",
                "Bytes read from a source but not yet acknowledged by its sinks.",
                comp,
            ),
            checkpoints_written,
            checkpoint_errors,
            files_watched: g("logship_files_watched", "Files being tailed (open).", comp),
            files_waiting: g(
                "logship_files_waiting",
                "Files found but not open because open_files_limit is reached.",
                comp,
            ),
            files_deleted_unread_bytes: g(
                "logship_files_deleted_unread_bytes",
                "Unread bytes of files deleted while open; kept readable through their descriptor.",
                comp,
            ),
            file_rescans: c(
                "logship_file_rescans_total",
                "Walks of a file source's globs, by reason: start, timer, overflow (inotify lost events).",
                &["component", "reason"],
            ),
            file_errors: c(
                "logship_file_errors_total",
                "Files that could not be opened or read.",
                comp,
            ),
            containers_watched: g(
                "logship_containers_watched",
                "Containers being followed.",
                comp,
            ),
            container_lines: c(
                "logship_container_lines_total",
                "Lines read per container.",
                &["component", "container"],
            ),
            docker_reconnects: c(
                "logship_docker_reconnects_total",
                "Reconnections to the Docker daemon.",
                comp,
            ),
            docker_api_errors: c(
                "logship_docker_api_errors_total",
                "Docker API calls that failed.",
                comp,
            ),
            source_unread_bytes: g(
                "logship_source_unread_bytes",
                "Bytes of a file source's open files not read yet (sizes minus read offsets): how far it is behind.",
                comp,
            ),
            loki_last_success: g(
                "logship_loki_last_success_timestamp_seconds",
                "Unix time of the sink's last push that Loki accepted.",
                comp,
            ),
            kubernetes_api_errors: c(
                "logship_kubernetes_api_errors_total",
                "Kubernetes API calls that failed, by reason: forbidden, unauthorized, unreachable, gone, other. Lines still ship with their path labels.",
                &["component", "reason"],
            ),
            kubernetes_pods_cached: g(
                "logship_kubernetes_pods_cached",
                "Pods of this node in the pod-metadata cache (deleted ones are kept a while for their remaining lines).",
                comp,
            ),
            component_errors: c(
                "logship_component_errors_total",
                "Components that stopped with an error.",
                comp,
            ),
            untracked_chunks: c(
                "logship_checkpoint_untracked_chunks_total",
                "Chunks emitted after a delivery failure froze their reader's checkpoint; they are read again after a restart.",
                comp,
            ),
            ready,
            registry: r,
        }
    }

    /// Pre-resolved counters for one component.
    pub fn component(&self, id: &str) -> ComponentMetrics {
        ComponentMetrics {
            received_events: self.received_events.with_label_values(&[id]),
            received_bytes: self.received_bytes.with_label_values(&[id]),
            sent_events: self.sent_events.with_label_values(&[id]),
            sent_bytes: self.sent_bytes.with_label_values(&[id]),
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The acknowledgement watch of component `id`'s ledgers.
    pub fn ledger_watch(&self, id: &Arc<str>) -> LedgerWatch {
        LedgerWatch::new(id.clone(), self.untracked_chunks.with_label_values(&[id]))
    }

    /// A histogram handle for one component's Loki requests.
    pub fn loki_latency(&self, id: &str) -> Histogram {
        self.loki_request_duration.with_label_values(&[id])
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The four counters every component updates, resolved for its id.
#[derive(Clone)]
pub struct ComponentMetrics {
    /// Lines taken in.
    pub received_events: IntCounter,
    /// Line bytes taken in.
    pub received_bytes: IntCounter,
    /// Lines passed on or delivered.
    pub sent_events: IntCounter,
    /// Line bytes passed on or delivered.
    pub sent_bytes: IntCounter,
}
