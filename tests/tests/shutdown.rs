//! SIGTERM: the agent flushes the batch it holds, writes its checkpoint, and exits 0 quickly;
//! a restart re-sends nothing.

use std::time::{Duration, Instant};

use logship_tests::harness::{Agent, wait_until};
use logship_tests::logwriter::append_lines;
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, wait_for_seqs};

#[test]
fn sigterm_flushes_checkpoints_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    // Nothing is sent before shutdown unless shutdown flushes.
    cfg.batch = "timeout_ms = 10000".to_owned();
    let toml = cfg.to_toml();
    let path = logs_dir(dir.path()).join("app.log");
    append_lines(&path, 1..=500).unwrap();
    let mut agent = Agent::start(&toml, dir.path());

    let read_all = wait_until(Duration::from_secs(20), || {
        ["app", "parse"].iter().any(|c| {
            agent.metric("logship_component_sent_events_total", &[("component", c)]) >= 500.0
                || agent.metric(
                    "logship_component_received_events_total",
                    &[("component", c)],
                ) >= 500.0
        }) || agent.metric(
            "logship_component_received_events_total",
            &[("component", "loki")],
        ) >= 500.0
    });
    assert!(
        read_all,
        "the agent never read the 500 lines:\n{}",
        agent.metrics()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(loki.count(), 0, "the 10 s batch must still be held");

    let t = Instant::now();
    let status = agent
        .terminate_within(Duration::from_secs(10))
        .expect("the agent did not exit within 10 s of SIGTERM");
    let took = t.elapsed();
    println!("SIGTERM → exit {status} in {took:?}");
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let c = loki.with_entries(|e| count_seqs(e, 500));
    assert!(c.is_exactly_once(), "flushed at shutdown: {c}");

    let _agent = Agent::start(&toml, dir.path());
    append_lines(&path, 501..=510).unwrap();
    let c = wait_for_seqs(&loki, 510, Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(1));
    let c = if c.missing.is_empty() {
        loki.with_entries(|e| count_seqs(e, 510))
    } else {
        c
    };
    assert!(c.is_exactly_once(), "after restart: {c}");
}
