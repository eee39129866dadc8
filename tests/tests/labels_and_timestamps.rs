//! What a line's labels and time become, end to end with the real binary: the one precedence
//! rule for labels (source static < extracted < sink static), timestamps in a named format
//! and zone arriving with the right nanoseconds, and unparsable ones counted and shipped with
//! the time they were read.

use std::time::Duration;

use logship_tests::harness::Agent;
use logship_tests::logwriter::append_raw;
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::timefmt::now_nanos;

const T: Duration = Duration::from_secs(30);

fn write_lines(dir: &std::path::Path, lines: &[&str]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    append_raw(&logs_dir(dir).join("app.log"), text.as_bytes()).unwrap();
}

#[test]
fn sink_labels_beat_extracted_ones_which_beat_the_sources() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    // Source: job, team, service. Extracted: service, job. Sink: job = "app".
    let cfg = PipelineConfig::new(dir.path(), &loki.url())
        .source(r#"labels = { job = "from-source", team = "platform", service = "from-source" }"#)
        .source(r#"filename_label = """#)
        .transform(
            r#"type = "json"
labels = { service = "service", job = "job" }"#,
        );
    write_lines(
        dir.path(),
        &[
            r#"{"service":"api","job":"from-line","msg":"one"}"#,
            r#"{"msg":"no fields"}"#,
        ],
    );
    let _agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(2, T), "{:?}", loki.entries());
    let entries = loki.entries();
    let labels_of = |msg: &str| {
        entries
            .iter()
            .find(|e| e.line_str().contains(msg))
            .unwrap_or_else(|| panic!("{msg} not received: {entries:?}"))
            .labels
            .clone()
    };
    let one = labels_of("\"one\"");
    assert_eq!(one.get("job").map(String::as_str), Some("app"), "sink wins");
    assert_eq!(
        one.get("service").map(String::as_str),
        Some("api"),
        "extracted beats source"
    );
    assert_eq!(one.get("team").map(String::as_str), Some("platform"));
    let none = labels_of("no fields");
    assert_eq!(none.get("job").map(String::as_str), Some("app"));
    assert_eq!(
        none.get("service").map(String::as_str),
        Some("from-source"),
        "without the field the source's label stays"
    );
}

#[test]
fn log4j_and_common_log_format_times_arrive_to_the_nanosecond() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    // log4j, written in Berlin's local time (UTC+1 in November).
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).transform(
        r#"type = "regex"
pattern = '^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) (?P<level>[A-Z]+) (?P<msg>.*)$'
labels = { level = "level" }
timestamp = "time"
timestamp_format = "%Y-%m-%d %H:%M:%S,%f"
timezone = "Europe/Berlin""#,
    );
    write_lines(dir.path(), &["2026-11-30 15:35:10,753 INFO order placed"]);
    let _agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(1, T), "{:?}", loki.entries());
    // 2026-11-30T14:35:10.753Z
    assert_eq!(loki.entries()[0].timestamp_ns, 1_796_049_310_753_000_000);

    // The common log format carries its own offset.
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).transform(
        r#"type = "regex"
pattern = '^\S+ \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+)'
labels = { status = "status" }
timestamp = "time"
timestamp_format = "%d/%b/%Y:%H:%M:%S %z""#,
    );
    write_lines(
        dir.path(),
        &[r#"127.0.0.1 - - [30/Nov/2026:16:35:10 +0200] "GET /orders HTTP/1.1" 200"#],
    );
    let _agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(1, T), "{:?}", loki.entries());
    let e = &loki.entries()[0];
    assert_eq!(e.timestamp_ns, 1_796_049_310_000_000_000);
    assert_eq!(e.label("status"), Some("200"));
}

#[test]
fn an_unparsable_timestamp_is_counted_and_the_line_keeps_its_read_time() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).transform(
        r#"type = "json"
timestamp = "time"
timestamp_format = "%Y-%m-%d %H:%M:%S,%f""#,
    );
    write_lines(
        dir.path(),
        &[
            r#"{"time":"2026-11-30 14:35:10,753","msg":"good"}"#,
            r#"{"time":"30.11.2026 14:35","msg":"bad one"}"#,
            r#"{"time":"yesterday","msg":"bad two"}"#,
            r#"{"msg":"no time at all"}"#,
        ],
    );
    let before = now_nanos();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(4, T), "{:?}", loki.entries());
    let after = now_nanos();
    for e in loki.entries() {
        let line = e.line_str();
        if line.contains("good") {
            assert_eq!(e.timestamp_ns, 1_796_049_310_753_000_000);
        } else {
            assert!(
                (before..=after).contains(&e.timestamp_ns),
                "{line}: {} is not the read time",
                e.timestamp_ns
            );
        }
    }
    assert_eq!(
        agent.metric(
            "logship_transform_timestamp_errors_total",
            &[("component", "parse")]
        ),
        2.0,
        "two present but unparsable; a missing one is no error"
    );
    let log = agent.log();
    assert_eq!(
        log.matches("a timestamp does not parse").count(),
        1,
        "warned once per component:\n{log}"
    );
}
