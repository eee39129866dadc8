//! Every file is read, at node scale: files that start alike, brace and `**` globs, a glob
//! that matches nothing yet, a file deleted before it was read, more files than
//! `open_files_limit`, and a burst of creations that overflows inotify. Each test counts what
//! arrived: every line once.

use std::time::Duration;

use logship_tests::harness::{Agent, serial, wait_until};
use logship_tests::logwriter::{append_lines, append_raw};
use logship_tests::loki::{Fault, LokiReceiver, Mode};
use logship_tests::pipeline::{PipelineConfig, logs_dir, toml_str};
use logship_tests::seqs::{SeqCounts, count_seqs, wait_for_seqs};

/// Waits for `1..=n` and then a little longer, so late duplicates would show.
fn settle(loki: &LokiReceiver, n: u64) -> SeqCounts {
    let c = wait_for_seqs(loki, n, Duration::from_secs(60));
    if !c.missing.is_empty() {
        return c;
    }
    std::thread::sleep(Duration::from_millis(700));
    loki.with_entries(|e| count_seqs(e, n))
}

#[test]
fn files_that_start_with_the_same_line_are_each_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).to_toml();
    let logs = logs_dir(dir.path());
    let banner = b"=== service starting, version 1.2.3 ===\n";
    let (a, b, c) = (logs.join("a.log"), logs.join("b.log"), logs.join("c.log"));
    for f in [&a, &b] {
        append_raw(f, banner).unwrap();
    }
    append_lines(&a, 1..=100).unwrap();
    append_lines(&b, 1001..=1100).unwrap();
    let _agent = Agent::start(&cfg, dir.path());
    // A third one appears while the agent runs; then all three are written in turns.
    append_raw(&c, banner).unwrap();
    for round in 0..9u64 {
        append_lines(&a, 101 + round * 100..=200 + round * 100).unwrap();
        append_lines(&b, 1101 + round * 100..=1200 + round * 100).unwrap();
        append_lines(&c, 2001 + round * 100..=2100 + round * 100).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let wanted: Vec<u64> = (1..=2900).collect();
    assert!(
        wait_until(Duration::from_secs(60), || loki.count() >= wanted.len() + 3),
        "only {} entries arrived",
        loki.count()
    );
    std::thread::sleep(Duration::from_millis(700));
    let entries = loki.entries();
    let mut seen = std::collections::BTreeMap::new();
    let mut banners = 0;
    for e in &entries {
        match logship_tests::seqs::seq_of(&e.line) {
            Some(s) => *seen.entry(s).or_insert(0) += 1,
            None => {
                assert_eq!(e.line, &banner[..banner.len() - 1]);
                banners += 1;
            }
        }
    }
    let missing: Vec<u64> = wanted
        .iter()
        .copied()
        .filter(|s| !seen.contains_key(s))
        .collect();
    let duplicated: Vec<u64> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} lines, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(duplicated.is_empty(), "duplicated: {duplicated:?}");
    assert_eq!(seen.len(), wanted.len());
    assert_eq!(banners, 3, "each file's first line once");
}

#[test]
fn brace_and_double_star_globs_match_as_validate_says() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let logs = logs_dir(dir.path());
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    cfg.include = vec![format!("{}/**/*.{{log,txt}}", logs.display())];
    let cfg = cfg.source(&format!(
        "exclude = [{}]",
        toml_str(&format!("{}/**/skip-*", logs.display()))
    ));
    let text = cfg.to_toml();
    let config_file = dir.path().join("check.toml");
    std::fs::write(&config_file, &text).unwrap();
    let v = logship_tests::harness::run_cli(
        &["validate", "--config", config_file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(
        v.status.success(),
        "validate refused it: {}{}",
        v.stdout,
        v.stderr
    );

    append_lines(&logs.join("a.log"), 1..=100).unwrap();
    std::fs::create_dir_all(logs.join("x/y")).unwrap();
    append_lines(&logs.join("x/b.txt"), 101..=200).unwrap();
    append_lines(&logs.join("x/y/c.log"), 201..=300).unwrap();
    append_lines(&logs.join("x/y/d.gz"), 9001..=9100).unwrap();
    append_lines(&logs.join("x/skip-e.log"), 9101..=9200).unwrap();
    let _agent = Agent::start(&text, dir.path());
    // A directory created later, deeper, is found by its inotify event.
    std::fs::create_dir_all(logs.join("late/deeper")).unwrap();
    append_lines(&logs.join("late/deeper/f.log"), 301..=400).unwrap();
    let c = settle(&loki, 400);
    assert!(c.is_exactly_once(), "{c}");
    assert_eq!(c.out_of_range, 0, "a .gz or excluded file was read: {c}");
}

#[test]
fn a_glob_that_matches_nothing_yet_is_named_and_picked_up_later() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let later = dir.path().join("later");
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    let pattern = format!("{}/*.log", later.display());
    cfg.include.push(pattern.clone());
    append_lines(&logs_dir(dir.path()).join("a.log"), 1..=50).unwrap();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(
        wait_for_seqs(&loki, 50, Duration::from_secs(30))
            .missing
            .is_empty()
    );
    let log = agent.log();
    assert!(
        log.lines()
            .any(|l| l.contains("no file matches") && l.contains(&pattern)),
        "no warning naming {pattern}:\n{log}"
    );
    // Its directory does not exist yet; it appears, then a file in it.
    std::fs::create_dir_all(&later).unwrap();
    append_lines(&later.join("b.log"), 51..=100).unwrap();
    let c = settle(&loki, 100);
    assert!(c.is_exactly_once(), "{c}");
}

