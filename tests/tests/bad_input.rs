//! Input the agent must survive: lines that are not JSON or not UTF-8 ship unchanged, a
//! path it cannot read is reported while other files keep shipping, an overlong line is
//! truncated and counted and the file keeps being tailed.

use std::collections::BTreeMap;
use std::time::Duration;

use logship_tests::harness::{Agent, wait_until};
use logship_tests::logwriter::{append_lines, append_raw, json_line};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, seq_of, wait_for_seqs};
use logship_tests::timefmt::now_nanos;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn non_json_and_invalid_utf8_lines_ship_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let path = logs_dir(dir.path()).join("app.log");
    let raw_lines: [&[u8]; 4] = [
        b"plain text, not json at all",
        b"\xff\xfe invalid utf-8 \xc3\x28 here",
        b"{\"broken json\": ",
        b"[1, 2, 3]",
    ];
    for l in raw_lines {
        let mut b = l.to_vec();
        b.push(b'\n');
        append_raw(&path, &b).unwrap();
    }
    let json = append_lines(&path, 1..=3).unwrap();
    let _agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(
        loki.wait_for_count(7, Duration::from_secs(30)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(500));
    let entries = loki.entries();
    assert_eq!(entries.len(), 7);
    let filename = path.to_string_lossy().into_owned();
    let raw_labels = labels(&[("job", "app"), ("filename", &filename)]);
    for l in raw_lines {
        let e = entries
            .iter()
            .find(|e| e.line == l)
            .unwrap_or_else(|| panic!("line {:?} missing or altered", String::from_utf8_lossy(l)));
        assert_eq!(
            e.labels, raw_labels,
            "non-JSON lines carry only source and static labels"
        );
        assert!(e.metadata.is_empty());
    }
    for l in &json {
        let e = entries.iter().find(|e| e.line == l.as_bytes()).unwrap();
        assert_eq!(e.labels.get("service").map(String::as_str), Some("svc-a"));
    }
}

#[test]
fn a_json_line_with_invalid_utf8_in_a_value_keeps_its_labels_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let path = logs_dir(dir.path()).join("app.log");
    let line: &[u8] =
        b"{\"service\":\"pay\xffments\",\"level\":\"error\",\"trace_id\":\"4bf9\xc3\x28\",\"msg\":\"card \xfe declined\"}";
    let mut b = line.to_vec();
    b.push(b'\n');
    append_raw(&path, &b).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(1, Duration::from_secs(30)));
    let e = &loki.entries()[0];
    assert_eq!(e.line, line, "the line ships as written");
    assert_eq!(e.label("service"), Some("pay\u{fffd}ments"));
    assert_eq!(e.label("level"), Some("error"));
    assert_eq!(
        e.metadata.get("trace_id").map(String::as_str),
        Some("4bf9\u{fffd}(")
    );
    assert_eq!(
        agent.metric(
            "logship_transform_parse_errors_total",
            &[("component", "parse")]
        ),
        0.0
    );
}

#[test]
fn unreadable_path_is_reported_and_other_files_still_ship() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let logs = logs_dir(dir.path());
    // Tests run as root, so permission bits would not stop a read: a dangling symlink that
    // matches the glob is a path that cannot be opened by anyone.
    std::os::unix::fs::symlink(dir.path().join("nowhere/gone.log"), logs.join("broken.log"))
        .unwrap();
    append_lines(&logs.join("app.log"), 1..=100).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    let c = wait_for_seqs(&loki, 100, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    assert!(
        wait_until(Duration::from_secs(10), || agent
            .log()
            .contains("broken.log")),
        "the unreadable path is not reported in the log:\n{}",
        agent.log()
    );
    // And the agent keeps tailing.
    append_lines(&logs.join("app.log"), 101..=150).unwrap();
    let c = wait_for_seqs(&loki, 150, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
}

#[test]
fn overlong_line_is_truncated_counted_and_tailing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).source("max_line_bytes = 1024");
    let path = logs_dir(dir.path()).join("app.log");
    append_lines(&path, 1..=1).unwrap();
    let long = json_line(2, "svc-a", "info", now_nanos(), &"x".repeat(5000));
    append_raw(&path, format!("{long}\n").as_bytes()).unwrap();
    append_lines(&path, 3..=100).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(
        loki.wait_for_count(100, Duration::from_secs(30)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(500));
    let entries = loki.entries();
    assert_eq!(entries.len(), 100);
    let cut: Vec<_> = entries
        .iter()
        .filter(|e| seq_of(&e.line).is_none())
        .collect();
    assert_eq!(
        cut.len(),
        1,
        "exactly the long line lost its seq to truncation"
    );
    let cut = &cut[0].line;
    assert!(
        !cut.is_empty() && cut.len() <= 1024,
        "truncated to {} bytes",
        cut.len()
    );
    assert!(
        long.as_bytes().starts_with(cut),
        "the truncated line is a prefix of the original"
    );
    let c = count_seqs(&entries, 100);
    assert_eq!(c.missing, vec![2], "{c}");
    assert_eq!(c.duplicates, 0, "{c}");
    assert!(
        wait_until(Duration::from_secs(5), || {
            agent.metric(
                "logship_source_truncated_lines_total",
                &[("component", "app")],
            ) == 1.0
        }),
        "{}",
        agent.metrics()
    );
}
