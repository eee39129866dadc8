//! The docker end-to-end bench: one container's log shipped to a local receiver that only
//! acknowledges, read two ways — through the Docker API (`type = "docker"`) and straight
//! from its json-file log (`type = "file"`, `decoder = "docker"`). Prints lines/s, MB/s, the
//! agent's CPU seconds and peak RSS for each.
//!
//! ```text
//! scripts/docker-env.sh start
//! cargo run --release -p logship-benches --bin docker_bench -- [--lines 500000]
//! ```
//!
//! The container `cat`s a file of bench lines (the same workload as the `e2e` bench) and
//! exits before the agent starts, so both cases read the same finished log and the container's
//! own writing speed does not limit the measurement.

use std::path::Path;
use std::process::{Command, ExitCode};

use logship_benches::{agent, workload};
use logship_tests::loki::{LokiReceiver, Mode};

const IMAGE: &str = "logship-test-busybox:latest";

fn main() -> ExitCode {
    let lines = logship_benches::lines_arg().unwrap_or(500_000);
    match run(lines) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docker bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A container removed when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

fn run(lines: usize) -> Result<(), String> {
    docker(&["image", "inspect", IMAGE])
        .map_err(|e| format!("{e}\n(start the engine with scripts/docker-env.sh start)"))?;
    let bin = agent::release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("workload.log");
    let bytes = workload::write_json_lines(&file, lines).map_err(|e| e.to_string())?;

    let name = format!("logship-bench-{}", std::process::id());
    let mount = format!("{}:/w.log:ro", file.display());
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-v",
        &mount,
        IMAGE,
        "cat",
        "/w.log",
    ])?;
    let _container = Container(name.clone());
    docker(&["wait", &name])?;
    println!(
        "docker bench: one container wrote {lines} lines, {:.1} MB (json-file log ready)",
        bytes as f64 / 1e6
    );

    let api_source = format!("type = \"docker\"\ninclude_containers = [\"{name}\"]\n");
    let file_source = format!(
        "type = \"file\"\ninclude = [\"/var/lib/docker/containers/{id}/*-json.log\"]\n\
         decoder = \"docker\"\nread_from = \"beginning\"\n"
    );
    for (case, source) in [("api", api_source), ("file", file_source)] {
        measure(&bin, dir.path(), case, &source, lines, bytes)?;
    }
    Ok(())
}

fn measure(
    bin: &Path,
    dir: &Path,
    case: &str,
    source: &str,
    lines: usize,
    bytes: u64,
) -> Result<(), String> {
    let receiver = LokiReceiver::new().map_err(|e| e.to_string())?;
    receiver.set_mode(Mode::AckOnly);
    let port = agent::free_port()?;
    let config = format!(
        r#"data_dir = "{data}"
[telemetry]
address = "127.0.0.1:{port}"
[sources.app]
{source}
[transforms.parse]
type = "json"
inputs = ["app"]
labels = {{ service = "service", level = "level" }}
structured_metadata = {{ trace_id = "trace_id", span_id = "span_id" }}
[sinks.loki]
type = "loki"
inputs = ["parse"]
endpoint = "{endpoint}"
labels = {{ job = "app", env = "bench" }}
"#,
        data = dir.join(format!("data-{case}")).display(),
        endpoint = receiver.url(),
    );
    let config_path = dir.join(format!("logship-{case}.toml"));
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let m = agent::run_until_delivered(bin, &config_path, &receiver, lines)
        .map_err(|e| format!("{case}: {e}"))?;
    println!("{case:>4}: docker -> json -> loki, {lines} lines");
    m.print("      ", lines, bytes);
    Ok(())
}
