//! Loki's stock limits against the real binary: entries Loki would refuse (too old, too new,
//! too far behind their stream, oversized metadata, over-long lines and label values) arrive
//! repaired between normal ones, each exactly once, nothing refused, and the
//! repairs counted by reason. The receiver enforces Loki's defaults and answers like Loki.

use std::collections::HashMap;
use std::time::Duration;

use logship_tests::harness::Agent;
use logship_tests::logwriter::{append_lines, append_raw};
use logship_tests::loki::{IngestionRate, Limits, LokiReceiver, ReceivedEntry, ReceiverConfig};
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, wait_for_seqs};
use logship_tests::timefmt::{now_nanos, parse_rfc3339_nanos, rfc3339_nanos};

const T: Duration = Duration::from_secs(30);
const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A JSON line with `seq` and `time`, plus `extra` fields (already JSON, with a leading comma).
fn line(seq: u64, time_ns: i64, extra: &str) -> String {
    format!(
        r#"{{"time":"{}","service":"api","level":"info","seq":{seq},"trace_id":"{:032x}"{extra}}}"#,
        rfc3339_nanos(time_ns),
        seq
    )
}

fn write(dir: &std::path::Path, lines: &[String]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    append_raw(&logs_dir(dir).join("app.log"), text.as_bytes()).unwrap();
}

fn seq_of(e: &ReceivedEntry) -> u64 {
    let text = e.line_str();
    let at = text.find("\"seq\":").expect("a seq") + 6;
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

fn repaired(agent: &Agent, reason: &str) -> f64 {
    agent.metric(
        "logship_loki_entries_repaired_total",
        &[("component", "loki"), ("reason", reason)],
    )
}

#[test]
fn entries_loki_would_refuse_arrive_repaired_once_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Loki's default limits, but for label values, which this Loki limits to 1000 bytes (and
    // the sink is told so): the json transform already cuts values at Loki's default 2048.
    let loki = LokiReceiver::with_config(ReceiverConfig {
        limits: Limits {
            max_label_value_length: 1000,
            ..Limits::default()
        },
        ..ReceiverConfig::default()
    })
    .unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url())
        .source("max_line_bytes = 1048576")
        .sink("limits = { max_label_value_length = 1000 }")
        .transform(
            r#"type = "json"
labels = { service = "service", level = "level", x01 = "x01" }
structured_metadata = { trace_id = "trace_id", stack = "stack" }
timestamp = "time""#,
        );
    let now = now_nanos();
    let first = vec![
        line(1, now, ""),
        line(2, now - 30 * DAY, ""),
        line(3, now, ""),
        line(4, now + 2 * HOUR, ""),
        line(5, now, ""),
        line(6, now, &format!(r#","stack":"{}""#, "s".repeat(70_000))),
        line(7, now, &format!(r#","msg":"{}""#, "m".repeat(300_000))),
        line(8, now, &format!(r#","x01":"{}""#, "é".repeat(1500))),
        line(9, now, ""),
        line(10, now, ""),
    ];
    write(dir.path(), &first);
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(10, T), "{} arrived", loki.count());
    // A later push: two hours behind the stream's newest entry, which Loki already holds.
    write(
        dir.path(),
        &[line(11, now - 2 * HOUR, ""), line(12, now_nanos(), "")],
    );
    assert!(loki.wait_for_count(12, T), "{} arrived", loki.count());
    std::thread::sleep(Duration::from_millis(500));

    assert!(
        loki.rejected().is_empty(),
        "Loki refused: {:?}",
        loki.rejected()
            .iter()
            .map(|r| &r.reason)
            .collect::<Vec<_>>()
    );
    let entries = loki.entries();
    let mut by_seq: HashMap<u64, Vec<&ReceivedEntry>> = HashMap::new();
    for e in &entries {
        by_seq.entry(seq_of(e)).or_default().push(e);
    }
    for seq in 1..=12 {
        assert_eq!(
            by_seq.get(&seq).map_or(0, Vec::len),
            1,
            "line {seq} should arrive exactly once"
        );
    }
    let get = |seq: u64| by_seq[&seq][0];
    let original = |seq: u64| {
        get(seq)
            .metadata
            .get("original_timestamp")
            .and_then(|t| parse_rfc3339_nanos(t))
    };
    let after = now_nanos();
    for (seq, written) in [
        (2, now - 30 * DAY),
        (4, now + 2 * HOUR),
        (11, now - 2 * HOUR),
    ] {
        let e = get(seq);
        assert_eq!(original(seq), Some(written), "line {seq}: {:?}", e.metadata);
        assert!(
            e.timestamp_ns >= now - MINUTE && e.timestamp_ns <= after,
            "line {seq} should carry the time it was read, not {}",
            rfc3339_nanos(e.timestamp_ns)
        );
        assert!(
            e.line_str().contains(&rfc3339_nanos(written)),
            "the line itself is unchanged"
        );
    }
    for seq in [1, 3, 5, 9, 10] {
        assert_eq!(get(seq).timestamp_ns, now, "line {seq} keeps its own time");
        assert_eq!(original(seq), None);
    }
    // Metadata cut to Loki's 64 KB, trace_id kept whole.
    let six = get(6);
    let size: usize = six.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(size, 64 * 1024, "{:?}", six.metadata.keys());
    assert_eq!(six.metadata["trace_id"], format!("{:032x}", 6));
    // The line cut to 256 KB; the label value cut to 1000 bytes on a character boundary.
    assert_eq!(get(7).line.len(), 256 * 1024);
    let x01 = &get(8).labels["x01"];
    assert_eq!(x01.len(), 1000);
    assert!(x01.chars().all(|c| c == 'é'));
    for (reason, n) in [
        ("timestamp_too_old", 1.0),
        ("timestamp_too_new", 1.0),
        ("entry_too_far_behind", 1.0),
        ("structured_metadata_too_large", 1.0),
        ("line_too_long", 1.0),
        ("label_value_too_long", 1.0),
    ] {
        assert_eq!(repaired(&agent, reason), n, "{reason}\n{}", agent.metrics());
    }
    assert_eq!(
        agent.metric(
            "logship_component_discarded_events_total",
            &[("component", "loki")]
        ),
        0.0
    );
}

/// With the repairs switched off, Loki's refusals are what the user gets: counted, not
/// retried, and the valid entries of the same push stored.
#[test]
fn repairs_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url())
        .sink("limits = { repair_timestamps = false, reject_old_samples_max_age = \"7d\" }");
    let now = now_nanos();
    write(
        dir.path(),
        &[
            line(1, now, ""),
            line(2, now - 30 * DAY, ""),
            line(3, now, ""),
        ],
    );
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_accepted_or_rejected(3, T));
    let stored: Vec<u64> = loki.entries().iter().map(seq_of).collect();
    assert_eq!(stored, vec![1, 3]);
    assert_eq!(loki.rejected().len(), 1);
    assert!(loki.rejected()[0].reason.contains("timestamp too old"));
    assert!(agent.wait_for_metric(
        "logship_component_discarded_events_total",
        &[("component", "loki")],
        1.0,
        T
    ));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        agent.metric(
            "logship_component_discarded_events_total",
            &[("component", "loki")]
        ),
        1.0,
        "only the refused entry counts as discarded"
    );
    assert_eq!(repaired(&agent, "timestamp_too_old"), 0.0);
}

