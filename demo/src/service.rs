//! The start and end every service shares: telemetry before the runtime (its exporter's
//! blocking client must not be created inside one), the async body, and a span flush after.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use crate::telemetry;

/// Runs `body` as the service `default_service` (overridable by `OTEL_SERVICE_NAME`) and maps
/// its result to an exit code. Errors are logged as JSON lines like everything else.
pub fn main_with<F, Fut>(default_service: &str, body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let telemetry = match telemetry::init(default_service) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{default_service}: cannot start telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            telemetry.shutdown();
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(body());
    runtime.shutdown_timeout(Duration::from_secs(2));
    let code = match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stopped on an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}