#[test]
fn a_relative_glob_is_refused_by_validate_and_by_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    cfg.include = vec!["logs/*.log".into()];
    let path = dir.path().join("relative.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let run = logship_tests::harness::run_cli(
        &["validate", "--config", path.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stderr.contains("absolute path"), "{}", run.stderr);
    assert!(
        run.stderr.contains("relative.toml:"),
        "names the file: {}",
        run.stderr
    );
}

#[test]
fn a_file_deleted_before_it_was_read_is_still_read_whole() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    // Loki refuses everything for now: the agent reads until its queues are full, then waits.
    loki.set_mode(Mode::Fault(Fault::Status500));
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).to_toml();
    let path = logs_dir(dir.path()).join("big.log");
    const N: u64 = 150_000; // ~25 MB: far more than the pipeline holds
    for chunk in (1..=N).collect::<Vec<_>>().chunks(10_000) {
        append_lines(&path, chunk[0]..=chunk[chunk.len() - 1]).unwrap();
    }
    let agent = Agent::start(&cfg, dir.path());
    assert!(
        agent.wait_for_metric(
            "logship_loki_retries_total",
            &[],
            1.0,
            Duration::from_secs(30)
        ),
        "the agent never tried to push"
    );
    std::thread::sleep(Duration::from_secs(1));
    // logrotate with `rotate 0`, or kubelet cleaning up: the file goes away unread.
    std::fs::remove_file(&path).unwrap();
    assert!(
        agent.wait_for_metric(
            "logship_files_deleted_unread_bytes",
            &[("component", "app")],
            1_000_000.0,
            Duration::from_secs(10)
        ),
        "the unread bytes of the deleted file are not reported:\n{}",
        agent.metrics()
    );
    loki.set_mode(Mode::Normal);
    let c = wait_for_seqs(&loki, N, Duration::from_secs(120));
    assert!(c.missing.is_empty(), "{c}");
    assert!(
        wait_until(Duration::from_secs(10), || agent.metric(
            "logship_files_deleted_unread_bytes",
            &[("component", "app")]
        ) == 0.0),
        "the deleted file's descriptor was not released"
    );
    std::thread::sleep(Duration::from_millis(700));
    let c = loki.with_entries(|e| count_seqs(e, N));
    assert!(c.is_exactly_once(), "{c}");
}

