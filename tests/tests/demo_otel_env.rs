//! The standard `OTEL_*` variables work as the specification says, on the same binary:
//! `OTEL_SERVICE_NAME` names the spans and the log lines alike, `OTEL_TRACES_SAMPLER_ARG`
//! sets the ratio of new traces, and sampling is parent-based, so a sampled caller's trace is
//! continued even at ratio 0. Runs on the embedded SQLite database: nothing to install.

mod demo_support;

use std::time::Duration;

use demo_support::{Service, order};
use logship_tests::harness::serial;
use logship_tests::http;
use logship_tests::otlp::{OtlpReceiver, kind};

fn api_with(otlp: &OtlpReceiver, dir: &std::path::Path, extra: &[(&str, &str)]) -> Service {
    let mut env = vec![
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("orders.db").display()),
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Service::start("order-api", &dir.join("logs"), &env)
}

#[test]
fn service_name_from_the_environment_names_spans_and_log_lines() {
    let _serial = serial();
    let otlp = OtlpReceiver::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut api = api_with(
        &otlp,
        dir.path(),
        &[
            ("OTEL_SERVICE_NAME", "checkout-api"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment.name=test",
            ),
        ],
    );
    let (status, body) = api.post_json("/v1/orders", &order("c-otel"));
    assert_eq!(status, 202, "{body}");
    api.stop();
    let line = api
        .json_lines()
        .into_iter()
        .find(|l| l["msg"] == "order accepted")
        .expect("an order accepted line");
    assert_eq!(line["service"], "checkout-api");
    let trace = line["trace_id"].as_str().unwrap().to_owned();
    assert!(otlp.wait_until(Duration::from_secs(10), |s| {
        s.iter().any(|s| s.trace_id == trace)
    }));
    assert!(
        otlp.trace(&trace)
            .iter()
            .all(|s| s.service == "checkout-api")
    );
}

#[test]
fn ratio_zero_samples_nothing_new_but_continues_a_sampled_caller() {
    let _serial = serial();
    let otlp = OtlpReceiver::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut api = api_with(&otlp, dir.path(), &[("OTEL_TRACES_SAMPLER_ARG", "0")]);

    // A new trace at ratio 0: not exported, but the log line still carries its id.
    let (status, _) = api.post_json("/v1/orders", &order("c-unsampled"));
    assert_eq!(status, 202);

    // A caller that sampled its trace: continued and exported (parent-based).
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = order("c-sampled").to_string();
    let r = http::request(
        api.addr,
        "POST",
        "/v1/orders",
        &[
            ("Content-Type", "application/json"),
            (
                "traceparent",
                &format!("00-{caller_trace}-00f067aa0ba902b7-01"),
            ),
        ],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 202);
    api.stop();

    let accepted: Vec<serde_json::Value> = api
        .json_lines()
        .into_iter()
        .filter(|l| l["msg"] == "order accepted")
        .collect();
    assert_eq!(accepted.len(), 2);
    let unsampled = accepted[0]["trace_id"]
        .as_str()
        .expect("trace_id even when not sampled");
    assert_eq!(
        accepted[1]["trace_id"], caller_trace,
        "the caller's trace is continued"
    );

    assert!(otlp.wait_until(Duration::from_secs(10), |s| {
        s.iter()
            .any(|s| s.trace_id == caller_trace && s.kind == kind::SERVER)
    }));
    let server = otlp
        .trace(caller_trace)
        .into_iter()
        .find(|s| s.kind == kind::SERVER)
        .unwrap();
    assert_eq!(
        server.parent_span_id, "00f067aa0ba902b7",
        "child of the caller's span"
    );
    assert!(
        otlp.trace(unsampled).is_empty(),
        "ratio 0 exported a new trace"
    );
}
