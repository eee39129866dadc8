//! Reloading the config of a running agent (SIGHUP, `--watch-config`), counted at the
//! receiver: nothing lost, nothing sent twice, the new config on the lines read after.

use std::time::{Duration, Instant};

use logship_tests::harness::{Agent, AgentOptions, wait_until};
use logship_tests::logwriter::{LogWriter, LogWriterConfig, append_lines};
use logship_tests::loki::{LokiReceiver, ReceivedEntry};
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, seq_of, wait_for_seqs};

const T: Duration = Duration::from_secs(60);

fn reloads(agent: &Agent, result: &str) -> f64 {
    logship_tests::prom::value(
        &agent.metrics(),
        "logship_config_reloads_total",
        &[("result", result)],
    )
    .unwrap_or(0.0)
}

fn wait_reloads(agent: &Agent, result: &str, n: f64) -> bool {
    wait_until(Duration::from_secs(30), || reloads(agent, result) >= n)
}

#[test]
fn a_reload_under_load_loses_nothing_and_labels_lines_read_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let before =
        PipelineConfig::new(dir.path(), &loki.url()).source(r#"labels = { phase = "before" }"#);
    let mut after = before.clone();
    after.source_extra = vec![r#"labels = { phase = "after" }"#.to_owned()];
    let total = 12_000;
    let writer = LogWriter::start(LogWriterConfig::new(
        logs_dir(dir.path()).join("app.log"),
        total,
        4_000,
    ));
    let mut agent = Agent::start(&before.to_toml(), dir.path());
    assert!(wait_until(T, || writer.highest_seq() >= total / 3));
    agent.reload(&after.to_toml());
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    writer.wait().unwrap();
    let c = wait_for_seqs(&loki, total, T);
    assert!(c.is_exactly_once(), "{c}\n{}", agent.log());

    // Every line read before the reload says so, every line after says the other; the cut is
    // one place in the file.
    let entries = loki.entries();
    let seqs_of = |phase: &str| -> Vec<u64> {
        entries
            .iter()
            .filter(|e| e.label("phase") == Some(phase))
            .filter_map(|e| seq_of(&e.line))
            .collect()
    };
    let (old, new) = (seqs_of("before"), seqs_of("after"));
    assert!(
        !old.is_empty() && !new.is_empty(),
        "{} / {}",
        old.len(),
        new.len()
    );
    assert_eq!(old.len() + new.len(), total as usize);
    let last_old = old.iter().max().copied().unwrap_or(0);
    let first_new = new.iter().min().copied().unwrap_or(0);
    assert!(
        last_old < first_new,
        "before up to {last_old}, after from {first_new}"
    );
    assert!(agent.is_running());
}

#[test]
fn an_invalid_config_is_reported_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let log = logs_dir(dir.path()).join("app.log");
    append_lines(&log, 1..=100).unwrap();
    let mut agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(wait_for_seqs(&loki, 100, T).is_exactly_once());

    let broken = cfg.to_toml().replace("read_from", "raed_from");
    agent.reload(&broken);
    assert!(wait_reloads(&agent, "error", 1.0), "{}", agent.log());
    let log_text = agent.log();
    let name = agent.config_path().display().to_string();
    assert!(
        log_text.contains(&name) && log_text.contains("raed_from"),
        "the error names the file and the key:\n{log_text}"
    );
    assert_eq!(agent.health().0, 200);
    append_lines(&log, 101..=200).unwrap();
    let c = wait_for_seqs(&loki, 200, T);
    assert!(c.is_exactly_once(), "the old pipeline goes on: {c}");
    assert_eq!(reloads(&agent, "success"), 0.0);
}

#[test]
fn a_reload_adds_changes_and_removes_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (LokiReceiver::new().unwrap(), LokiReceiver::new().unwrap());
    let cfg = PipelineConfig::new(dir.path(), &a.url());
    let log = logs_dir(dir.path()).join("app.log");
    append_lines(&log, 1..=50).unwrap();
    let mut agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(wait_for_seqs(&a, 50, T).is_exactly_once());

    // Add a second sink: lines from now on reach both.
    let with_second = format!(
        "{}\n[sinks.second]\ntype = \"loki\"\ninputs = [\"parse\"]\nendpoint = \"{}\"\nbatch = {{ timeout_ms = 200 }}\n",
        cfg.to_toml(),
        b.url()
    );
    agent.reload(&with_second);
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    append_lines(&log, 51..=100).unwrap();
    assert!(wait_for_seqs(&a, 100, T).is_exactly_once());
    assert!(b.wait_for_count(50, T));
    let on_b = count_seqs(&b.entries(), 100);
    assert_eq!(on_b.unique, 50, "{on_b}");
    assert_eq!(
        on_b.missing.first(),
        Some(&1),
        "the new sink starts at the reload"
    );

    // Remove `second` and point `loki` at B: A receives nothing more, B everything new once.
    let mut moved = cfg.clone();
    moved.endpoint = b.url();
    agent.reload(&moved.to_toml());
    assert!(wait_reloads(&agent, "success", 2.0), "{}", agent.log());
    append_lines(&log, 101..=150).unwrap();
    assert!(b.wait_for_count(100, T));
    std::thread::sleep(Duration::from_millis(500));
    let on_b = count_seqs(&b.entries(), 150);
    assert_eq!((on_b.unique, on_b.duplicates), (100, 0), "{on_b}");
    assert_eq!(count_seqs(&a.entries(), 150).unique, 100);
}

