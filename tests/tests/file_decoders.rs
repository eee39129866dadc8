//! The file source's framing options end to end: multiline records, CRI files from
//! `/var/log/pods` (path labels, partial lines, the runtime's timestamps), and the stdin source
//! a sidecar pipes into.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use logship_tests::harness::{Agent, free_port, logship_bin, wait_until};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::timefmt::{now_nanos, rfc3339_nanos};

#[test]
fn multiline_records_are_joined_and_the_last_one_flushes_on_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url())
        .source("multiline = { start_pattern = '^\\d{4}-', timeout_ms = 300 }");
    cfg.transform = false;
    let text = "2024-06-10 12:00:00 ERROR boom\n  at a.rs:1\n  at b.rs:2\n\
                2024-06-10 12:00:01 INFO fine\n\
                2024-06-10 12:00:02 ERROR again\n  at c.rs:3\n";
    std::fs::write(logs_dir(dir.path()).join("app.log"), text).unwrap();
    let _agent = Agent::start(&cfg.to_toml(), dir.path());

    assert!(
        loki.wait_for_count(3, Duration::from_secs(20)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = loki
        .entries()
        .iter()
        .map(|e| e.line_str().into_owned())
        .collect();
    assert_eq!(
        lines,
        [
            "2024-06-10 12:00:00 ERROR boom\n  at a.rs:1\n  at b.rs:2",
            "2024-06-10 12:00:01 INFO fine",
            "2024-06-10 12:00:02 ERROR again\n  at c.rs:3",
        ]
    );
}

#[test]
fn cri_files_get_pod_labels_joined_partials_and_runtime_time() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let pod_dir = logs_dir(dir.path()).join("shop_order-api-7d4b9_0f1e2d3c-aaaa/api");
    std::fs::create_dir_all(&pod_dir).unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url()).source("decoder = \"cri\"");
    cfg.include = vec![
        logs_dir(dir.path())
            .join("*/*/*.log")
            .to_string_lossy()
            .into_owned(),
    ];
    // Recent times: Loki (and the receiver) refuse entries older than a week.
    let t0 = (now_nanos() / 1_000_000_000 - 60) * 1_000_000_000;
    let text = format!(
        "{} stdout F {{\"service\":\"order-api\",\"level\":\"info\",\"msg\":\"one\"}}\n\
         {} stderr P {{\"service\":\"order-api\",\"level\":\"error\",\n\
         {} stderr F \"msg\":\"two\"}}\n",
        rfc3339_nanos(t0 + 1),
        rfc3339_nanos(t0 + 2),
        rfc3339_nanos(t0 + 3),
    );
    std::fs::write(pod_dir.join("0.log"), text).unwrap();
    let _agent = Agent::start(&cfg.to_toml(), dir.path());

    assert!(
        loki.wait_for_count(2, Duration::from_secs(20)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut entries = loki.entries();
    entries.sort_by_key(|e| e.timestamp_ns);
    assert_eq!(entries.len(), 2);
    let one = &entries[0];
    assert_eq!(
        one.line_str(),
        r#"{"service":"order-api","level":"info","msg":"one"}"#
    );
    assert_eq!(one.timestamp_ns, t0 + 1);
    for (k, v) in [
        ("namespace", "shop"),
        ("pod", "order-api-7d4b9"),
        ("container", "api"),
        ("stream", "stdout"),
        ("service", "order-api"),
        ("level", "info"),
    ] {
        assert_eq!(one.label(k), Some(v), "label {k}");
    }
    let two = &entries[1];
    assert_eq!(
        two.line_str(),
        r#"{"service":"order-api","level":"error","msg":"two"}"#,
        "the P piece and the F piece are one line"
    );
    assert_eq!(two.timestamp_ns, t0 + 2, "first piece's time");
    assert_eq!(two.label("stream"), Some("stderr"));
    assert_eq!(two.label("level"), Some("error"));
}

#[test]
fn stdin_lines_ship_and_the_agent_exits_when_input_ends() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let config = format!(
        r#"data_dir = "{data}"
[telemetry]
address = "127.0.0.1:{port}"
[sources.pipe]
type = "stdin"
labels = {{ app = "batch" }}
[transforms.parse]
type = "json"
inputs = ["pipe"]
labels = {{ level = "level" }}
[sinks.loki]
type = "loki"
inputs = ["parse"]
endpoint = "{endpoint}"
batch = {{ timeout_ms = 10000 }}
"#,
        data = dir.path().join("data").display(),
        port = free_port(),
        endpoint = loki.url(),
    );
    let path = dir.path().join("stdin.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(logship_bin())
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..500 {
            writeln!(stdin, r#"{{"level":"info","seq":{i}}}"#).unwrap();
        }
        // The last line has no newline: it still ships when the input ends.
        write!(stdin, "tail without newline").unwrap();
    }
    let exited = wait_until(Duration::from_secs(20), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(exited, "the agent did not exit after stdin closed");
    assert!(status.success(), "{status}");
    assert_eq!(loki.count(), 501, "everything flushed before exit");
    let entries = loki.entries();
    assert!(entries.iter().all(|e| e.label("app") == Some("batch")));
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.label("level") == Some("info"))
            .count(),
        500
    );
    assert!(entries.iter().any(|e| e.line == b"tail without newline"));
}

