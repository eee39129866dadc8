//! What logship printed: the console sink's JSON events, tallied (lines per `service` label,
//! trace ids per order) and shown in a compact form.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;

/// One event as the console sink prints it with `format = "json"`.
#[derive(Debug, Deserialize)]
struct ConsoleEvent {
    #[serde(default)]
    timestamp: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    line: String,
}

/// The fields of a service's log line the feed looks at.
#[derive(Debug, Default, Deserialize)]
struct ServiceLine {
    #[serde(default)]
    msg: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    trace_id: Option<String>,
}

/// Trace ids seen for one order. The order's trace is the one of the request that created it
/// (its `order accepted` line); reading the order back later is a request, and a trace, of its
/// own.
#[derive(Debug, Default, Clone)]
pub struct OrderTraces {
    /// The trace of the creating request.
    pub created: Option<String>,
    /// API lines per trace id.
    pub api: BTreeMap<String, u64>,
    /// Trace ids on the worker's lines.
    pub worker: BTreeSet<String>,
    /// Worker lines.
    pub worker_lines: u64,
}

/// An order whose API and worker lines carry one and the same trace id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SharedTrace {
    /// The order.
    pub order_id: String,
    /// Its trace.
    pub trace_id: String,
    /// API lines for it.
    pub api_lines: u64,
    /// Worker lines for it.
    pub worker_lines: u64,
}

/// Running tallies of the feed.
#[derive(Debug, Default)]
pub struct Feed {
    /// Lines per `service` label (`-` when the line had none).
    pub shipped: BTreeMap<String, u64>,
    /// Lines whose structured metadata carried a `trace_id`.
    pub with_trace_metadata: u64,
    /// Lines whose metadata `trace_id` differed from the one in the line (must stay 0).
    pub trace_mismatches: u64,
    orders: HashMap<String, OrderTraces>,
}

/// The API's and the worker's `service` label values.
pub const API: &str = "order-api";
/// See [`API`].
pub const WORKER: &str = "order-worker";

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

impl Feed {
    /// Takes one line of logship's output; returns the compact rendering to show, or `None`
    /// for output that is not an event.
    pub fn ingest(&mut self, raw: &str) -> Option<String> {
        let event: ConsoleEvent = serde_json::from_str(raw).ok()?;
        let service = event
            .labels
            .get("service")
            .cloned()
            .unwrap_or_else(|| "-".to_owned());
        let level = event.labels.get("level").map(String::as_str).unwrap_or("-");
        *self.shipped.entry(service.clone()).or_default() += 1;
        let meta_trace = event.metadata.get("trace_id");
        if meta_trace.is_some() {
            self.with_trace_metadata += 1;
        }
        let time = event.timestamp.get(11..23).unwrap_or("");
        let Ok(line) = serde_json::from_str::<ServiceLine>(&event.line) else {
            return Some(format!(
                "{time} {service:<12} {level:<5} {}",
                event.line.trim_end()
            ));
        };
        if let (Some(m), Some(l)) = (meta_trace, line.trace_id.as_ref())
            && m != l
        {
            self.trace_mismatches += 1;
        }
        if let (Some(order), Some(trace)) = (&line.order_id, meta_trace) {
            let o = self.orders.entry(order.clone()).or_default();
            match service.as_str() {
                API => {
                    *o.api.entry(trace.clone()).or_default() += 1;
                    if line.msg == "order accepted" {
                        o.created = Some(trace.clone());
                    }
                }
                WORKER => {
                    o.worker.insert(trace.clone());
                    o.worker_lines += 1;
                }
                _ => {}
            }
        }
        let mut out = format!("{time} {service:<12} {level:<5} {}", line.msg);
        if let Some(o) = &line.order_id {
            out.push_str(&format!("  order={}", short(o)));
        }
        if let Some(t) = meta_trace {
            out.push_str(&format!("  trace={}", short(t)));
        }
        Some(out)
    }

