//! The node-scale bench: many small files, most of them quiet, as on a Kubernetes node.
//!
//! ```text
//! cargo run --release -p logship-benches --bin files_bench -- [--files 2000] [--lines 200]
//!     [--idle-secs 20] [--trickle-files 50] [--trickle-secs 20] [--pods | --kubernetes]
//!     [--open-files-limit N]
//! ```
//!
//! Phases, each measured from `/proc/<pid>` of the release `logship` binary:
//! 1. **catch-up**: `--files` files of `--lines` JSON lines each exist before the agent
//!    starts; CPU seconds and wall time until the receiver has every line;
//! 2. **idle**: nothing is written for `--idle-secs`; CPU as a percentage of one core;
//! 3. **trickle**: one line a second into each of `--trickle-files` files for
//!    `--trickle-secs`; CPU percentage, and that every trickled line arrived.
//!
//! Then peak RSS (`VmHWM`) and the descriptors the agent holds. `--pods` lays the files out
//! as `/var/log/pods` does (`<ns>_<pod>_<uid>/<container>/0.log`, one directory each) instead
//! of one flat directory. `--kubernetes` writes that layout in CRI format and reads it with the
//! `kubernetes_logs` source (`metadata = false`: no API here), so the bench covers its
//! admission and labelling. `LOGSHIP_BIN` measures another build.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use logship_benches::{agent, arg, workload};
use logship_tests::loki::{LokiReceiver, Mode};

struct Args {
    files: usize,
    lines: usize,
    idle_secs: u64,
    trickle_files: usize,
    trickle_secs: u64,
    pods: bool,
    kubernetes: bool,
    open_files_limit: Option<usize>,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().collect();
    let args = Args {
        files: arg("--files").unwrap_or(2000),
        lines: arg("--lines").unwrap_or(200),
        idle_secs: arg("--idle-secs").unwrap_or(20),
        trickle_files: arg("--trickle-files").unwrap_or(50),
        trickle_secs: arg("--trickle-secs").unwrap_or(20),
        pods: raw.iter().any(|a| a == "--pods" || a == "--kubernetes"),
        kubernetes: raw.iter().any(|a| a == "--kubernetes"),
        open_files_limit: arg("--open-files-limit"),
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("files bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn file_path(logs: &Path, i: usize, pods: bool) -> PathBuf {
    if pods {
        logs.join(format!("bench_pod-{i}_{i:08x}-uid"))
            .join("app")
            .join("0.log")
    } else {
        logs.join(format!("app-{i}.log"))
    }
}

fn run(args: &Args) -> Result<(), String> {
    let bin = agent::release_binary()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let logs = dir.path().join("logs");
    let mut bytes = 0;
    let mut paths = Vec::with_capacity(args.files);
    let prefix = if args.kubernetes {
        workload::CRI_PREFIX
    } else {
        ""
    };
    for i in 0..args.files {
        let path = file_path(&logs, i, args.pods);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        bytes += workload::write_lines_seeded(&path, i * args.lines, args.lines, i as u64, prefix)
            .map_err(|e| e.to_string())?;
        paths.push(path);
    }
    let source = if args.kubernetes {
        format!(
            "type = \"kubernetes_logs\"\nmetadata = false\npods_dir = \"{}\"",
            logs.display()
        )
    } else if args.pods {
        format!(
            "type = \"file\"\ninclude = [\"{}/*/*/*.log\"]",
            logs.display()
        )
    } else {
        format!("type = \"file\"\ninclude = [\"{}/*.log\"]", logs.display())
    };
    let receiver = LokiReceiver::new().map_err(|e| e.to_string())?;
    receiver.set_mode(Mode::AckOnly);
    let port = agent::free_port()?;
    let config = format!(
        r#"data_dir = "{data}"
[telemetry]
address = "127.0.0.1:{port}"
[sources.app]
{source}
{limit}
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
labels = {{ job = "app" }}
"#,
        data = dir.path().join("data").display(),
        endpoint = receiver.url(),
        limit = args
            .open_files_limit
            .map(|n| format!("open_files_limit = {n}"))
            .unwrap_or_default(),
    );
    let config_path = dir.path().join("logship.toml");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;

    let total = args.files * args.lines;
    let started = Instant::now();
    let child = Command::new(&bin)
        .arg("--config")
        .arg(&config_path)
        .env("LOGSHIP_LOG", "warn")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let proc = agent::Process::new(child);
    if !receiver.wait_for_count(total, Duration::from_secs(600)) {
        return Err(format!(
            "only {} of {total} lines arrived",
            receiver.count()
        ));
    }
    let catch_up_wall = started.elapsed();
    let after_catch_up = proc.usage().ok_or("cannot read /proc")?;

    std::thread::sleep(Duration::from_secs(args.idle_secs));
    let after_idle = proc.usage().ok_or("cannot read /proc")?;
    let idle_pct = percent(
        after_idle.cpu_seconds() - after_catch_up.cpu_seconds(),
        args.idle_secs,
    );

    let trickle_started = Instant::now();
    let mut line = String::new();
    let mut rng = 0x1234_5678u64;
    let mut next = total;
    for second in 0..args.trickle_secs {
        for path in paths.iter().take(args.trickle_files) {
            line.clear();
            line.push_str(prefix);
            workload::json_line(next, &mut rng, &mut line);
            line.push('\n');
            next += 1;
            let mut f = OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(|e| e.to_string())?;
            f.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        }
        let until = trickle_started + Duration::from_secs(second + 1);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    }
    let after_trickle = proc.usage().ok_or("cannot read /proc")?;
    let trickle_pct = percent(
        after_trickle.cpu_seconds() - after_idle.cpu_seconds(),
        args.trickle_secs,
    );
    let all = receiver.wait_for_count(next, Duration::from_secs(30));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", proc.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    let usage = proc.usage().ok_or("cannot read /proc")?;

    println!(
        "files bench: {} files x {} lines ({:.1} MB){}",
        args.files,
        args.lines,
        bytes as f64 / 1e6,
        if args.kubernetes {
            ", /var/log/pods in CRI format, kubernetes_logs source"
        } else if args.pods {
            ", /var/log/pods layout"
        } else {
            ""
        }
    );
    println!(
        "  catch-up      {:.2} cpu-s, {:.2} s wall",
        after_catch_up.cpu_seconds(),
        catch_up_wall.as_secs_f64()
    );
    println!(
        "  idle          {idle_pct:.2} % of a core over {} s",
        args.idle_secs
    );
    println!(
        "  trickle       {trickle_pct:.2} % of a core ({} lines/s into {} files, {} s){}",
        args.trickle_files,
        args.trickle_files,
        args.trickle_secs,
        if all { "" } else { ", NOT ALL LINES ARRIVED" }
    );
    println!(
        "  peak rss      {:.1} MiB",
        usage.peak_rss_kib as f64 / 1024.0
    );
    println!("  descriptors   {fds}");
    if !all {
        return Err(format!("{} of {next} lines arrived", receiver.count()));
    }
    Ok(())
}

fn percent(cpu_seconds: f64, over_secs: u64) -> f64 {
    cpu_seconds * 100.0 / over_secs.max(1) as f64
}
