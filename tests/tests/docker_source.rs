//! The docker source end to end: the real `logship` binary follows real containers on a real
//! Docker engine and ships to the fake Loki. Needs `scripts/docker-env.sh start` (see
//! `docker_support`).

mod docker_support;

use std::time::{Duration, Instant};

use docker_support::*;
use logship_tests::harness::{Agent, serial, wait_until};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::toml_str;

#[test]
fn three_containers_every_line_arrives_with_the_right_labels() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    const TOTAL: u64 = 5_000;
    let p = unique_prefix("labels");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let names: Vec<String> = (1..=3).map(|i| format!("{p}order-{i}")).collect();
    let compose = [
        "--label",
        "com.docker.compose.service=orders",
        "--label",
        "com.docker.compose.project=shop",
    ];
    let _c1 = run_container(&names[0], &compose, &json_writer(TOTAL, 50, 10_000));
    let cfg = DockerPipeline::new(dir.path(), &loki.url(), &p)
        .source(r#"structured_metadata = { container_id = "container_id", image = "image" }"#)
        .to_toml();
    let agent = Agent::start(&cfg, dir.path());
    let _c2 = run_container(&names[1], &[], &json_writer(TOTAL, 50, 10_000));
    let c3 = run_container(&names[2], &["-t"], &json_writer(TOTAL, 50, 10_000));
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = wait_complete(&loki, &refs, TOTAL, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(500));
    for (name, c) in names.iter().zip(&counts) {
        println!("{name}: {c}");
        assert!(c.is_exactly_once(), "{name}: {c}");
    }
    // Stderr lines, except for the TTY container which has one stream.
    assert_eq!(stderr_count(&loki, &names[0]), (TOTAL / 10) as usize);
    assert_eq!(stderr_count(&loki, &names[1]), (TOTAL / 10) as usize);
    assert_eq!(stderr_count(&loki, &names[2]), 0);
    let tty_lines = entries_of(&loki, &names[2]);
    assert_eq!(tty_lines.len() as u64, TOTAL + TOTAL / 10);
    assert!(tty_lines.iter().all(|e| !e.line.ends_with(b"\r")));

    let first = entries_of(&loki, &names[0]);
    let out = first
        .iter()
        .find(|e| e.label("stream") == Some("stdout"))
        .unwrap();
    let want: Vec<(&str, &str)> = vec![
        ("compose_project", "shop"),
        ("compose_service", "orders"),
        ("container", names[0].as_str()),
        ("level", "info"),
        ("service", "order-api"),
        ("stream", "stdout"),
    ];
    let got: Vec<(&str, &str)> = out
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        out.metadata.get("trace_id").map(String::as_str),
        Some(TRACE_ID)
    );
    assert_eq!(out.metadata.get("image").map(String::as_str), Some(IMAGE));
    let err = first
        .iter()
        .find(|e| e.label("stream") == Some("stderr"))
        .unwrap();
    assert_eq!(err.label("level"), Some("error"));
    // No compose labels on a container without them.
    let second = entries_of(&loki, &names[1]);
    assert!(second.iter().all(|e| e.label("compose_service").is_none()));
    assert_eq!(
        entries_of(&loki, &names[2])[0].metadata.get("container_id"),
        Some(&c3.id)
    );
    let m = agent.metrics();
    assert!(m.contains("logship_containers_watched"), "{m}");
    assert!(
        agent.metric(
            "logship_container_lines_total",
            &[("container", names[0].as_str())]
        ) >= (TOTAL + TOTAL / 10) as f64
    );
}

