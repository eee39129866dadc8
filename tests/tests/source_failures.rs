//! A source that stops with an error is visible: `/ready` names it, a counter counts it, the
//! other sources go on, and the agent's exit status says so, so that a supervisor restarts it.
//!
//! The failing source is a `stdin` source whose standard input is a directory: reading it
//! fails with EISDIR, a real I/O error the agent cannot recover from by itself.

use std::time::Duration;

use logship_tests::harness::{Agent, AgentOptions, wait_until};
use logship_tests::logwriter::append_lines;
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, wait_for_seqs};

fn stdin_is_a_directory(dir: &std::path::Path) -> AgentOptions {
    AgentOptions {
        stdin: Some(dir.to_path_buf()),
        ..AgentOptions::default()
    }
}

#[test]
fn a_failed_source_makes_the_agent_unready_while_the_others_ship() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut config = PipelineConfig::new(dir.path(), &loki.url()).to_toml();
    config.push_str("\n[sources.piped]\ntype = \"stdin\"\n");
    config = config.replace("inputs = [\"app\"]", "inputs = [\"app\", \"piped\"]");
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=500).unwrap();
    let mut agent = Agent::start_with(&config, dir.path(), stdin_is_a_directory(dir.path()));

    assert!(
        wait_until(Duration::from_secs(15), || agent.ready().0 == 503),
        "/ready never failed: {:?}",
        agent.ready()
    );
    let (status, body) = agent.ready();
    assert_eq!(status, 503);
    assert!(body.contains("piped: source stopped"), "{body}");
    assert!(body.contains("reading standard input failed"), "{body}");
    assert_eq!(
        agent.metric("logship_component_errors_total", &[("component", "piped")]),
        1.0
    );
    assert_eq!(agent.metric("logship_ready", &[]), 0.0);

    // The file source is unaffected: every line arrives once, and more lines keep coming.
    append_lines(&logs_dir(dir.path()).join("app.log"), 501..=1000).unwrap();
    let c = wait_for_seqs(&loki, 1000, Duration::from_secs(30));
    assert!(c.missing.is_empty(), "{c}");
    std::thread::sleep(Duration::from_millis(500));
    let c = loki.with_entries(|e| count_seqs(e, 1000));
    assert!(c.is_exactly_once(), "{c}");
    assert!(agent.is_running());

    // Stopping it flushes as usual, and the status still reports the failure.
    let status = agent.terminate();
    assert_eq!(status.code(), Some(1), "{}", agent.log());
}

#[test]
fn when_every_source_has_failed_the_agent_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    // No telemetry: the harness does not wait for /health, the agent may be gone at once.
    let config = format!(
        r#"data_dir = "{data}"
[telemetry]
enabled = false

[sources.piped]
type = "stdin"

[sinks.loki]
type = "loki"
inputs = ["piped"]
endpoint = "{url}"
"#,
        data = dir.path().join("data").display(),
        url = loki.url(),
    );
    let mut agent = Agent::start_with(&config, dir.path(), stdin_is_a_directory(dir.path()));
    let status = agent
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running\n{}", agent.log()));
    assert_eq!(status.code(), Some(1), "{}", agent.log());
    let log = agent.log();
    assert!(log.contains("reading standard input failed"), "{log}");
    assert!(log.contains("exiting with status 1"), "{log}");
}