/// Loki's ingestion rate limit is a speed, not an error: a backlog several times Loki's burst
/// arrives whole and without duplicates, and after the first 429s the sink paces itself to
/// what Loki accepts instead of retrying at full concurrency.
#[test]
fn a_backlog_under_lokis_rate_limit_arrives_whole_with_few_429s() {
    const LINES: u64 = 170_000; // ~32 MB of ~190-byte lines
    let dir = tempfile::tempdir().unwrap();
    // Half of Loki's default rate, so the test takes ~20 s rather than ~75 s for the same
    // ratio of backlog to burst as 300 MB at 4 MB/s.
    let rate = IngestionRate {
        bytes_per_sec: 2.0 * 1024.0 * 1024.0,
        burst: 3.0 * 1024.0 * 1024.0,
    };
    let loki = LokiReceiver::with_config(ReceiverConfig {
        ingestion_rate: Some(rate),
        ..ReceiverConfig::default()
    })
    .unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=LINES).unwrap();
    let bytes = std::fs::metadata(logs_dir(dir.path()).join("app.log"))
        .unwrap()
        .len();
    let started = std::time::Instant::now();
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    let c = wait_for_seqs(&loki, LINES, Duration::from_secs(120));
    let took = started.elapsed();
    assert!(c.missing.is_empty(), "not everything arrived: {c}");
    std::thread::sleep(Duration::from_secs(1));
    let c = loki.with_entries(|e| count_seqs(e, LINES));
    assert!(c.is_exactly_once(), "{c}");
    let status = |code: &str| {
        agent.metric(
            "logship_loki_requests_total",
            &[("component", "loki"), ("status", code)],
        )
    };
    let (ok, limited) = (status("204"), status("429"));
    let paced = agent.metric(
        "logship_loki_rate_limit_bytes_per_second",
        &[("component", "loki")],
    );
    println!(
        "rate-limited backlog: {bytes} bytes, {LINES} lines in {took:?}; {ok} pushes accepted, {limited} answered 429; pacing at {paced} B/s"
    );
    assert!(
        limited >= 1.0,
        "Loki's limit was never reached: the test shows nothing"
    );
    assert!(
        limited <= 30.0,
        "{limited} pushes were answered 429 ({ok} accepted): the sink should follow Loki's rate"
    );
    assert!(
        paced > 0.0 && paced < 2.0 * rate.bytes_per_sec,
        "the sink paces near Loki's rate: {paced}"
    );
}