/// The issue's measurement: three containers writing 20,000 lines each, the agent killed
/// with -9 and down for two seconds while they keep writing. Nothing may be lost, and every
/// line that arrives twice must be one that was not yet acknowledged when the agent died.
#[test]
fn kill9_while_containers_write_loses_nothing() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    const TOTAL: u64 = 20_000;
    let p = unique_prefix("kill9");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let pipeline = DockerPipeline::new(dir.path(), &loki.url(), &p);
    let cfg = pipeline.to_toml();
    let mut agent = Agent::start(&cfg, dir.path());
    let names: Vec<String> = (1..=3).map(|i| format!("{p}w{i}")).collect();
    let containers: Vec<Container> = names
        .iter()
        .map(|n| run_container(n, &[], &json_writer(TOTAL, 40, 20_000)))
        .collect();
    let started = Instant::now();
    assert!(wait_until(Duration::from_secs(60), || loki.count() >= 6_000));
    agent.kill9();
    let at_kill = loki.count();
    let checkpoint = read_checkpoint(&pipeline.data_dir);
    std::thread::sleep(Duration::from_secs(2));
    let agent = Agent::start(&cfg, dir.path());
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = wait_complete(&loki, &refs, TOTAL, Duration::from_secs(180));
    // Late retries of in-flight batches would land now.
    std::thread::sleep(Duration::from_secs(1));
    let mut total_dups = 0;
    for ((name, c), container) in names.iter().zip(&counts).zip(&containers) {
        let cursor = checkpoint.get(&container.id).copied().unwrap_or_default();
        let dups = duplicates_of(&loki, name);
        println!(
            "{name}: {c}; duplicates {} (checkpoint at kill: {cursor:?})",
            dups.len()
        );
        assert!(c.missing.is_empty(), "{name} lost lines: {c}");
        assert_eq!(
            stderr_count(&loki, name)
                - dups
                    .iter()
                    .filter(|e| e.label("stream") == Some("stderr"))
                    .count(),
            (TOTAL / 10) as usize
        );
        for d in &dups {
            let pos = if d.label("stream") == Some("stderr") {
                cursor.stderr
            } else {
                cursor.stdout
            };
            assert!(
                d.timestamp_ns >= pos.ts,
                "{name}: a line acknowledged before the kill arrived again: {} (ts {} < checkpoint {})",
                d.line_str(),
                d.timestamp_ns,
                pos.ts
            );
        }
        total_dups += dups.len();
    }
    println!(
        "kill -9: {} lines written, {at_kill} received before the kill, {total_dups} duplicates, \
         all in after {:?}",
        3 * (TOTAL + TOTAL / 10),
        started.elapsed()
    );
    assert!(total_dups < 3 * 5_000, "too many duplicates: {total_dups}");
    drop(agent);
}

#[test]
fn a_restarted_container_is_not_duplicated() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    let p = unique_prefix("restart");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = DockerPipeline::new(dir.path(), &loki.url(), &p).to_toml();
    let _agent = Agent::start(&cfg, dir.path());
    let name = format!("{p}job");
    // Each run writes 1,000 lines (and 100 to stderr) as fast as it can, then exits.
    let script = json_writer(1_000, 1_000, 1).replace("; sleep 3600", "");
    let _c = run_container(&name, &[], &script);
    assert!(wait_until(Duration::from_secs(60), || entries_of(
        &loki, &name
    )
    .len()
        >= 1_100));
    docker(&["wait", &name]);
    docker(&["restart", &name]);
    assert!(wait_until(Duration::from_secs(60), || entries_of(
        &loki, &name
    )
    .len()
        >= 2_200));
    docker(&["wait", &name]);
    docker(&["start", &name]);
    assert!(wait_until(Duration::from_secs(60), || entries_of(
        &loki, &name
    )
    .len()
        >= 3_300));
    std::thread::sleep(Duration::from_secs(2));
    let got = entries_of(&loki, &name);
    assert_eq!(got.len(), 3_300, "three runs of 1,100 lines");
    assert!(duplicates_of(&loki, &name).is_empty());
}

