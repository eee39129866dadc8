//! The README's first command on embedded defaults: `cargo run --bin demo -- --duration ...`
//! (debug profile here; the release build runs the same code) with no database, Redis, Loki
//! or collector configured. It must finish on its own, exit 0, and its summary must add up.

mod demo_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use logship_tests::harness::{serial, workspace_root};

#[test]
fn quickstart_runs_to_completion_on_embedded_defaults_and_its_summary_adds_up() {
    let _serial = serial();
    let run_dir = tempfile::tempdir().unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["run", "-q", "-p", "logship-demo", "--bin", "demo", "--"])
        .args(["--duration", "12s", "--rate", "8", "--quiet", "--run-dir"])
        .arg(run_dir.path())
        .current_dir(workspace_root())
        .stdin(Stdio::null());
    for v in [
        "DATABASE_URL",
        "REDIS_URL",
        "LOKI_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SERVICE_NAME",
    ] {
        cmd.env_remove(v);
    }
    let out = demo_support::output_within(cmd, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo exited with {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
    assert!(stdout.contains("== logship demo: summary =="), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");

    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run_dir.path().join("summary.json")).expect("summary.json"),
    )
    .unwrap();
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {summary}"))
    };
    let created = n("orders_created");
    assert!(created >= 30, "12 s at 8/s created only {created}");
    assert_eq!(n("paid") + n("failed"), created, "{summary}");
    assert_eq!(n("pending"), 0);
    assert_eq!(n("orders_with_one_trace"), created, "{summary}");
    assert!(!summary["trace_examples"].as_array().unwrap().is_empty());
    for svc in ["order-api", "order-worker"] {
        let written = summary["lines_written"][svc].as_u64().unwrap();
        let shipped = summary["lines_shipped"][svc].as_u64().unwrap();
        assert!(written > 0);
        assert_eq!(shipped, written, "{svc}: {summary}");
    }

    // The summary's numbers are the database's numbers.
    let logs = run_dir.path().join("logs");
    let count = |svc: &str, msg: &str| {
        std::fs::read_to_string(logs.join(format!("{svc}.log")))
            .unwrap()
            .matches(&format!("\"msg\":\"{msg}\""))
            .count() as u64
    };
    assert_eq!(count("order-api", "order accepted"), created);
    assert_eq!(count("order-worker", "order paid"), n("paid"));
    assert_eq!(count("order-worker", "order payment failed"), n("failed"));
}
