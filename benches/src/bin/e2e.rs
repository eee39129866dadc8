//! The end-to-end bench: file → json transform → Loki sink → a local receiver that only
//! acknowledges. Prints lines/s, MB/s, the agent's CPU seconds and its peak RSS.
//!
//! ```text
//! cargo run --release -p logship-benches --bin e2e -- [--lines 1000000] [--batch-bytes N]
//! cargo run --release -p logship-benches --bin e2e -- --latency [--seconds 10]
//! ```
//!
//! `--latency` instead writes 10,000 lines a second (in bursts of 100 every 10 ms) for
//! `--seconds`, each stamped with the time it was written, through the same pipeline with
//! default batching, and prints the write-to-acknowledgement latency (p50, p90, p99, max)
//! measured at the receiver.
//!
//! `--batch-bytes N` sets the sink's `batch.max_bytes` instead of leaving the default, to
//! measure what the batch size costs.
//!
//! The agent is the release `logship` binary (built first if missing), run as a process with
//! the README's file-to-Loki config. Its CPU time and peak RSS come from `/proc/<pid>` just
//! before it is stopped, so the receiver's own work is not counted.

use std::path::PathBuf;
use std::process::ExitCode;

use logship_benches::{agent, workload};
use logship_tests::loki::{LokiReceiver, Mode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.iter().any(|a| a == "--latency") {
        latency(logship_benches::arg("--seconds").unwrap_or(10))
    } else {
        run(logship_benches::lines_arg().unwrap_or(1_000_000))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(lines: usize) -> Result<(), String> {
    let bin = agent::release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let file = logs.join("app.log");
    let bytes = workload::write_json_lines(&file, lines).map_err(|e| e.to_string())?;

    let receiver = LokiReceiver::new().map_err(|e| e.to_string())?;
    receiver.set_mode(Mode::AckOnly);
    let config_path = write_config(
        dir.path(),
        &logs,
        &receiver,
        logship_benches::arg("--batch-bytes"),
    )?;
    let m = agent::run_until_delivered(&bin, &config_path, &receiver, lines)?;
    println!(
        "e2e file -> json -> loki (protobuf+snappy), {lines} lines, {:.1} MB",
        bytes as f64 / 1e6
    );
    m.print("  ", lines, bytes);
    Ok(())
}

/// The README's file-to-Loki config over `logs`, shipping to `receiver`, with the sink's
/// `batch.max_bytes` set when `batch_bytes` is.
fn write_config(
    dir: &std::path::Path,
    logs: &std::path::Path,
    receiver: &LokiReceiver,
    batch_bytes: Option<usize>,
) -> Result<PathBuf, String> {
    let port = agent::free_port()?;
    let config = format!(
        r#"data_dir = "{data}"
[telemetry]
address = "127.0.0.1:{port}"
[sources.app]
type = "file"
include = ["{logs}/*.log*"]
read_from = "beginning"
[transforms.parse]
type = "json"
inputs = ["app"]
labels = {{ service = "service", level = "level" }}
structured_metadata = {{ trace_id = "trace_id", span_id = "span_id" }}
timestamp = "time"
[sinks.loki]
type = "loki"
inputs = ["parse"]
endpoint = "{endpoint}"
labels = {{ job = "app", env = "bench" }}
"#,
        data = dir.join("data").display(),
        logs = logs.display(),
        endpoint = receiver.url(),
    );
    let config = match batch_bytes {
        Some(n) => format!("{config}[sinks.loki.batch]\nmax_bytes = {n}\n"),
        None => config,
    };
    let config_path: PathBuf = dir.join("logship.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    Ok(config_path)
}

/// Write-to-acknowledgement latency at a steady 10,000 lines/s with default batching.
fn latency(seconds: u64) -> Result<(), String> {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    const PER_TICK: usize = 100;
    const TICK: Duration = Duration::from_millis(10);
    let bin = agent::release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let file_path = logs.join("app.log");
    let mut file = std::fs::File::create(&file_path).map_err(|e| e.to_string())?;
    let receiver = LokiReceiver::new().map_err(|e| e.to_string())?;
    let config_path = write_config(
        dir.path(),
        &logs,
        &receiver,
        logship_benches::arg("--batch-bytes"),
    )?;
    let child = std::process::Command::new(&bin)
        .arg("--config")
        .arg(&config_path)
        .env("LOGSHIP_LOG", "warn")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut proc = agent::Process::new(child);
    std::thread::sleep(Duration::from_secs(1));
    let total = seconds as usize * 100 * PER_TICK;
    let start = Instant::now();
    let mut written = 0;
    let mut text = String::new();
    while written < total {
        text.clear();
        for _ in 0..PER_TICK {
            let now = logship_tests::timefmt::rfc3339_nanos(logship_tests::timefmt::now_nanos());
            text.push_str(&format!(
                r#"{{"time":"{now}","level":"info","service":"api","msg":"latency probe","seq":{written}}}"#
            ));
            text.push('\n');
            written += 1;
        }
        file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        let next = start + TICK * (written / PER_TICK) as u32;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let arrived = receiver.wait_for_count(total, Duration::from_secs(60));
    proc.terminate();
    if !arrived {
        return Err(format!(
            "only {} of {total} lines arrived",
            receiver.count()
        ));
    }
    let mut ms: Vec<f64> = receiver.with_entries(|entries| {
        entries
            .iter()
            .map(|e| (e.received_ns - e.timestamp_ns) as f64 / 1e6)
            .collect()
    });
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
    println!(
        "e2e latency, {total} lines at 10,000/s, default batching: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