#[test]
fn a_40kb_line_arrives_as_one_line() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    let p = unique_prefix("long");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = DockerPipeline::new(dir.path(), &loki.url(), &p).to_toml();
    let _agent = Agent::start(&cfg, dir.path());
    // A 40,000-byte JSON line between two short ones.
    let script = r#"echo '{"seq":1}'; printf '{"seq":2,"pad":"'; head -c 39980 /dev/zero | tr '\0' x; echo '"}'; echo '{"seq":3}'; sleep 3600"#;
    let plain = format!("{p}plain");
    let tty = format!("{p}tty");
    let _c1 = run_container(&plain, &[], script);
    let _c2 = run_container(&tty, &["-t"], script);
    for name in [&plain, &tty] {
        assert!(
            wait_until(Duration::from_secs(60), || entries_of(&loki, name).len()
                >= 3),
            "{name}: {} lines",
            entries_of(&loki, name).len()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    for name in [&plain, &tty] {
        let got = entries_of(&loki, name);
        let lens: Vec<usize> = got.iter().map(|e| e.line.len()).collect();
        assert_eq!(got.len(), 3, "{name}: {lens:?}");
        assert_eq!(got[1].line.len(), 16 + 39_980 + 2, "{name}: {lens:?}");
        assert!(got[1].line.starts_with(br#"{"seq":2,"pad":"xxx"#));
        assert!(got[1].line.ends_with(br#"xxx"}"#));
        assert_eq!(got[2].line_str(), r#"{"seq":3}"#);
    }
}

#[test]
fn include_and_exclude_filters_choose_the_containers() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    let p = unique_prefix("filters");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = DockerPipeline::new(dir.path(), &loki.url(), &format!("{p}order-"))
        .source(&format!(
            "exclude_containers = [{}]",
            toml_str(&format!("{p}order-debug"))
        ))
        .source(r#"include_labels = ["logging=enabled"]"#)
        .source(&format!("include_images = [{}]", toml_str("logship-test-")))
        .to_toml();
    let _agent = Agent::start(&cfg, dir.path());
    let on = ["--label", "logging=enabled"];
    let script = |s: &str| format!("echo '{{\"msg\":\"{s}\"}}'; sleep 3600");
    let _a = run_container(&format!("{p}order-api"), &on, &script("api"));
    let _b = run_container(&format!("{p}order-debug-1"), &on, &script("debug"));
    let _c = run_container(&format!("{p}payment"), &on, &script("payment"));
    let _d = run_container(&format!("{p}order-quiet"), &[], &script("quiet"));
    let _e = run_container(&format!("{p}order-worker"), &on, &script("worker"));
    assert!(wait_until(Duration::from_secs(30), || loki.count() >= 2));
    std::thread::sleep(Duration::from_secs(2));
    let mut got: Vec<String> = loki.with_entries(|e| {
        e.iter()
            .map(|e| e.label("container").unwrap_or("").to_owned())
            .collect()
    });
    got.sort();
    assert_eq!(
        got,
        vec![format!("{p}order-api"), format!("{p}order-worker")]
    );
}

/// A received line as both paths must agree on: labels (less `via`), timestamp, text.
type LineView = (Vec<(String, String)>, i64, Vec<u8>);

/// `decoder = "docker"` over a container's json-file log gives the same lines, timestamps
/// and labels as the API path.
#[test]
fn the_json_file_path_matches_the_api_path() {
    if !require_docker() {
        return;
    }
    let _serial = serial();
    const TOTAL: u64 = 2_000;
    let p = unique_prefix("filepath");
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let name = format!("{p}svc");
    let c = run_container(
        &name,
        &[
            "--label",
            "com.docker.compose.service=svc",
            "--label",
            "com.docker.compose.project=shop",
        ],
        &json_writer(TOTAL, 100, 10_000),
    );
    let log_glob = format!("/var/lib/docker/containers/{}/*-json.log", c.id);
    let mut pipeline = DockerPipeline::new(dir.path(), &loki.url(), &p)
        .source(r#"static_labels = { via = "api" }"#);
    pipeline.transform_inputs.push("files".to_owned());
    pipeline.extra = format!(
        "\n[sources.files]\ntype = \"file\"\ninclude = [{}]\ndecoder = \"docker\"\n\
         filename_label = \"\"\nlabels = {{ via = \"file\" }}\n",
        toml_str(&log_glob)
    );
    let _agent = Agent::start(&pipeline.to_toml(), dir.path());
    let per_via =
        |via: &str| loki.with_entries(|e| e.iter().filter(|e| e.label("via") == Some(via)).count());
    let want = (TOTAL + TOTAL / 10) as usize;
    assert!(
        wait_until(Duration::from_secs(90), || per_via("api") >= want
            && per_via("file") >= want),
        "api {} file {}",
        per_via("api"),
        per_via("file")
    );
    std::thread::sleep(Duration::from_millis(500));
    let view = |via: &str| {
        let mut v: Vec<LineView> = loki.with_entries(|e| {
            e.iter()
                .filter(|e| e.label("via") == Some(via))
                .map(|e| {
                    let labels = e
                        .labels
                        .iter()
                        .filter(|(k, _)| k.as_str() != "via")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    (labels, e.timestamp_ns, e.line.clone())
                })
                .collect()
        });
        v.sort();
        v
    };
    let (api, file) = (view("api"), view("file"));
    assert_eq!(api.len(), want);
    assert_eq!(file.len(), want);
    if api != file {
        let diff = api.iter().zip(&file).find(|(a, f)| a != f);
        panic!("the file path differs from the API path, first difference: {diff:?}");
    }
}
