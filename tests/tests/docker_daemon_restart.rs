//! dockerd stopped and started while containers write: the agent says so, backs off,
//! reconnects by itself and resumes every container where it stopped. A binary of its own,
//! so restarting the daemon disturbs no other test.
//!
//! The daemon runs with `--live-restore` (see `scripts/docker-env.sh`): containers keep
//! running while it is down, their output waits in the shim's pipe and is logged, with
//! fresh timestamps, once the daemon is back.

mod docker_support;

use std::time::Duration;

use docker_support::*;
use logship_tests::harness::{Agent, wait_until};
use logship_tests::loki::LokiReceiver;

#[test]
fn the_agent_resumes_by_itself_after_dockerd_restarts() {
    if !require_docker() {
        return;
    }
    if !daemon_started_by_script() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but dockerd was not started by scripts/docker-env.sh, so it cannot be restarted"
        );
        eprintln!("skipped: dockerd was not started by scripts/docker-env.sh");
        return;
    }
    const TOTAL: u64 = 10_000;
    let p = unique_prefix("dockerd");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = DockerPipeline::new(dir.path(), &loki.url(), &p).to_toml();
    let agent = Agent::start(&cfg, dir.path());
    let names: Vec<String> = (1..=2).map(|i| format!("{p}w{i}")).collect();
    let _containers: Vec<Container> = names
        .iter()
        .map(|n| run_container(n, &[], &json_writer(TOTAL, 20, 20_000)))
        .collect();
    assert!(wait_until(Duration::from_secs(60), || loki.count() >= 2_000));

    docker_env("stop");
    let during = loki.count();
    std::thread::sleep(Duration::from_secs(3));
    // While the daemon is away the agent says so and is not ready.
    let (status, body) = agent.ready();
    let log_says_so = agent.log().contains("Docker daemon");
    docker_env("start");

    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = wait_complete(&loki, &refs, TOTAL, Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(1));
    for (name, c) in names.iter().zip(&counts) {
        let dups = duplicates_of(&loki, name);
        println!("{name}: {c}; duplicates {}", dups.len());
        assert!(
            c.missing.is_empty(),
            "{name} lost lines: {c}\n{}",
            agent.log()
        );
        assert!(
            dups.is_empty(),
            "{name}: a reconnect resumes exactly where it stopped"
        );
    }
    println!("received {during} before the daemon stopped; /ready while down: {status} {body}");
    assert_ne!(status, 200, "/ready while dockerd is down: {body}");
    assert!(
        log_says_so,
        "the agent did not log the lost daemon:\n{}",
        agent.log()
    );
    assert!(agent.metric("logship_docker_reconnects_total", &[]) >= 1.0);
    assert!(agent.metric("logship_docker_api_errors_total", &[]) >= 1.0);
    assert_eq!(agent.ready().0, 200, "ready again after the reconnect");
}
