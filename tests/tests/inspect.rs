//! Looking into a running agent: `logship tap` prints what leaves a component as JSON lines
//! without costing the pipeline a line (a watcher that does not read loses tap lines, never
//! pipeline events), and `logship top` shows each component's rates.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use logship_tests::harness::{Agent, run_cli};
use logship_tests::logwriter::{LogWriter, LogWriterConfig};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::wait_for_seqs;

const T: Duration = Duration::from_secs(60);

fn writer(dir: &std::path::Path, lines: u64, per_sec: u64) -> LogWriter {
    LogWriter::start(LogWriterConfig::new(
        logs_dir(dir).join("app.log"),
        lines,
        per_sec,
    ))
}

#[test]
fn tap_prints_what_leaves_a_transform_and_costs_the_pipeline_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    let config = agent.config_path().to_string_lossy().into_owned();
    let w = writer(dir.path(), 3000, 1000);
    let tap = run_cli(&["tap", "--config", &config, "parse", "-n", "5"], T);
    assert!(tap.status.success(), "{}\n{}", tap.stdout, tap.stderr);
    let lines: Vec<serde_json::Value> = tap
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 5, "{}", tap.stdout);
    for l in &lines {
        assert_eq!(l["labels"]["service"], "svc-a", "{l}");
        assert_eq!(l["labels"]["level"], "info", "{l}");
        let trace = l["metadata"]["trace_id"].as_str().unwrap_or("");
        assert_eq!(trace.len(), 32, "{l}");
        let line = l["line"].as_str().unwrap_or("");
        assert!(line.starts_with("{\"time\":"), "{l}");
        assert!(l["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
    let written = w.wait().unwrap();
    let c = wait_for_seqs(&loki, written, T);
    assert!(c.is_exactly_once(), "{c}");
}

#[test]
fn a_tap_that_does_not_read_loses_tap_lines_not_pipeline_events() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    // A watcher that connects and then reads nothing for a while.
    let mut stalled = TcpStream::connect(agent.telemetry_addr()).unwrap();
    write!(
        stalled,
        "GET /tap/app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let written = writer(dir.path(), 60_000, 0).wait().unwrap();
    let c = wait_for_seqs(&loki, written, T);
    assert!(
        c.is_exactly_once(),
        "the pipeline never waits for a tap: {c}"
    );
    // Now it reads: the agent told it what it lost.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&seen).contains("tap_dropped") {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("{\"tap_dropped\":"),
        "read {} bytes without a tap_dropped line",
        seen.len()
    );
}

#[test]
fn tap_names_what_cannot_be_tapped() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let toml = cfg.to_toml();
    let path = dir.path().join("logship.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = path.to_string_lossy().into_owned();
    // No agent runs with this config yet.
    let down = run_cli(&["tap", "--config", &config, "parse"], T);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        down.stderr.contains("no logship answers at 127.0.0.1:"),
        "{}",
        down.stderr
    );
    let _agent = Agent::start(&toml, dir.path());
    let sink = run_cli(&["tap", "--config", &config, "loki"], T);
    assert_eq!(sink.status.code(), Some(1));
    assert!(
        sink.stderr
            .contains("`loki` is a sink, which emits nothing; tap one of its inputs: parse"),
        "{}",
        sink.stderr
    );
    let unknown = run_cli(&["tap", "--config", &config, "nope"], T);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        unknown.stderr.contains("no component `nope`"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn top_shows_each_components_rates() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    let config = agent.config_path().to_string_lossy().into_owned();
    let w = writer(dir.path(), 4000, 2000);
    let top = run_cli(
        &["top", "--config", &config, "-n", "2", "--interval", "0.5"],
        T,
    );
    w.wait().unwrap();
    assert!(top.status.success(), "{}\n{}", top.stdout, top.stderr);
    let frames: Vec<&str> = top.stdout.split("logship top: ").skip(1).collect();
    assert_eq!(frames.len(), 2, "{}", top.stdout);
    for frame in &frames {
        let rows: Vec<&str> = frame.lines().skip(2).filter(|l| !l.is_empty()).collect();
        let ids: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.split_whitespace().next())
            .collect();
        assert_eq!(ids, ["app", "parse", "loki"], "{frame}");
    }
    // Lines were flowing at ~2000/s: the source's IN/S is well above zero in some frame.
    let in_rate = |row: &str| -> f64 {
        let v = row.split_whitespace().nth(2).unwrap_or("0");
        match v.strip_suffix('k') {
            Some(k) => k.parse::<f64>().unwrap_or(0.0) * 1000.0,
            None => v.parse().unwrap_or(0.0),
        }
    };
    let best = frames
        .iter()
        .filter_map(|f| f.lines().find(|l| l.starts_with("app ")))
        .map(in_rate)
        .fold(0.0, f64::max);
    assert!(best > 500.0, "app IN/S {best}:\n{}", top.stdout);
}