#[test]
fn a_burst_of_sighups_with_an_unchanged_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let log = logs_dir(dir.path()).join("app.log");
    let mut agent = Agent::start(&cfg.to_toml(), dir.path());
    let pid = agent.pid();
    for _ in 0..20 {
        agent.hup();
    }
    assert!(wait_reloads(&agent, "unchanged", 1.0), "{}", agent.log());
    append_lines(&log, 1..=100).unwrap();
    assert!(wait_for_seqs(&loki, 100, T).is_exactly_once());
    assert!(agent.is_running());
    assert_eq!(agent.pid(), pid);
    assert_eq!(reloads(&agent, "success"), 0.0);
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn watch_config_reloads_when_the_file_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let mut agent = Agent::start_with(
        &cfg.to_toml(),
        dir.path(),
        AgentOptions {
            args: vec!["--watch-config".to_owned()],
            ..AgentOptions::default()
        },
    );
    let changed = cfg.clone().source(r#"labels = { saved = "yes" }"#);
    // As an editor saves: a new file renamed over the old one.
    let tmp = dir.path().join("config.toml.swp");
    std::fs::write(&tmp, changed.to_toml()).unwrap();
    std::fs::rename(&tmp, agent.config_path()).unwrap();
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=10).unwrap();
    assert!(wait_for_seqs(&loki, 10, T).is_exactly_once());
    assert!(
        loki.entries()
            .iter()
            .all(|e| e.label("saved") == Some("yes"))
    );
    assert!(agent.is_running());
}

/// An agent that has shipped lines 1..=100 of `app.log`, and then Loki goes down.
fn shipping_then_loki_down() -> (tempfile::TempDir, LokiReceiver, PipelineConfig, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=100).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(wait_for_seqs(&loki, 100, T).is_exactly_once());
    loki.stop();
    (dir, loki, cfg, agent)
}

