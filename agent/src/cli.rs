//! The command line: `logship [run] [-c F]`, `logship validate [F | -c F]`; `--config` may come before or after the subcommand.

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
    /// The pipeline config file (before or after the subcommand).
    #[arg(
        short,
        long,
        global = true,
        env = "LOGSHIP_CONFIG",
        default_value = "/etc/logship/logship.toml"
    )]
    config: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline (the default).
    Run,
    /// Check a config and exit 0 (valid) or 1 (invalid) without running anything.
    Validate {
        /// The config file to check; the same as `--config FILE`.
        file: Option<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    match cli.command {
        Some(Command::Validate { file }) => validate(file.as_deref().unwrap_or(&cli.config)),
        Some(Command::Run) | None => run(&cli.config),
    }
}

fn load(path: &std::path::Path) -> Option<logship_config::LoadedConfig> {
    match logship_config::load_file(path) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            None
        }
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Some(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            if let Err(e) = crate::data_dir::check_writable(&loaded.config.data_dir) {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn run(path: &std::path::Path) -> ExitCode {
    let Some(loaded) = load(path) else {
        return ExitCode::FAILURE;
    };
    for w in &loaded.warnings {
        tracing::warn!(config = %path.display(), "{w}");
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
        tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), "logship started");
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
