//! The end-to-end bench: file → json transform → Loki sink → a local receiver that only
//! acknowledges. Prints lines/s, MB/s, the agent's CPU seconds and its peak RSS.
//!
//! ```text
//! cargo run --release -p logship-benches --bin e2e -- [--lines 1000000]
//! ```
//!
//! The agent is the release `logship` binary (built first if missing), run as a process with
//! the README's file-to-Loki config. Its CPU time and peak RSS come from `/proc/<pid>` just
//! before it is stopped, so the receiver's own work is not counted.

use std::path::PathBuf;
use std::process::ExitCode;

use logship_benches::{agent, workload};
use logship_tests::loki::{LokiReceiver, Mode};

fn main() -> ExitCode {
    let lines = logship_benches::lines_arg().unwrap_or(1_000_000);
    match run(lines) {
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
        data = dir.path().join("data").display(),
        logs = logs.display(),
        endpoint = receiver.url(),
    );
    let config_path: PathBuf = dir.path().join("logship.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;

    let m = agent::run_until_delivered(&bin, &config_path, &receiver, lines)?;
    println!(
        "e2e file -> json -> loki (protobuf+snappy), {lines} lines, {:.1} MB",
        bytes as f64 / 1e6
    );
    m.print("  ", lines, bytes);
    Ok(())
}
