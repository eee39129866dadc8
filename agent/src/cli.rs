//! The command line: `logship [run] [-c F]...`, `logship validate [F... | -c F...]`; `--config`
//! may come before or after the subcommand, and several files are merged into one pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::context::ComponentContext;
use crate::pipeline::LedgerWatch;
use crate::telemetry::{Health, Metrics};
use crate::topology;

/// logship: ships container and file logs to Grafana Loki, losing nothing.
#[derive(Debug, Parser)]
#[command(name = "logship", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A pipeline config file (before or after the subcommand). Repeat it to merge several
    /// files into one pipeline, in order. [default: /etc/logship/logship.toml]
    #[arg(short, long, global = true, env = "LOGSHIP_CONFIG")]
    config: Vec<PathBuf>,
}

/// Where the config is read from when no file is named.
const DEFAULT_CONFIG: &str = "/etc/logship/logship.toml";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline (the default).
    Run,
    /// Check a config and exit 0 (valid) or 1 (invalid) without running anything.
    Validate {
        /// Config files to check, as one pipeline; the same as `--config FILE`.
        files: Vec<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    let mut paths = cli.config;
    if let Some(Command::Validate { files }) = &cli.command {
        paths.extend(files.iter().cloned());
    }
    if paths.is_empty() {
        paths.push(PathBuf::from(DEFAULT_CONFIG));
    }
    match cli.command {
        Some(Command::Validate { .. }) => validate(&paths),
        Some(Command::Run) | None => run(&paths),
    }
}

/// The config files as one name for messages: `a.toml, b.toml`.
fn display(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn load(paths: &[PathBuf]) -> Option<logship_config::LoadedConfig> {
    match logship_config::load_files(paths) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            None
        }
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let path = display(paths);
    match load(paths) {
        Some(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if let Err(e) = crate::data_dir::check_writable(&loaded.config.data_dir) {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
            println!("{path}: ok");
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn run(paths: &[PathBuf]) -> ExitCode {
    let path = display(paths);
    let Some(loaded) = load(paths) else {
        return ExitCode::FAILURE;
    };
    for w in &loaded.warnings {
        tracing::warn!(config = %path, "{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("logship")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let config = &loaded.config;
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(metrics.ready.clone()));
        let base = ComponentContext {
            id: Arc::from(""),
            acks: LedgerWatch::detached(),
            metrics: metrics.clone(),
            health: health.clone(),
            shutdown: CancellationToken::new(),
            drained: CancellationToken::new(),
            data_dir: config.data_dir.clone(),
        };
        // Held until the agent exits: a second agent on this data_dir is refused.
        let _data_dir_lock = match crate::data_dir::claim(&config.data_dir) {
            Ok(lock) => lock,
            Err(e) => {
                tracing::error!(data_dir = %config.data_dir.display(), "{e}");
                return ExitCode::FAILURE;
            }
        };
        let running = match topology::start(&loaded, &base) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start pipeline");
                return ExitCode::FAILURE;
            }
        };
        let server_stop = CancellationToken::new();
        let server = if config.telemetry.enabled {
            match crate::telemetry::serve(config.telemetry.address, metrics, health, server_stop.clone()).await {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(address = %config.telemetry.address, error = %e, "cannot serve telemetry");
                    base.shutdown.cancel();
                    base.drained.cancel();
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path, "logship started");
        let outcome = topology::run_until(running, shutdown_signal()).await;
        server_stop.cancel();
        if let Some(h) = server {
            let _ = h.await;
        }
        if outcome.is_success() {
            tracing::info!("logship stopped");
            ExitCode::SUCCESS
        } else {
            for (id, reason) in &outcome.failed_sources {
                tracing::error!(component = %id, error = %reason, "source had failed");
            }
            tracing::error!("logship stopped after a source failed; exiting with status 1 so that a supervisor restarts it");
            ExitCode::FAILURE
        }
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
