//! The demo's whole path with real PostgreSQL and Redis: orders posted to order-api end paid or
//! failed; every line the API and the worker wrote about them reached the Loki receiver through
//! logship (running the demo's own `demo/logship-loki.toml`) with `service` and `level` labels
//! and `trace_id` metadata; and that trace id is the one whose spans, from both services,
//! reached the OTLP receiver.

mod demo_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use demo_support::{Postgres, Redis, Service, post_orders, wait_settled};
use logship_tests::harness::{Agent, AgentOptions, free_port, serial, wait_until, workspace_root};
use logship_tests::loki::LokiReceiver;
use logship_tests::otlp::{OtlpReceiver, STATUS_ERROR, kind};

/// `demo/logship-loki.toml` with its telemetry address fixed (the harness reads it from the
/// text to wait for `/health`).
fn demo_config(telemetry_port: u16) -> String {
    let text = std::fs::read_to_string(workspace_root().join("demo/logship-loki.toml"))
        .expect("demo/logship-loki.toml");
    let fixed = text.replace(
        "${LOGSHIP_TELEMETRY_ADDR:-127.0.0.1:9598}",
        &format!("127.0.0.1:{telemetry_port}"),
    );
    assert_ne!(fixed, text, "the telemetry address placeholder moved");
    fixed
}

