//! The quickstart: runs order-api, order-worker and logship as child processes, drives load
//! at the API, and at the end checks and prints what happened.
//!
//! Order of events: start logship (tailing `<run dir>/logs/*.log`), the two services (their
//! stdout and stderr go to those files), then load. On `--duration` or Ctrl-C: stop the load,
//! wait for the accepted orders to settle, stop the services, wait for logship to ship every
//! line they wrote, stop logship, and summarise. Every child is stopped by its pid.

pub mod binaries;
pub mod children;
pub mod duration;
pub mod feed;
pub mod loadgen;
pub mod summary;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::watch;

use children::ChildProcess;
use feed::Feed;
use summary::Summary;

/// The quickstart's logship config: file source, json transform, console sink.
const LOGSHIP_CONSOLE_CONFIG: &str = include_str!("../../logship.toml");
/// The same pipeline shipping to `LOKI_URL` as well.
const LOGSHIP_LOKI_CONFIG: &str = include_str!("../../logship-loki.toml");

/// What the command line asks for.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "demo",
    about = "Run the logship demo: an order API, a worker, load, and logship shipping their logs."
)]
pub struct Args {
    /// Stop after this long (30s, 2m, ...); without it, run until Ctrl-C.
    #[arg(long, value_parser = duration::parse_duration)]
    pub duration: Option<Duration>,
    /// Orders per second the load generator posts.
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Do not echo what logship ships; print only the summary.
    #[arg(long)]
    pub quiet: bool,
    /// Where logs, the SQLite database and logship's state go (default: target/demo-run).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Only generate load against an API that is already running (the compose stack's load
    /// generator), e.g. `--target http://order-api:8080`.
    #[arg(long)]
    pub target: Option<String>,
}

/// `--target`: posts orders to a running API until the duration, SIGTERM or Ctrl-C.
async fn load_only(target: &str, args: &Args) -> anyhow::Result<bool> {
    let base = target.trim_end_matches('/').to_owned();
    eprintln!("demo: posting {} orders/s to {base}", args.rate);
    let (stop_tx, stop_rx) = watch::channel(false);
    let rate = args.rate;
    let load = tokio::spawn(async move { loadgen::run(&base, rate, stop_rx).await });
    match args.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = logship_demo::shutdown::wait_for_signal() => {}
            }
        }
        None => logship_demo::shutdown::wait_for_signal().await,
    }
    let _ = stop_tx.send(true);
    let stats = load.await.unwrap_or_default();
    eprintln!(
        "demo: {} orders accepted, {} refused as invalid, {} failed requests",
        stats.created.len(),
        stats.rejected,
        stats.errors
    );
    Ok(true)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Lines in a file (0 when it does not exist).