/// A Loki stricter than the sink was told (one day of history, 1000 bytes of metadata, 3000
/// of line, a 20-minute chunk age) refuses entries the sink let through. Its 400 names them; the
/// sink repairs them to the limits the answer states and sends them once more, alone: every
/// line arrives exactly once, and the entries Loki stored are never sent again.
#[test]
fn entries_a_stricter_loki_refuses_are_repaired_and_sent_once_more_alone() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::with_config(ReceiverConfig {
        limits: Limits {
            reject_old_samples_max_age: Duration::from_secs(86_400),
            max_structured_metadata_size: 1000,
            max_line_size: 3000,
            max_chunk_age: Duration::from_secs(20 * 60),
            ..Limits::default()
        },
        ..ReceiverConfig::default()
    })
    .unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).transform(
        r#"type = "json"
labels = { service = "service", level = "level" }
structured_metadata = { trace_id = "trace_id", stack = "stack" }
timestamp = "time""#,
    );
    let now = now_nanos();
    write(
        dir.path(),
        // The old line first: after a newer one the sink itself would find it more than an
        // hour behind its stream and re-stamp it before sending.
        &[
            line(2, now - 2 * DAY, ""),
            line(1, now, ""),
            line(3, now, ""),
            line(4, now, &format!(r#","stack":"{}""#, "s".repeat(2000))),
            line(5, now, &format!(r#","msg":"{}""#, "m".repeat(3500))),
            line(6, now, ""),
        ],
    );
    let agent = Agent::start(&cfg.to_toml(), dir.path());
    assert!(loki.wait_for_count(6, T), "{} arrived", loki.count());
    // Fifteen minutes behind the stream's newest entry: within the sink's hour, beyond this
    // Loki's ten minutes (the ingester's refusal, to the nanosecond).
    write(
        dir.path(),
        &[line(7, now - 15 * MINUTE, ""), line(8, now_nanos(), "")],
    );
    assert!(loki.wait_for_count(8, T), "{} arrived", loki.count());
    std::thread::sleep(Duration::from_millis(500));

    let entries = loki.entries();
    let seqs: Vec<u64> = entries.iter().map(seq_of).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=8).collect::<Vec<_>>(),
        "each line exactly once"
    );
    let refused: Vec<u64> = loki.rejected().iter().map(|r| seq_of(&r.entry)).collect();
    let mut refused_sorted = refused.clone();
    refused_sorted.sort_unstable();
    assert_eq!(
        refused_sorted,
        vec![2, 4, 5, 7],
        "refused once each: {refused:?}"
    );
    // Every entry went out once, and the refused ones once more: nothing Loki stored was
    // sent again.
    let sent: usize = loki.requests().iter().map(|r| r.entries).sum();
    assert_eq!(sent, 8 + 4, "{:?}", loki.requests());

    let get = |seq: u64| &entries[seqs.iter().position(|&s| s == seq).unwrap()];
    let after = now_nanos();
    for (seq, written) in [(2, now - 2 * DAY), (7, now - 15 * MINUTE)] {
        let e = get(seq);
        assert_eq!(
            e.metadata
                .get("original_timestamp")
                .and_then(|t| parse_rfc3339_nanos(t)),
            Some(written),
            "line {seq}"
        );
        assert!(
            e.timestamp_ns > now && e.timestamp_ns <= after,
            "line {seq}"
        );
    }
    let four = get(4);
    let size: usize = four.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(size, 1000, "metadata cut to the limit Loki stated");
    assert_eq!(four.metadata["trace_id"], format!("{:032x}", 4));
    assert_eq!(get(5).line.len(), 3000, "line cut to the limit Loki stated");

    for reason in [
        "timestamp_too_old",
        "structured_metadata_too_large",
        "line_too_long",
        "entry_too_far_behind",
    ] {
        assert_eq!(
            repaired(&agent, reason),
            1.0,
            "{reason}\n{}",
            agent.metrics()
        );
    }
    assert_eq!(
        agent.metric(
            "logship_component_discarded_events_total",
            &[("component", "loki")]
        ),
        0.0
    );
    assert_eq!(
        agent.metric(
            "logship_component_sent_events_total",
            &[("component", "loki")]
        ),
        8.0
    );
}