    /// Up to `n` of `orders` whose creating request and every worker line share one trace id.
    pub fn shared_traces<'a>(
        &self,
        orders: impl IntoIterator<Item = &'a String>,
        n: usize,
    ) -> Vec<SharedTrace> {
        orders
            .into_iter()
            .filter_map(|id| {
                let o = self.orders.get(id)?;
                let trace = o.created.as_ref()?;
                let one = o.worker.len() == 1 && o.worker.contains(trace);
                one.then(|| SharedTrace {
                    order_id: id.clone(),
                    trace_id: trace.clone(),
                    api_lines: o.api.get(trace).copied().unwrap_or(0),
                    worker_lines: o.worker_lines,
                })
            })
            .take(n)
            .collect()
    }

    /// How many of `orders` have their creating request and worker lines in one trace.
    pub fn orders_with_one_trace<'a>(&self, orders: impl IntoIterator<Item = &'a String>) -> usize {
        self.shared_traces(orders, usize::MAX).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(service: &str, order: &str, trace: &str, msg: &str) -> String {
        let line = serde_json::json!({
            "time": "t", "level": "info", "service": service, "msg": msg,
            "order_id": order, "trace_id": trace, "span_id": "00f067aa0ba902b7"
        })
        .to_string();
        serde_json::json!({
            "timestamp": "2026-01-02T03:04:05.678901234Z",
            "labels": {"service": service, "level": "info"},
            "metadata": {"trace_id": trace, "span_id": "00f067aa0ba902b7"},
            "line": line,
        })
        .to_string()
    }

    #[test]
    fn counts_lines_and_joins_orders_by_trace() {
        let mut f = Feed::default();
        let t = "4bf92f3577b34da6a3ce929d0e0e4736";
        let shown = f.ingest(&event(API, "o-1", t, "order accepted")).unwrap();
        assert_eq!(
            shown,
            "03:04:05.678 order-api    info  order accepted  order=o-1  trace=4bf92f35"
        );
        f.ingest(&event(WORKER, "o-1", t, "order paid"));
        f.ingest(&event(WORKER, "o-1", t, "job received"));
        // A later read of o-1 is a trace of its own and does not break o-1's trace.
        f.ingest(&event(
            API,
            "o-1",
            "33333333333333333333333333333333",
            "request handled",
        ));
        f.ingest(&event(API, "o-2", t, "order accepted"));
        f.ingest(&event(
            WORKER,
            "o-2",
            "11111111111111111111111111111111",
            "order paid",
        ));
        assert_eq!(f.shipped[API], 3);
        assert_eq!(f.shipped[WORKER], 3);
        assert_eq!(f.with_trace_metadata, 6);
        let ids = vec!["o-1".to_owned(), "o-2".to_owned()];
        let shared = f.shared_traces(&ids, 5);
        assert_eq!(shared.len(), 1, "o-2's services disagree on the trace");
        assert_eq!(shared[0].order_id, "o-1");
        assert_eq!((shared[0].api_lines, shared[0].worker_lines), (1, 2));
    }

    #[test]
    fn non_events_and_plain_lines() {
        let mut f = Feed::default();
        assert_eq!(f.ingest("not json"), None);
        let plain = serde_json::json!({"labels": {}, "line": "panicked at x"}).to_string();
        assert!(f.ingest(&plain).unwrap().contains("panicked at x"));
        assert_eq!(f.shipped["-"], 1);
    }

    #[test]
    fn metadata_that_disagrees_with_the_line_is_counted() {
        let mut f = Feed::default();
        let mut e: serde_json::Value =
            serde_json::from_str(&event(API, "o", "4bf92f3577b34da6a3ce929d0e0e4736", "m"))
                .unwrap();
        e["metadata"]["trace_id"] = "22222222222222222222222222222222".into();
        f.ingest(&e.to_string());
        assert_eq!(f.trace_mismatches, 1);
    }
}