fn count_lines(path: &Path) -> u64 {
    std::fs::read(path).map(|b| memchr_count(&b)).unwrap_or(0)
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

async fn wait_http_ok(url: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// The value of `logship_component_sent_events_total{component="loki"}`, if it can be read.
async fn loki_delivered(telemetry: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://{telemetry}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .filter(|l| {
            l.starts_with("logship_component_sent_events_total{")
                && l.contains("component=\"loki\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .next()
}

/// Runs the demo; `Ok(true)` when every check passed.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    if let Some(target) = &args.target {
        return load_only(target, &args).await;
    }
    let bins = binaries::locate_or_build()?;
    let run_dir = match &args.run_dir {
        Some(d) => d.clone(),
        None => bins
            .logship
            .parent()
            .and_then(Path::parent)
            .map(|t| t.join("demo-run"))
            .context("cannot place the run directory")?,
    };
    // Each run starts clean: its own logs, database and checkpoints.
    for sub in ["logs", "logship-data"] {
        let _ = std::fs::remove_dir_all(run_dir.join(sub));
    }
    for f in [
        "orders.db",
        "orders.db-wal",
        "orders.db-shm",
        "summary.json",
    ] {
        let _ = std::fs::remove_file(run_dir.join(f));
    }
    let logs = run_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;

    let loki = logship_demo::env::var("LOKI_URL");
    let api_addr = format!("127.0.0.1:{}", free_port()?);
    let worker_addr = format!("127.0.0.1:{}", free_port()?);
    let telemetry_addr = format!("127.0.0.1:{}", free_port()?);
    let database_url = logship_demo::env::var("DATABASE_URL")
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", run_dir.join("orders.db").display()));
    let exporting = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
    ]
    .iter()
    .any(|v| logship_demo::env::var(v).is_some());
    eprintln!(
        "demo: database {}, queue {}, logs to {}, traces {}",
        logship_demo::db::redact_url(&database_url),
        if logship_demo::env::redis_url().is_some() {
            "Redis"
        } else {
            "in the database"
        },
        loki.as_deref().unwrap_or("logship's console"),
        if exporting {
            "exported over OTLP"
        } else {
            "not exported (set OTEL_EXPORTER_OTLP_ENDPOINT)"
        },
    );

    // logship first, so the feed shows the services starting.
    let (config_text, config_name) = match &loki {
        Some(_) => (LOGSHIP_LOKI_CONFIG, "logship-loki.toml"),
        None => (LOGSHIP_CONSOLE_CONFIG, "logship.toml"),
    };
    let config_path = run_dir.join(config_name);
    std::fs::write(&config_path, config_text)?;
    let logship_log = std::fs::File::create(run_dir.join("logship.log"))?;
    let config_arg = config_path.to_string_lossy().into_owned();
    let mut logship = ChildProcess::spawn(
        "logship",
        &bins.logship,
        &["--config", &config_arg],
        &[
            (
                "DEMO_RUN_DIR".to_owned(),
                run_dir.to_string_lossy().into_owned(),
            ),
            ("LOGSHIP_TELEMETRY_ADDR".to_owned(), telemetry_addr.clone()),
        ],
        Stdio::piped(),
        Stdio::from(logship_log),
    )?;
    let feed = Arc::new(Mutex::new(Feed::default()));
    let stdout = logship.take_stdout().context("logship's stdout")?;
    let feed_task = {
        let feed = feed.clone();
        let quiet = args.quiet;
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let shown = feed.lock().map(|mut f| f.ingest(&line)).unwrap_or(None);
                if !quiet && let Some(s) = shown {
                    println!("{s}");
                }
            }
        })
    };
    if !wait_http_ok(
        &format!("http://{telemetry_addr}/health"),
        Duration::from_secs(30),
    )
    .await
    {
        logship.stop(Duration::from_secs(2)).await;
        anyhow::bail!(
            "logship did not become healthy; see {}",
            run_dir.join("logship.log").display()
        );
    }

    let mut services = Vec::new();
    for (name, program, addr) in [
        (feed::API, &bins.order_api, &api_addr),
        (feed::WORKER, &bins.order_worker, &worker_addr),
    ] {
        let log = std::fs::File::create(logs.join(format!("{name}.log")))?;
        let mut env = vec![
            ("LISTEN_ADDR".to_owned(), addr.clone()),
            ("DATABASE_URL".to_owned(), database_url.clone()),
            ("OTEL_SERVICE_NAME".to_owned(), name.to_owned()),
        ];
        if !exporting {
            env.push(("OTEL_TRACES_EXPORTER".to_owned(), "none".to_owned()));
        }
        let stderr = Stdio::from(log.try_clone()?);
        services.push(ChildProcess::spawn(
            name,
            program,
            &[],
            &env,
            Stdio::from(log),
            stderr,
        )?);
    }
    let base = format!("http://{api_addr}");
    for (name, addr) in [(feed::API, &api_addr), (feed::WORKER, &worker_addr)] {
        if !wait_http_ok(&format!("http://{addr}/healthz"), Duration::from_secs(60)).await {
            for c in services.iter_mut().chain(std::iter::once(&mut logship)) {
                c.stop(Duration::from_secs(5)).await;
            }
            anyhow::bail!(
                "{name} did not become healthy; see {}",
                logs.join(format!("{name}.log")).display()
            );
        }
    }
    eprintln!(
        "demo: order-api on {base}, order-worker on http://{worker_addr}, logship metrics on http://{telemetry_addr}/metrics"
    );
    match args.duration {
        Some(d) => eprintln!("demo: posting {} orders/s for {d:?}", args.rate),
        None => eprintln!("demo: posting {} orders/s; Ctrl-C to stop", args.rate),
    }

    // Load until the duration, Ctrl-C, or a child dying.
    let (stop_tx, stop_rx) = watch::channel(false);
    let load = {
        let base = base.clone();
        let rate = args.rate;
        tokio::spawn(async move { loadgen::run(&base, rate, stop_rx).await })
    };
    let started = Instant::now();
    let mut problems = Vec::new();
    let until = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    let signal = logship_demo::shutdown::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut until => break,
            _ = &mut signal => {
                eprintln!("\ndemo: stopping (Ctrl-C again to stop at once)");
                break;
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let dead: Vec<String> = services
                    .iter_mut()
                    .chain(std::iter::once(&mut logship))
                    .filter_map(|c| c.exited().map(|s| format!("{} exited early ({s})", c.name)))
                    .collect();
                if !dead.is_empty() {
                    problems.extend(dead);
                    break;
                }
            }
        }
    }
    // A second Ctrl-C kills everything at once.
    let pids: Vec<u32> = services
        .iter()
        .chain(std::iter::once(&logship))
        .filter_map(ChildProcess::pid)
        .collect();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            for pid in pids {
                if let Ok(pid) = i32::try_from(pid) {
                    // SAFETY: signalling our own children by pid.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            std::process::exit(130);
        }
    });

    let _ = stop_tx.send(true);
    let stats = load.await.unwrap_or_default();
    let ran_for = started.elapsed();
    eprintln!(
        "demo: load stopped; waiting for {} orders to settle",
        stats.created.len()
    );
    let settled = loadgen::wait_settled(&base, &stats.created, Duration::from_secs(30)).await;

    for s in &mut services {
        s.stop(Duration::from_secs(15)).await;
    }
    let mut written = BTreeMap::new();
    for name in [feed::API, feed::WORKER] {
        written.insert(
            name.to_owned(),
            count_lines(&logs.join(format!("{name}.log"))),
        );
    }
    let total: u64 = written.values().sum();
    eprintln!("demo: services stopped; waiting for logship to ship their {total} lines");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut delivered = None;
    loop {
        let all_shown = feed
            .lock()
            .map(|f| {
                written
                    .iter()
                    .all(|(svc, n)| f.shipped.get(svc).copied().unwrap_or(0) >= *n)
            })
            .unwrap_or(false);
        if loki.is_some() {
            delivered = loki_delivered(&telemetry_addr).await;
        }
        let all_delivered = loki.is_none() || delivered.is_some_and(|d| d >= total);
        if (all_shown && all_delivered) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    logship.stop(Duration::from_secs(15)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), feed_task).await;

    let f = feed
        .lock()
        .map_err(|_| anyhow::anyhow!("the feed task panicked"))?;
    let mut summary = Summary {
        duration_s: ran_for.as_secs_f64(),
        orders_created: stats.created.len() as u64,
        orders_rejected: stats.rejected,
        request_errors: stats.errors,
        paid: settled.paid,
        failed: settled.failed,
        pending: settled.pending,
        lines_written: written,
        lines_shipped: f.shipped.clone(),
        loki_delivered: delivered,
        lines_with_trace_id: f.with_trace_metadata,
        orders_with_one_trace: f.orders_with_one_trace(&stats.created) as u64,
        trace_examples: f.shared_traces(&stats.created, 3),
        ..Summary::default()
    };
    summary.check();
    summary.problems.extend(problems);
    if f.trace_mismatches > 0 {
        summary.problems.push(format!(
            "{} lines had trace_id metadata different from the line's own",
            f.trace_mismatches
        ));
    }
    summary.ok = summary.problems.is_empty();
    println!("{}", summary.render());
    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(run_dir.join("summary.json"), json)?;
    eprintln!(
        "demo: logs, database and summary.json are in {}",
        run_dir.display()
    );
    Ok(summary.ok)
}
