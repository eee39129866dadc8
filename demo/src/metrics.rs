//! The services' Prometheus metrics, in OpenMetrics text so that histograms carry trace
//! exemplars: Grafana links a slow latency bucket straight to a trace in Tempo.
//!
//! `prometheus-client` is used instead of `prometheus` because only it encodes exemplars.
//! Counters are registered without `_total`: the OpenMetrics encoder appends it.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ops::process_metrics::ProcessCollector;

/// The exemplar attached to a histogram observation: the trace it came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    /// 32 lowercase hex digits, as Tempo and Grafana expect.
    pub trace_id: String,
}

/// `method`, `route` and `status` of an HTTP request. `route` is the matched route template
/// (`/v1/orders/{id}`), never the raw path, so the label stays low-cardinality.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The route template, or `unmatched`.
    pub route: String,
    /// The status code.
    pub status: String,
}

/// `method` and `route`, for the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The route template, or `unmatched`.
    pub route: String,
}

/// How a job ended: `paid`, `failed`, `duplicate`, `error` (will be redelivered) or
/// `dead_letter` (given up after too many deliveries).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outcome.
    pub outcome: String,
}

/// The statement a database latency belongs to, such as `INSERT orders`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// The operation name, also the SQL span's name.
    pub operation: String,
}

/// The result of one call to the payment provider: `ok` or `error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The result.
    pub result: String,
}

type ExemplarHistogram = HistogramWithExemplars<TraceExemplar>;

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
    .into_iter()
}

fn new_histogram() -> ExemplarHistogram {
    HistogramWithExemplars::new(latency_buckets())
}

/// Every metric either service exports. Cheap to clone (all handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// `http_requests_total{method,route,status}`.
    pub http_requests: Family<HttpLabels, Counter>,
    /// `http_request_duration_seconds{method,route}`, with trace exemplars.
    pub http_duration: Family<RouteLabels, ExemplarHistogram, fn() -> ExemplarHistogram>,
    /// `http_requests_in_flight`.
    pub http_in_flight: Gauge,
    /// `orders_created_total`.
    pub orders_created: Counter,
    /// `outbox_published_total`: messages the relay handed to the queue.
    pub outbox_published: Counter,
    /// `worker_jobs_processed_total{outcome}`.
    pub jobs_processed: Family<OutcomeLabels, Counter>,
    /// `worker_job_duration_seconds`, with trace exemplars.
    pub job_duration: ExemplarHistogram,
    /// `payment_attempts_total{result}`.
    pub payment_attempts: Family<ResultLabels, Counter>,
    /// `db_query_duration_seconds{operation}`, with trace exemplars.
    pub db_duration: Family<QueryLabels, ExemplarHistogram, fn() -> ExemplarHistogram>,
}

impl Metrics {
    /// Registers every family, plus the process collector (memory, threads, open files, CPU).
    pub fn new() -> Self {
        let mut r = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        r.register(
            "http_requests",
            "HTTP requests served, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration = Family::new_with_constructor(new_histogram as fn() -> _);
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency, by method and route template",
            http_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        r.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            http_in_flight.clone(),
        );
        let orders_created = Counter::default();
        r.register(
            "orders_created",
            "Orders accepted and stored",
            orders_created.clone(),
        );
        let outbox_published = Counter::default();
        r.register(
            "outbox_published",
            "Outbox messages published to the job queue",
            outbox_published.clone(),
        );
        let jobs_processed = Family::<OutcomeLabels, Counter>::default();
        r.register(
            "worker_jobs_processed",
            "Jobs handled by the worker, by outcome",
            jobs_processed.clone(),
        );
        let job_duration = new_histogram();
        r.register(
            "worker_job_duration_seconds",
            "Time from taking a job to settling its order",
            job_duration.clone(),
        );
        let payment_attempts = Family::<ResultLabels, Counter>::default();
        r.register(
            "payment_attempts",
            "Calls to the payment provider, by result",
            payment_attempts.clone(),
        );
        let db_duration = Family::new_with_constructor(new_histogram as fn() -> _);
        r.register(
            "db_query_duration_seconds",
            "Database statement latency, by operation",
            db_duration.clone(),
        );
        r.register_collector(Box::new(ProcessCollector::new()));
        Self {
            registry: Arc::new(r),
            http_requests,
            http_duration,
            http_in_flight,
            orders_created,
            outbox_published,
            jobs_processed,
            job_duration,
            payment_attempts,
            db_duration,
        }
    }

    /// Counts one finished job.
    pub fn job_outcome(&self, outcome: &str) {
        self.jobs_processed
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records a statement's latency, with the current trace as exemplar when it is sampled.
    pub fn observe_query(
        &self,
        operation: &str,
        elapsed: Duration,
        exemplar: Option<TraceExemplar>,
    ) {
        self.db_duration
            .get_or_create(&QueryLabels {
                operation: operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64(), exemplar, None);
    }

    /// The registry in OpenMetrics text (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a collector.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The exemplar for the current span's trace, when that trace is sampled (an exemplar pointing
/// at a trace that was never exported would be a dead link).
pub fn current_exemplar() -> Option<TraceExemplar> {
    crate::telemetry::propagation::trace_id_of(&tracing::Span::current())
        .filter(|(_, sampled)| *sampled)
        .map(|(trace_id, _)| TraceExemplar { trace_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_expected_names_and_exemplars() {
        let m = Metrics::new();
        m.http_requests
            .get_or_create(&HttpLabels {
                method: "POST".into(),
                route: "/v1/orders".into(),
                status: "202".into(),
            })
            .inc();
        m.http_duration
            .get_or_create(&RouteLabels {
                method: "POST".into(),
                route: "/v1/orders".into(),
            })
            .observe(
                0.3,
                Some(TraceExemplar {
                    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                }),
                None,
            );
        m.orders_created.inc();
        m.job_outcome("paid");
        let text = m.render();
        for needle in [
            r#"http_requests_total{method="POST",route="/v1/orders",status="202"} 1"#,
            "http_request_duration_seconds_bucket{",
            r#"# {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.3"#,
            "http_requests_in_flight 0",
            "orders_created_total 1",
            r#"worker_jobs_processed_total{outcome="paid"} 1"#,
            "process_resident_memory_bytes ",
            "process_threads ",
            "process_open_fds ",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
