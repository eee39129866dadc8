//! The command line: `logship [run] [-c F]...`, `logship validate [F... | -c F...]`,
//! `logship test [F...]`; `--config`
//! may come before or after the subcommand, and several files are merged into one pipeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::context::ComponentContext;
use crate::pipeline::LedgerWatch;
use crate::pipeline::tap::TapHub;
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
    /// Reload when a config file changes, as on SIGHUP.
    #[arg(short = 'w', long, global = true)]
    watch_config: bool,
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
    /// Run the config's `[[tests]]`: exit 0 when all pass, 1 with what differed otherwise.
    Test {
        /// Config files, as one pipeline; the same as `--config FILE`.
        files: Vec<PathBuf>,
    },
    /// Print the events leaving a source or transform of the agent running this config, as
    /// JSON lines, live.
    Tap {
        /// The source or transform to watch.
        component: String,
        /// Stop after this many events.
        #[arg(short = 'n', long)]
        limit: Option<u64>,
    },
    /// Show each component's events/s, bytes/s, drops, errors and checkpoint lag, live, for
    /// the agent running this config.
    Top {
        /// Seconds between updates.
        #[arg(short, long, default_value_t = 1.0)]
        interval: f64,
        /// Stop after this many updates.
        #[arg(short = 'n', long)]
        iterations: Option<u64>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    let mut paths = cli.config;
    if let Some(Command::Validate { files } | Command::Test { files }) = &cli.command {
        paths.extend(files.iter().cloned());
    }
    if paths.is_empty() {
        paths.push(PathBuf::from(DEFAULT_CONFIG));
    }
    match cli.command {
        Some(Command::Validate { .. }) => validate(&paths),
        Some(Command::Test { .. }) => test(&paths),
        Some(Command::Tap { component, limit }) => inspect(&paths, |loaded| async move {
            crate::inspect::tap::tap(&loaded, &component, limit, &mut std::io::stdout()).await
        }),
        Some(Command::Top {
            interval,
            iterations,
        }) => inspect(&paths, |loaded| async move {
            let interval = std::time::Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
            crate::inspect::top::top(&loaded, interval, iterations, &mut std::io::stdout()).await
        }),
        Some(Command::Run) | None => run(&paths, cli.watch_config),
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

fn test(paths: &[PathBuf]) -> ExitCode {
    let path = display(paths);
    let Some(loaded) = load(paths) else {
        return ExitCode::FAILURE;
    };
    if loaded.config.tests.is_empty() {
        eprintln!("error: {path}: no [[tests]] to run");
        return ExitCode::FAILURE;
    }
    let results = match crate::config_tests::run_all(&loaded) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = results.iter().filter(|r| !r.passed()).count();
    for r in &results {
        if r.passed() {
            println!("test {:?} ... passed", r.name);
        } else {
            println!("test {:?} ... FAILED", r.name);
            for f in &r.failures {
                println!("    {f}");
            }
        }
    }
    println!(
        "{} tests: {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs a client of the running agent (`tap`, `top`) for the config in `paths`.
fn inspect<F, Fut>(paths: &[PathBuf], client: F) -> ExitCode
where
    F: FnOnce(logship_config::LoadedConfig) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::inspect::InspectError>>,
{
    let path = display(paths);
    let Some(loaded) = load(paths) else {
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(client(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(paths: &[PathBuf], watch_config: bool) -> ExitCode {
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
    runtime.block_on(supervise(paths, loaded, watch_config))
}

/// Runs pipelines until asked to stop: the first from `loaded`, then one per reload.
async fn supervise(
    paths: &[PathBuf],
    mut loaded: logship_config::LoadedConfig,
    watch_config: bool,
) -> ExitCode {
    let path = display(paths);
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(metrics.ready.clone()));
    // Like the metrics, the tap points outlive pipelines, so a watcher survives a reload.
    let tap = Arc::new(TapHub::new());
    let mut triggers =
        match crate::reload::Triggers::new(paths, watch_config, metrics.config_reloads.clone()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for signals or watch the config");
                return ExitCode::FAILURE;
            }
        };
    // Held until the agent exits (or a reload moves data_dir): a second agent is refused.
    let mut _data_dir_lock = match crate::data_dir::claim(&loaded.config.data_dir) {
        Ok(lock) => lock,
        Err(e) => {
            tracing::error!(data_dir = %loaded.config.data_dir.display(), "{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut telemetry = Telemetry::default();
    if let Err(e) = telemetry
        .serve(&loaded.config.telemetry, &metrics, &health, &tap)
        .await
    {
        tracing::error!(address = %loaded.config.telemetry.address, error = %e, "cannot serve telemetry");
        return ExitCode::FAILURE;
    }
    let mut running =
        match topology::start(&loaded, &base_context(&loaded, &metrics, &health, &tap)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start pipeline");
                telemetry.stop().await;
                return ExitCode::FAILURE;
            }
        };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %path, "logship started");
    loop {
        let next = running.run_until(triggers.next(&loaded)).await;
        let Some(crate::reload::Next::Reload(new)) = next else {
            let outcome = running.shut_down().await;
            telemetry.stop().await;
            return finished(&outcome);
        };
        let new = *new;
        // The new config takes over only once its pipeline runs: until then the old lock and
        // telemetry server stay, so a failed reload leaves the agent exactly as it was.
        let lock = match claim_if_moved(&loaded, &new) {
            Ok(lock) => lock,
            Err(e) => {
                reload_failed(&metrics, &format!("cannot claim the new data_dir: {e}"));
                continue;
            }
        };
        match running.reload(&new) {
            Ok(plan) => {
                if let Some(lock) = lock {
                    _data_dir_lock = lock;
                }
                if new.config.telemetry != loaded.config.telemetry {
                    telemetry.stop().await;
                    if let Err(e) = telemetry
                        .serve(&new.config.telemetry, &metrics, &health, &tap)
                        .await
                    {
                        tracing::error!(address = %new.config.telemetry.address, error = %e, "cannot serve telemetry at the new address");
                    }
                }
                metrics.config_reloads.with_label_values(&["success"]).inc();
                tracing::info!(config = %path, "config reloaded: {plan}");
                loaded = new;
            }
            Err(e) => reload_failed(&metrics, &format!("cannot build the new pipeline: {e}")),
        }
    }
}

/// Reports a valid config that could not be applied; the running pipeline is unchanged.
fn reload_failed(metrics: &Metrics, why: &str) {
    tracing::error!("{why}; going on with the old config");
    metrics.config_reloads.with_label_values(&["error"]).inc();
}

/// The lock of `new`'s data_dir when a reload moves it (`None` when it stays).
fn claim_if_moved(
    loaded: &logship_config::LoadedConfig,
    new: &logship_config::LoadedConfig,
) -> Result<Option<crate::data_dir::DataDirLock>, String> {
    if new.config.data_dir == loaded.config.data_dir {
        return Ok(None);
    }
    crate::data_dir::claim(&new.config.data_dir)
        .map(Some)
        .map_err(|e| format!("{}: {e}", new.config.data_dir.display()))
}

/// The services every component shares, for the agent's life (reloads included).
fn base_context(
    loaded: &logship_config::LoadedConfig,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    tap: &Arc<TapHub>,
) -> ComponentContext {
    ComponentContext {
        tap: tap.clone(),
        id: Arc::from(""),
        acks: LedgerWatch::detached(),
        metrics: metrics.clone(),
        health: health.clone(),
        shutdown: CancellationToken::new(),
        drained: CancellationToken::new(),
        data_dir: loaded.config.data_dir.clone(),
    }
}

/// The exit status of a run that ended.
fn finished(outcome: &topology::RunOutcome) -> ExitCode {
    if outcome.is_success() {
        tracing::info!("logship stopped");
        ExitCode::SUCCESS
    } else {
        for (id, reason) in &outcome.failed_sources {
            tracing::error!(component = %id, error = %reason, "source had failed");
        }
        tracing::error!(
            "logship stopped after a source failed; exiting with status 1 so that a supervisor restarts it"
        );
        ExitCode::FAILURE
    }
}

/// The `/metrics`, `/health`, `/ready` and `/tap` server, which outlives pipelines across reloads.
#[derive(Default)]
struct Telemetry {
    server: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Telemetry {
    async fn serve(
        &mut self,
        config: &logship_config::schema::TelemetryConfig,
        metrics: &Arc<Metrics>,
        health: &Arc<Health>,
        tap: &Arc<TapHub>,
    ) -> std::io::Result<()> {
        if !config.enabled {
            return Ok(());
        }
        let stop = CancellationToken::new();
        let handle = crate::telemetry::serve(
            config.address,
            metrics.clone(),
            health.clone(),
            tap.clone(),
            stop.clone(),
        )
        .await?;
        self.server = Some((stop, handle));
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some((stop, handle)) = self.server.take() {
            stop.cancel();
            let _ = handle.await;
        }
    }
}