#[test]
fn docker_json_files_get_container_labels_and_joined_16k_pieces() {
    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cdir = logs_dir(dir.path()).join(ID);
    std::fs::create_dir_all(&cdir).unwrap();
    let config_v2 = |name: &str| {
        format!(
            r#"{{"ID":"{ID}","Name":"/{name}","Config":{{"Image":"shop/api:1","Tty":false,
               "Labels":{{"com.docker.compose.service":"api","com.docker.compose.project":"shop"}}}}}}"#
        )
    };
    std::fs::write(cdir.join("config.v2.json"), config_v2("order-api")).unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url()).source("decoder = \"docker\"");
    cfg.include = vec![
        logs_dir(dir.path())
            .join("*/*-json.log")
            .to_string_lossy()
            .into_owned(),
    ];
    let t0 = (now_nanos() / 1_000_000_000 - 60) * 1_000_000_000;
    // A 40,000-byte JSON line split by Docker into 16 KiB pieces, then a short stderr line.
    let long = format!(
        r#"{{"service":"order-api","level":"info","blob":"{}"}}"#,
        "x".repeat(40_000)
    );
    let pieces: Vec<&str> = [&long[..16384], &long[16384..32768], &long[32768..]].to_vec();
    let mut text = String::new();
    for (i, p) in pieces.iter().enumerate() {
        let end = if i + 1 == pieces.len() { "\\n" } else { "" };
        let escaped = p.replace('\\', "\\\\").replace('"', "\\\"");
        text.push_str(&format!(
            "{{\"log\":\"{escaped}{end}\",\"stream\":\"stdout\",\"time\":\"{}\"}}\n",
            rfc3339_nanos(t0 + i as i64 + 1)
        ));
    }
    text.push_str(&format!(
        "{{\"log\":\"{{\\\"service\\\":\\\"order-api\\\",\\\"level\\\":\\\"error\\\"}}\\n\",\"stream\":\"stderr\",\"time\":\"{}\"}}\n",
        rfc3339_nanos(t0 + 10)
    ));
    std::fs::write(cdir.join(format!("{ID}-json.log")), text).unwrap();
    let _agent = Agent::start(&cfg.to_toml(), dir.path());

    assert!(
        loki.wait_for_count(2, Duration::from_secs(20)),
        "got {}",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut entries = loki.entries();
    entries.sort_by_key(|e| e.timestamp_ns);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].line, long.as_bytes(), "one line, not three");
    assert_eq!(entries[0].timestamp_ns, t0 + 1);
    for (k, v) in [
        ("container", "order-api"),
        ("compose_service", "api"),
        ("compose_project", "shop"),
        ("stream", "stdout"),
        ("service", "order-api"),
        ("level", "info"),
    ] {
        assert_eq!(entries[0].label(k), Some(v), "label {k}");
    }
    assert_eq!(entries[1].label("stream"), Some("stderr"));
    assert_eq!(entries[1].label("level"), Some("error"));
    assert_eq!(entries[1].timestamp_ns, t0 + 10);
}

#[test]
fn lines_that_are_not_in_the_decoders_format_ship_as_read_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).source("decoder = \"cri\"");
    let good = format!(
        "{} stdout F {{\"service\":\"api\",\"level\":\"info\"}}\n",
        rfc3339_nanos(now_nanos())
    );
    let bad = [
        "not a CRI line at all",
        "2026-11-30T10:00:00Z sideways F unknown stream",
    ];
    let text = format!("{good}{}\n{}\n", bad[0], bad[1]);
    std::fs::write(logs_dir(dir.path()).join("app.log"), text).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(
        loki.wait_for_count(3, Duration::from_secs(20)),
        "got {}",
        loki.count()
    );
    let entries = loki.entries();
    for b in bad {
        assert!(
            entries.iter().any(|e| e.line == b.as_bytes()),
            "{b:?} shipped as read: {entries:?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e.line == br#"{"service":"api","level":"info"}"#)
    );
    assert!(agent.wait_for_metric(
        "logship_source_decode_errors_total",
        &[("component", "app")],
        2.0,
        Duration::from_secs(10)
    ));
    assert_eq!(
        agent.metric(
            "logship_source_decode_errors_total",
            &[("component", "app")]
        ),
        2.0
    );
}