#[test]
fn more_files_than_open_files_limit_are_all_read_and_followed() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url())
        .source("open_files_limit = 20")
        .to_toml();
    let logs = logs_dir(dir.path());
    const FILES: u64 = 200;
    for f in 0..FILES {
        append_lines(&logs.join(format!("f{f}.log")), f * 100 + 1..=f * 100 + 50).unwrap();
    }
    let agent = Agent::start(&cfg, dir.path());
    let mut most_open = 0.0f64;
    let first_half = wait_until(Duration::from_secs(60), || {
        let m = agent.metrics();
        most_open = most_open.max(logship_tests::prom::sum(&m, "logship_files_watched", &[]));
        loki.count() >= (FILES * 50) as usize
    });
    assert!(
        first_half,
        "only {} of {} lines arrived",
        loki.count(),
        FILES * 50
    );
    // Every file grows again: closed ones are reopened from where they stopped.
    for f in 0..FILES {
        append_lines(
            &logs.join(format!("f{f}.log")),
            f * 100 + 51..=f * 100 + 100,
        )
        .unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(60), || {
            let m = agent.metrics();
            most_open = most_open.max(logship_tests::prom::sum(&m, "logship_files_watched", &[]));
            loki.count() >= (FILES * 100) as usize
        }),
        "only {} of {} lines arrived",
        loki.count(),
        FILES * 100
    );
    std::thread::sleep(Duration::from_millis(700));
    let c = loki.with_entries(|e| count_seqs(e, FILES * 100));
    assert!(c.is_exactly_once(), "{c}");
    assert!(
        most_open <= 20.0,
        "{most_open} files open at once, limit 20"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
        .unwrap()
        .count();
    assert!(
        fds < 60,
        "{fds} descriptors held with open_files_limit = 20"
    );
}

/// Lowers the kernel's inotify queue for instances created while it lives (root only), so a
/// burst of creations overflows it; restores the old value on drop.
struct SmallInotifyQueue(Option<String>);

impl SmallInotifyQueue {
    const PATH: &'static str = "/proc/sys/fs/inotify/max_queued_events";

    fn new(events: u32) -> Self {
        let old = std::fs::read_to_string(Self::PATH).ok();
        if std::fs::write(Self::PATH, events.to_string()).is_err() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "CI must run as root to shrink the inotify queue");
            eprintln!("not root: the burst may not overflow inotify");
            return Self(None);
        }
        Self(old)
    }
}

impl Drop for SmallInotifyQueue {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = std::fs::write(Self::PATH, old.trim());
        }
    }
}

#[test]
fn a_burst_that_overflows_inotify_still_finds_every_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let logs = logs_dir(dir.path());
    let cfg = PipelineConfig::new(dir.path(), &loki.url())
        // The safety rescan is slow on purpose: the overflow, not the timer, must find them.
        .source("glob_interval_ms = 600000")
        .to_toml();
    let agent = {
        let _small = SmallInotifyQueue::new(64);
        Agent::start(&cfg, dir.path())
    };
    const FILES: u64 = 3000;
    for f in 0..FILES {
        append_lines(&logs.join(format!("burst-{f}.log")), f + 1..=f + 1).unwrap();
    }
    let c = settle(&loki, FILES);
    assert!(c.is_exactly_once(), "{c}");
    assert!(
        agent.metric("logship_file_rescans_total", &[("reason", "overflow")]) >= 1.0
            || std::fs::read_to_string(SmallInotifyQueue::PATH).is_err(),
        "the burst did not overflow inotify, so the test proved nothing:\n{}",
        agent.metrics()
    );
}

#[test]
fn a_closed_file_renamed_out_of_the_globs_is_still_read_to_its_end() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let logs = logs_dir(dir.path());
    let mut cfg = PipelineConfig::new(dir.path(), &loki.url());
    cfg.include = vec![format!("{}/*.log", logs.display())];
    // One descriptor: of two quiet files, at least one is closed.
    let cfg = cfg.source("open_files_limit = 1").to_toml();
    let (a, b) = (logs.join("a.log"), logs.join("b.log"));
    append_lines(&a, 1..=100).unwrap();
    append_lines(&b, 101..=200).unwrap();
    let agent = Agent::start(&cfg, dir.path());
    assert!(
        wait_for_seqs(&loki, 200, Duration::from_secs(30))
            .missing
            .is_empty()
    );
    assert!(
        agent.metric("logship_files_watched", &[("component", "app")]) <= 1.0,
        "open_files_limit = 1 not kept"
    );
    // logrotate `create` with a rotated name the globs do not match; the writers append a
    // last few lines to the renamed files before reopening their logs.
    let (a_old, b_old) = (logs.join("a.rotated"), logs.join("b.rotated"));
    std::fs::rename(&a, &a_old).unwrap();
    std::fs::rename(&b, &b_old).unwrap();
    append_lines(&a_old, 201..=250).unwrap();
    append_lines(&b_old, 251..=300).unwrap();
    append_lines(&a, 301..=350).unwrap();
    append_lines(&b, 351..=400).unwrap();
    let c = settle(&loki, 400);
    assert!(c.is_exactly_once(), "{c}");
}
