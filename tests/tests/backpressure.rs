//! Loki down for 30 s while ~110 MB of logs are written: the agent's memory stays bounded
//! (it stops reading instead of buffering), and once Loki is back every line arrives once.

use std::time::{Duration, Instant};

use logship_tests::harness::{Agent, serial};
use logship_tests::logwriter::{LogWriter, LogWriterConfig};
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::{count_seqs, wait_for_seqs};

const LINES: u64 = 200_000;
/// ~550-byte lines: 200k of them (~110 MB) would not fit under the RSS bound if buffered.
const PADDING: usize = 300;
const RSS_LIMIT_KIB: u64 = 100 * 1024;
const OUTAGE: Duration = Duration::from_secs(30);

#[test]
fn loki_outage_keeps_memory_bounded_and_loses_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url()).to_toml();
    let path = logs_dir(dir.path()).join("app.log");
    let agent = Agent::start(&cfg, dir.path());
    let baseline = agent.rss_kib().unwrap();

    loki.stop();
    let down_at = Instant::now();
    let mut wcfg = LogWriterConfig::new(&path, LINES, 20_000);
    wcfg.msg_padding = PADDING;
    let writer = LogWriter::start(wcfg);
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut writer_done_at = None;
    while down_at.elapsed() < OUTAGE {
        std::thread::sleep(Duration::from_secs(1));
        let rss = agent.rss_kib().expect("agent died during the outage");
        samples.push((down_at.elapsed(), rss));
        if writer_done_at.is_none() && writer.is_done() {
            writer_done_at = Some(samples.len() - 1);
        }
    }
    assert_eq!(writer.wait().unwrap(), LINES);
    let done_idx = writer_done_at.expect("the writer finished during the outage");
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let at_writer_done = samples[done_idx].1;
    let last = samples.last().map_or(0, |s| s.1);
    println!(
        "RSS KiB: baseline {baseline}, when writing ended {at_writer_done}, end of outage {last}, peak {peak}; samples {:?}",
        samples.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB >= {RSS_LIMIT_KIB} KiB"
    );
    // Once nothing new is written, a bounded agent holds still; one that buffers keeps
    // reading the backlog into memory.
    assert!(
        last <= at_writer_done + 16 * 1024,
        "RSS kept growing after writing stopped: {at_writer_done} → {last} KiB"
    );

    loki.start().unwrap();
    let c = wait_for_seqs(&loki, LINES, Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(2));
    let c = if c.missing.is_empty() {
        loki.with_entries(|e| count_seqs(e, LINES))
    } else {
        c
    };
    println!("after the outage: {c}");
    assert!(c.is_exactly_once(), "{c}");
    drop(agent);
}