#[test]
fn orders_flow_through_logship_to_loki_and_their_traces_span_both_services() {
    let _serial = serial();
    let Some(pg) = Postgres::start() else { return };
    let Some(redis) = Redis::start() else { return };
    let loki = LokiReceiver::new().expect("loki receiver");
    let otlp = OtlpReceiver::new().expect("otlp receiver");
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    let agent = Agent::start_with(
        &demo_config(free_port()),
        dir.path(),
        AgentOptions {
            env: vec![
                (
                    "DEMO_RUN_DIR".into(),
                    dir.path().to_string_lossy().into_owned(),
                ),
                ("LOKI_URL".into(), loki.url()),
            ],
            ..AgentOptions::default()
        },
    );

    let common = vec![
        ("DATABASE_URL", pg.url()),
        ("REDIS_URL", redis.url()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ];
    let mut api = Service::start("order-api", &logs, &common);
    let mut worker_env = common.clone();
    worker_env.extend([
        ("PAYMENT_FAILURE_RATE", "0.5".to_owned()),
        ("PAYMENT_MAX_ATTEMPTS", "2".to_owned()),
        ("PAYMENT_LATENCY_MAX_MS", "40".to_owned()),
        ("PAYMENT_SLOW_RATE", "0".to_owned()),
        ("PAYMENT_BACKOFF_MS", "10".to_owned()),
    ]);
    let mut worker = Service::start("order-worker", &logs, &worker_env);

    let ids = post_orders(&api, 30, "pipeline");
    let (status, body) = api.post_json(
        "/v1/orders",
        &serde_json::json!({"customer_id": "x", "items": []}),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed");

    let statuses = wait_settled(&pg, &ids, Duration::from_secs(90));
    assert!(
        statuses.iter().all(|s| s == "paid" || s == "failed"),
        "{statuses:?}"
    );
    assert!(statuses.iter().any(|s| s == "paid"), "{statuses:?}");
    assert!(statuses.iter().any(|s| s == "failed"), "{statuses:?}");

    // The latency histogram links to traces (exemplars), in OpenMetrics.
    let (_, metrics) = api.get("/metrics").unwrap();
    assert!(
        metrics.contains("http_request_duration_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# {trace_id=\""),
        "no exemplar in:\n{metrics}"
    );
    assert!(metrics.contains("orders_created_total 30"), "{metrics}");

    // Stopping flushes the last spans; then every line they wrote must reach Loki.
    api.stop();
    worker.stop();
    let mut written: Vec<(String, serde_json::Value)> = Vec::new();
    for svc in [&api, &worker] {
        for line in svc.log().lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} wrote a non-JSON line ({e}): {line}", svc.name));
            written.push((line.to_owned(), v));
        }
    }
    let arrived = wait_until(Duration::from_secs(30), || {
        let got: BTreeSet<Vec<u8>> = loki.entries().into_iter().map(|e| e.line).collect();
        written.iter().all(|(l, _)| got.contains(l.as_bytes()))
    });
    let entries = loki.entries();
    let by_line: HashMap<&[u8], _> = entries.iter().map(|e| (e.line.as_slice(), e)).collect();
    assert!(
        arrived,
        "{} of {} lines reached Loki; agent log:\n{}",
        written
            .iter()
            .filter(|(l, _)| by_line.contains_key(l.as_bytes()))
            .count(),
        written.len(),
        agent.log()
    );

    // Every line of every order: labels from the line, trace id as metadata; one trace per
    // order across both services.
    let mut traces: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (line, v) in &written {
        let e = by_line[line.as_bytes()];
        assert_eq!(e.label("service"), v["service"].as_str(), "{line}");
        assert_eq!(e.label("level"), v["level"].as_str(), "{line}");
        if let Some(t) = v["trace_id"].as_str() {
            assert_eq!(
                e.metadata.get("trace_id").map(String::as_str),
                Some(t),
                "{line}"
            );
            assert_eq!(
                e.metadata.get("span_id").map(String::as_str),
                v["span_id"].as_str()
            );
        }
        if let Some(order) = v["order_id"].as_str() {
            let t = v["trace_id"]
                .as_str()
                .unwrap_or_else(|| panic!("a line about an order has no trace_id: {line}"));
            traces
                .entry(order.to_owned())
                .or_default()
                .entry(v["service"].as_str().unwrap_or("").to_owned())
                .or_default()
                .insert(t.to_owned());
        }
    }
    for id in &ids {
        let per_service = traces
            .get(id)
            .unwrap_or_else(|| panic!("no line about order {id}"));
        let api_traces = per_service.get("order-api").cloned().unwrap_or_default();
        let worker_traces = per_service.get("order-worker").cloned().unwrap_or_default();
        assert_eq!(api_traces.len(), 1, "order {id}: API traces {api_traces:?}");
        assert_eq!(
            api_traces, worker_traces,
            "order {id}: one trace across both services"
        );
        let trace = api_traces.iter().next().unwrap();

        let complete = otlp.wait_until(Duration::from_secs(20), |spans| {
            let of = |svc: &str| {
                spans
                    .iter()
                    .any(|s| &s.trace_id == trace && s.service == svc)
            };
            of("order-api") && of("order-worker")
        });
        assert!(
            complete,
            "order {id}: spans of trace {trace} from both services"
        );
        let spans = otlp.trace(trace);
        let has = |svc: &str, k: i32, name: &str| {
            spans
                .iter()
                .any(|s| s.service == svc && s.kind == k && s.name == name)
        };
        assert!(
            has("order-api", kind::SERVER, "POST /v1/orders"),
            "{spans:#?}"
        );
        assert!(
            has("order-api", kind::CLIENT, "INSERT orders"),
            "{spans:#?}"
        );
        assert!(
            has("order-api", kind::PRODUCER, "publish order.created"),
            "{spans:#?}"
        );
        assert!(
            has("order-worker", kind::CONSUMER, "process order.created"),
            "{spans:#?}"
        );
        assert!(
            has("order-worker", kind::CLIENT, "POST /v1/charges"),
            "{spans:#?}"
        );
        assert!(
            has("order-worker", kind::CLIENT, "UPDATE orders"),
            "{spans:#?}"
        );
        // The worker's span hangs under the API's publish span: one tree, not two roots.
        let roots: Vec<_> = spans
            .iter()
            .filter(|s| s.parent_span_id.is_empty())
            .collect();
        assert_eq!(roots.len(), 1, "order {id}: one root span, got {roots:#?}");
        let statement = spans.iter().find(|s| s.name == "INSERT orders").unwrap();
        assert_eq!(statement.attr("db.system.name"), Some("postgresql"));

        let status = &statuses[ids.iter().position(|x| x == id).unwrap()];
        let failed_payment = spans
            .iter()
            .any(|s| s.name == "POST /v1/charges" && s.status_code == STATUS_ERROR);
        if status == "failed" {
            assert!(
                failed_payment,
                "order {id} failed: its payment spans show the error"
            );
            let job = spans
                .iter()
                .find(|s| s.name == "process order.created")
                .unwrap();
            assert_eq!(
                job.status_code, STATUS_ERROR,
                "a failed order's job span is an error"
            );
        }
    }
    drop(agent);
}
