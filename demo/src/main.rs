//! `demo`: the quickstart. `cargo run --release --bin demo [-- --duration 30s]` runs the order
//! API, the worker, a load generator and `logship` tailing the services' logs, on embedded
//! defaults (SQLite, a database-backed queue, logship's console sink), then prints a summary.
//! `DATABASE_URL`, `REDIS_URL`, `LOKI_URL` and `OTEL_EXPORTER_OTLP_ENDPOINT` point it at real
//! PostgreSQL, Redis, Loki and a trace collector instead.

mod runner;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = runner::Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(runner::run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::from(2)
        }
    }
}
