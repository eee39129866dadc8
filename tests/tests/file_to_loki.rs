//! The core path: a JSON log file → json transform → Loki, in every encoding; what arrives is
//! byte-identical, labelled, timestamped from the line, and counted in `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use logship_tests::harness::{Agent, wait_until};
use logship_tests::logwriter::{append_lines, span_id_for, trace_id_for};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, seq_of, wait_for_seqs};
use logship_tests::timefmt::parse_rfc3339_nanos;

const N: u64 = 1000;

/// Ships 1,000 lines with the given extra sink lines and checks every entry in detail.
/// Returns the receiver for encoding-specific checks.
fn ship_and_check(sink_lines: &[&str]) -> LokiReceiver {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    for l in sink_lines {
        cfg = cfg.sink(l);
    }
    let path = logs_dir(dir.path()).join("app.log");
    let written = append_lines(&path, 1..=N).unwrap();
    let _agent = Agent::start(&cfg.to_toml(), dir.path());

    let c = wait_for_seqs(&loki, N, Duration::from_secs(30));
    assert!(c.missing.is_empty(), "not everything arrived: {c}");
    // Anything still in flight would show up as a duplicate now.
    std::thread::sleep(Duration::from_millis(500));
    let entries = loki.entries();
    let c = count_seqs(&entries, N);
    println!("{c}");
    assert!(c.is_exactly_once(), "{c}");
    assert_eq!(c.without_seq, 0, "{c}");

    let filename = path.to_string_lossy().into_owned();
    for e in &entries {
        let seq = seq_of(&e.line).unwrap();
        let original = &written[(seq - 1) as usize];
        assert_eq!(e.line, original.as_bytes(), "line bytes must be identical");
        let want: BTreeMap<String, String> = [
            ("service", "svc-a"),
            ("level", "info"),
            ("job", "app"),
            ("filename", filename.as_str()),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(e.labels, want, "labels of seq {seq}");
        let meta: BTreeMap<String, String> = [
            ("trace_id".to_owned(), trace_id_for(seq)),
            ("span_id".to_owned(), span_id_for(seq)),
        ]
        .into_iter()
        .collect();
        assert_eq!(e.metadata, meta, "structured metadata of seq {seq}");
        let v: serde_json::Value = serde_json::from_slice(&e.line).unwrap();
        let time = parse_rfc3339_nanos(v["time"].as_str().unwrap()).unwrap();
        assert_eq!(
            e.timestamp_ns, time,
            "timestamp of seq {seq} comes from its `time`"
        );
        assert_eq!(e.tenant, None);
    }
    let reqs = loki.requests();
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().all(|r| r.status == Some(204)),
        "every push accepted"
    );
    loki
}

#[test]
fn protobuf_snappy_by_default() {
    let loki = ship_and_check(&[]);
    for r in loki.requests() {
        assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
        assert!(matches!(
            r.content_encoding.as_deref(),
            None | Some("snappy")
        ));
    }
}

#[test]
fn json_gzip() {
    let loki = ship_and_check(&["encoding = \"json\"", "compression = \"gzip\""]);
    for r in loki.requests() {
        assert!(
            r.content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json")
        );
        assert_eq!(r.content_encoding.as_deref(), Some("gzip"));
    }
}

#[test]
fn json_uncompressed() {
    let loki = ship_and_check(&["encoding = \"json\"", "compression = \"none\""]);
    for r in loki.requests() {
        assert!(
            r.content_type
                .as_deref()
                .unwrap_or("")
                .starts_with("application/json")
        );
        assert!(matches!(r.content_encoding.as_deref(), None | Some("")));
    }
}

#[test]
fn metrics_count_what_was_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=N).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    let c = wait_for_seqs(&loki, N, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");

    let sent = |a: &Agent| {
        a.metric(
            "logship_component_sent_events_total",
            &[("component", "loki")],
        )
    };
    assert!(
        wait_until(Duration::from_secs(5), || sent(&agent) == N as f64),
        "sent events {} != {N}",
        sent(&agent)
    );
    assert_eq!(sent(&agent), loki.count() as f64);
    let ok_requests = loki
        .requests()
        .iter()
        .filter(|r| r.status == Some(204))
        .count();
    let metric_204 = agent.metric(
        "logship_loki_requests_total",
        &[("component", "loki"), ("status", "204")],
    );
    assert_eq!(metric_204, ok_requests as f64, "{}", agent.metrics());
    assert_eq!(
        agent.metric("logship_component_discarded_events_total", &[]),
        0.0
    );
}

#[test]
fn read_from_end_skips_existing_content() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    cfg.read_from = "end".to_owned();
    let path = logs_dir(dir.path()).join("app.log");
    append_lines(&path, 1..=100).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    // The file must be watched (its end noted) before new lines come.
    assert!(
        agent.wait_for_metric("logship_files_watched", &[], 1.0, Duration::from_secs(10)),
        "the file was never watched"
    );
    std::thread::sleep(Duration::from_millis(500));
    append_lines(&path, 101..=200).unwrap();
    assert!(
        loki.wait_for_count(100, Duration::from_secs(30)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_secs(1));
    let mut seqs: Vec<u64> = loki
        .entries()
        .iter()
        .filter_map(|e| seq_of(&e.line))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (101..=200).collect::<Vec<_>>());
}

#[test]
fn telemetry_shows_the_process_the_build_how_far_behind_and_the_last_success() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let log = logs_dir(dir.path()).join("app.log");
    append_lines(&log, 1..=100).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(wait_for_seqs(&loki, 100, Duration::from_secs(30)).is_exactly_once());
    // The receiver stores before it answers; the agent notes the success a moment later.
    assert!(agent.wait_for_metric(
        "logship_loki_last_success_timestamp_seconds",
        &[("component", "loki")],
        1.0,
        Duration::from_secs(10)
    ));
    let text = agent.metrics();
    let value = |name: &str, labels: &[(&str, &str)]| {
        logship_tests::prom::value(&text, name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} is not served:\n{text}"))
    };
    assert!(value("process_resident_memory_bytes", &[]) > 1e6);
    // The crate counts whole CPU seconds: served, maybe still 0 this early.
    assert!(value("process_cpu_seconds_total", &[]) >= 0.0);
    assert!(value("process_open_fds", &[]) >= 3.0);
    assert_eq!(
        value(
            "logship_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = value(
        "logship_loki_last_success_timestamp_seconds",
        &[("component", "loki")],
    );
    assert!((now - last).abs() < 60.0, "last success {last}, now {now}");
    assert!(
        agent.wait_for_metric(
            "logship_source_unread_bytes",
            &[("component", "app")],
            0.0,
            Duration::from_secs(5)
        ) && agent.metric("logship_source_unread_bytes", &[("component", "app")]) == 0.0,
        "caught up, nothing unread"
    );

    // Loki away: the pipeline fills, reading stops, and the gauge says how far behind.
    loki.stop();
    append_lines(&log, 101..=150_000).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || agent
            .metric("logship_source_unread_bytes", &[("component", "app")])
            > 1e6),
        "unread bytes while Loki is away: {}",
        agent.metric("logship_source_unread_bytes", &[("component", "app")])
    );
    loki.start().unwrap();
    assert!(
        wait_for_seqs(&loki, 150_000, Duration::from_secs(120))
            .missing
            .is_empty()
    );
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .metric("logship_source_unread_bytes", &[("component", "app")])
            == 0.0),
        "caught up again"
    );
}
