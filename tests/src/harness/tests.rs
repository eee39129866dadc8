//! The harness against a stand-in agent: this test binary re-run as a child process
//! (`fake_agent`), serving `/health`, `/ready` and `/metrics` and exiting 0 on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;

use super::*;

const FAKE_ENV: &str = "LOGSHIP_TESTS_FAKE_AGENT_ADDR";

extern "C" fn exit_zero(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

/// Not a test: the body of the stand-in process. Does nothing unless the env var is set.
#[test]
#[ignore = "stand-in agent process for the harness tests; runs only when spawned by them"]
fn fake_agent() {
    let Ok(addr) = std::env::var(FAKE_ENV) else {
        return;
    };
    // SAFETY: installing a handler that only calls _exit.
    unsafe {
        libc::signal(libc::SIGTERM, exit_zero as *const () as libc::sighandler_t);
    }
    let listener = TcpListener::bind(&addr).unwrap();
    println!("fake agent up on {addr}");
    eprintln!("fake agent stderr line");
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let head = String::from_utf8_lossy(&buf);
        let path = head.split(' ').nth(1).unwrap_or("");
        let (status, body) = match path {
            "/health" => ("200 OK", "ok\n".to_owned()),
            "/ready" => (
                "503 Service Unavailable",
                "loki: Loki answered 401\n".to_owned(),
            ),
            "/metrics" => (
                "200 OK",
                "# TYPE logship_component_sent_events_total counter\n\
                 logship_component_sent_events_total{component=\"loki\"} 42\n"
                    .to_owned(),
            ),
            _ => ("404 Not Found", String::new()),
        };
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn stand_in(dir: &Path, port: u16) -> Result<Agent, HarnessError> {
    let config = format!("data_dir = \"/tmp/x\"\n[telemetry]\naddress = \"127.0.0.1:{port}\"\n");
    Agent::try_start_with(
        &config,
        dir,
        AgentOptions {
            program: Some(std::env::current_exe().unwrap()),
            args: [
                "--exact",
                "harness::tests::fake_agent",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ]
            .map(String::from)
            .to_vec(),
            env: vec![(FAKE_ENV.to_owned(), format!("127.0.0.1:{port}"))],
            config_flag: false,
            ..AgentOptions::default()
        },
    )
}

#[test]
fn agent_lifecycle_against_a_stand_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = stand_in(dir.path(), free_port()).unwrap();
    assert!(agent.is_running());
    assert_eq!(agent.health().0, 200);
    let (status, body) = agent.ready();
    assert_eq!(status, 503);
    assert!(body.contains("401"));
    assert_eq!(
        agent.metric(
            "logship_component_sent_events_total",
            &[("component", "loki")]
        ),
        42.0
    );
    assert!(agent.wait_for_metric(
        "logship_component_sent_events_total",
        &[],
        42.0,
        Duration::from_secs(1)
    ));
    assert!(agent.rss_kib().is_some_and(|k| k > 0));
    assert!(agent.config_path().is_file());
    let log = agent.log();
    assert!(log.contains("fake agent up"), "{log}");
    assert!(log.contains("fake agent stderr line"), "{log}");
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0));
    assert!(!agent.is_running());
}

#[test]
fn kill9_and_drop_stop_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = stand_in(dir.path(), free_port()).unwrap();
    let pid = agent.pid();
    agent.kill9();
    assert!(!agent.is_running());
    assert_eq!(agent.wait_exit(Duration::ZERO).unwrap().signal(), Some(9));
    assert!(!Path::new(&format!("/proc/{pid}")).exists());

    let agent = stand_in(dir.path(), free_port()).unwrap();
    let pid = agent.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(agent);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "drop must kill and reap"
    );
}

#[test]
fn startup_failures_carry_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[telemetry]\naddress = \"127.0.0.1:{}\"\n", free_port());
    let err = Agent::try_start_with(
        &config,
        dir.path(),
        AgentOptions {
            program: Some(PathBuf::from("/bin/sh")),
            args: vec!["-c".into(), "echo boom >&2; exit 3".into()],
            config_flag: false,
            ..AgentOptions::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("boom"), "{err}");
    assert!(err.contains("exit status: 3"), "{err}");

    let t = Instant::now();
    let err = Agent::try_start_with(
        &config,
        dir.path(),
        AgentOptions {
            program: Some(PathBuf::from("/bin/sleep")),
            args: vec!["30".into()],
            config_flag: false,
            startup_timeout: Duration::from_millis(300),
            ..AgentOptions::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("did not answer 200"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn telemetry_address_from_config() {
    assert_eq!(
        telemetry_addr("[telemetry]\naddress = \"127.0.0.1:1234\"\n"),
        Some("127.0.0.1:1234".parse().unwrap())
    );
    assert_eq!(
        telemetry_addr("data_dir = \"/x\"\n"),
        Some("127.0.0.1:9598".parse().unwrap())
    );
    assert_eq!(telemetry_addr("[telemetry]\nenabled = false\n"), None);
    assert_eq!(telemetry_addr("not = [toml"), None);
}

#[test]
fn small_helpers() {
    let p = free_port();
    assert!(TcpListener::bind(("127.0.0.1", p)).is_ok());
    assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    assert!(workspace_root().join("Cargo.toml").is_file());
    assert!(target_dir().is_absolute());
    let mut n = 0;
    assert!(wait_until(Duration::from_secs(1), || {
        n += 1;
        n == 3
    }));
    assert!(!wait_until(Duration::from_millis(100), || false));
    let _g = serial();
}

#[test]
fn run_program_captures_and_times_out() {
    let r = run_program(
        Path::new("/bin/sh"),
        &["-c", "echo out; echo err >&2; exit 1"],
        Duration::from_secs(10),
    );
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    let timed_out = std::panic::catch_unwind(|| {
        run_program(Path::new("/bin/sleep"), &["10"], Duration::from_millis(200))
    });
    assert!(timed_out.is_err());
}

/// Builds the real agent; slow and depends on the agent crate compiling, so run on demand:
/// `cargo test -p logship-tests --lib -- --ignored logship_bin_builds`.
#[test]
#[ignore = "builds logship-agent"]
fn logship_bin_builds() {
    let bin = logship_bin();
    assert!(bin.is_file(), "{}", bin.display());
    assert_eq!(bin, logship_bin(), "built once, same path");
}