#[test]
fn a_reload_while_loki_is_down_loses_nothing_and_sends_nothing_twice() {
    let (dir, loki, cfg, mut agent) = shipping_then_loki_down();
    let log = logs_dir(dir.path()).join("app.log");
    append_lines(&log, 101..=2_000).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    agent.reload(
        &cfg.clone()
            .source(r#"labels = { after = "reload" }"#)
            .to_toml(),
    );
    // The reload applies at once; the changed source's new instance waits until what the old
    // one read has been delivered, and then reads on from there.
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        reload_summary(&agent).contains("kept [parse, loki]; replaced [app]"),
        "{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    loki.start().unwrap();
    append_lines(&log, 2_001..=2_100).unwrap();
    let c = wait_for_seqs(&loki, 2_100, T);
    assert!(c.missing.is_empty(), "{c}\n{}", agent.log());
    // A re-read would arrive after the lines it repeats: give it time to show.
    std::thread::sleep(Duration::from_secs(2));
    let entries = loki.entries();
    let c = count_seqs(&entries, 2_100);
    assert!(c.is_exactly_once(), "{c}\n{}", agent.log());
    let relabelled = entries
        .iter()
        .filter(|e| seq_of(&e.line).is_some_and(|s| s > 2_000))
        .filter(|e| e.label("after") == Some("reload"))
        .count();
    assert_eq!(
        relabelled, 100,
        "lines read after the reload carry its label"
    );
}

/// The last "config reloaded" line of the agent's log: what the reload kept and changed.
fn reload_summary(agent: &Agent) -> String {
    agent
        .log()
        .lines()
        .rfind(|l| l.contains("config reloaded"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_reload_that_changes_only_the_sink_keeps_the_source_reading_a_deleted_file() {
    // Loki is down, so the source is far behind when the file is deleted: only a source that
    // kept running still holds the file open; one started again would find nothing to read.
    let (dir, loki, cfg, mut agent) = shipping_then_loki_down();
    let log = logs_dir(dir.path()).join("app.log");
    let total = 100_000;
    append_lines(&log, 101..=total).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::remove_file(&log).unwrap();
    let mut changed = cfg.clone();
    changed.batch = "timeout_ms = 300".to_owned();
    agent.reload(&changed.to_toml());
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    let summary = reload_summary(&agent);
    assert!(
        summary.contains("kept [app, parse]; replaced [loki]"),
        "{summary}"
    );
    loki.start().unwrap();
    let c = wait_for_seqs(&loki, total, T);
    assert!(c.is_exactly_once(), "{c}\n{}", agent.log());
}

#[test]
fn a_transform_changed_under_load_applies_to_later_lines_and_the_source_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    let changed = cfg.clone().transform(
        "type = \"json\"\n\
         labels = { service = \"service\", level = \"level\", severity = \"level\" }\n\
         structured_metadata = { trace_id = \"trace_id\", span_id = \"span_id\" }\n\
         timestamp = \"time\"",
    );
    let total = 12_000;
    let writer = LogWriter::start(LogWriterConfig::new(
        logs_dir(dir.path()).join("app.log"),
        total,
        4_000,
    ));
    let mut agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(wait_until(T, || writer.highest_seq() >= total / 3));
    agent.reload(&changed.to_toml());
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    let summary = reload_summary(&agent);
    assert!(
        summary.contains("kept [app, loki]; replaced [parse]"),
        "{summary}"
    );
    writer.wait().unwrap();
    let c = wait_for_seqs(&loki, total, T);
    assert!(c.is_exactly_once(), "{c}\n{}", agent.log());
    let entries = loki.entries();
    let new = entries
        .iter()
        .filter(|e| e.label("severity").is_some())
        .count();
    assert!(
        new > 0 && new < total as usize,
        "{new} of {total} lines went through the new transform"
    );
    let last = entries.iter().filter_map(|e| seq_of(&e.line)).max();
    let last_new = entries
        .iter()
        .filter(|e| e.label("severity").is_some())
        .filter_map(|e| seq_of(&e.line))
        .max();
    assert_eq!(
        last, last_new,
        "the last lines went through the new transform"
    );
}

#[test]
fn a_removed_source_stops_where_delivery_stopped_and_an_added_one_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let logs = logs_dir(dir.path());
    std::fs::create_dir_all(&logs).unwrap();
    let port = logship_tests::harness::free_port();
    let source = |id: &str| {
        format!(
            "[sources.{id}]\ntype = \"file\"\ninclude = [{}]\nread_from = \"beginning\"\nlabels = {{ from = \"{id}\" }}\n",
            logship_tests::pipeline::toml_str(&logs.join(format!("{id}.log")).to_string_lossy())
        )
    };
    let config = |ids: &[&str]| {
        let mut t = format!(
            "data_dir = {}\n[telemetry]\naddress = \"127.0.0.1:{port}\"\n",
            logship_tests::pipeline::toml_str(&dir.path().join("data").to_string_lossy())
        );
        for id in ids {
            t.push_str(&source(id));
        }
        let inputs: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
        t.push_str(&format!(
            "[sinks.loki]\ntype = \"loki\"\ninputs = [{}]\nendpoint = \"{}\"\nbatch = {{ timeout_ms = 200 }}\n",
            inputs.join(", "),
            loki.url()
        ));
        t
    };
    let (a, b) = (logs.join("a.log"), logs.join("b.log"));
    let from = |id: &str| -> Vec<ReceivedEntry> {
        loki.entries()
            .into_iter()
            .filter(|e| e.label("from") == Some(id))
            .collect()
    };
    append_lines(&a, 1..=100).unwrap();
    append_lines(&b, 1..=100).unwrap();
    let mut agent = Agent::start(&config(&["a", "b"]), dir.path());
    assert!(loki.wait_for_count(200, T));

    agent.reload(&config(&["a"]));
    assert!(wait_reloads(&agent, "success", 1.0), "{}", agent.log());
    let summary = reload_summary(&agent);
    assert!(
        summary.contains("kept [a, loki]") && summary.contains("removed [b]"),
        "{summary}"
    );
    append_lines(&a, 101..=200).unwrap();
    append_lines(&b, 101..=200).unwrap();
    assert!(wait_until(T, || from("a").len() >= 200));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count_seqs(&from("b"), 200).unique,
        100,
        "b is not read while removed"
    );

    agent.reload(&config(&["a", "b"]));
    assert!(wait_reloads(&agent, "success", 2.0), "{}", agent.log());
    assert!(
        reload_summary(&agent).contains("added [b]"),
        "{}",
        agent.log()
    );
    assert!(wait_until(T, || from("b").len() >= 200));
    std::thread::sleep(Duration::from_millis(500));
    for id in ["a", "b"] {
        let c = count_seqs(&from(id), 200);
        assert!(c.is_exactly_once(), "{id}: {c}\n{}", agent.log());
    }
}
