//! Running the real `logship` binary as a process.
//!
//! [`logship_bin`] builds the binary once per test process (`cargo build --workspace --bins`,
//! debug profile, as `scripts/test.sh` does) and returns its path. [`Agent`] writes a config, starts the
//! agent with its output captured to files, waits until `/health` answers, and stops it by
//! pid: SIGKILL ([`Agent::kill9`]), SIGTERM ([`Agent::terminate`]), or SIGKILL on drop. When
//! a test panics, dropping its `Agent` prints the agent's log so the failure explains itself.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::http;
use crate::prom;

/// Why the harness could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// `cargo build` failed.
    #[error("building logship failed: {0}")]
    Build(String),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The agent exited or never became healthy.
    #[error("agent did not start: {reason}\n--- agent log ---\n{log}")]
    Startup {
        /// What went wrong.
        reason: String,
        /// stdout + stderr of the agent.
        log: String,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `CARGO_TARGET_DIR` (relative to the workspace root when relative), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// A `cargo` command for a build started from a test or bench: the cargo that started this
/// process, without the variables cargo sets for the program it runs (`CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR`, ...). ring's build script declares those as inputs, so passing them
/// on would rebuild ring and everything above it at every nested build, and again at the next
/// outer one.
pub fn cargo_command() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    for (key, _) in std::env::vars_os() {
        let set_by_cargo_run = key.to_str().is_some_and(|k| {
            k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    k,
                    "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                )
        });
        if set_by_cargo_run {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn build_bin() -> Result<PathBuf, HarnessError> {
    let mut cargo = cargo_command();
    let out = cargo
        // The same build as `scripts/test.sh` runs first: a narrower one (`-p logship-agent`)
        // resolves features differently and rebuilds the agent, twice per test run.
        .args(["build", "--workspace", "--bins"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("running cargo"))?;
    if !out.status.success() {
        return Err(HarnessError::Build(format!(
            "`cargo build --workspace --bins` exited with {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let bin = target_dir().join("debug").join("logship");
    if !bin.is_file() {
        return Err(HarnessError::Build(format!(
            "build succeeded but {} does not exist",
            bin.display()
        )));
    }
    Ok(bin)
}

/// The `logship` binary, built once per test process (debug profile). Panics with cargo's
/// output when the build fails.
pub fn logship_bin() -> PathBuf {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BIN.get_or_init(|| build_bin().map_err(|e| e.to_string())) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// Serialises heavy tests within one test binary (they share two cores): hold the guard for
/// the whole test.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Resident set size of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Extra knobs for starting an agent.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Arguments before `--config <file>`, e.g. `["run"]`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// How long to wait for `/health`.
    pub startup_timeout: Duration,
    /// Program to run instead of [`logship_bin`] (the harness' own tests use a stand-in).
    pub program: Option<PathBuf>,
    /// Append `--config <file>` to the arguments (default true).
    pub config_flag: bool,
    /// A file (or directory) opened as the agent's standard input; `/dev/null` when `None`.
    pub stdin: Option<PathBuf>,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            args: Vec::new(),
            env: Vec::new(),
            startup_timeout: Duration::from_secs(30),
            program: None,
            config_flag: true,
            stdin: None,
        }
    }
}

/// The `[telemetry] address` of a config (default 127.0.0.1:9598); `None` when telemetry is
/// disabled or the text is not TOML.
pub fn telemetry_addr(config_toml: &str) -> Option<SocketAddr> {
    let table: toml::Table = config_toml.parse().ok()?;
    let tel = table.get("telemetry").and_then(|t| t.as_table());
    if tel
        .and_then(|t| t.get("enabled"))
        .and_then(toml::Value::as_bool)
        == Some(false)
    {
        return None;
    }
    match tel
        .and_then(|t| t.get("address"))
        .and_then(toml::Value::as_str)
    {
        Some(a) => a.parse().ok(),
        None => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9598))),
    }
}

/// A running `logship` process.
pub struct Agent {
    child: Child,
    exit: Option<ExitStatus>,
    telemetry: Option<SocketAddr>,
    config_path: PathBuf,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

impl Agent {
    /// Starts `logship --config <dir>/logship-<n>.toml` and waits for `/health`. Panics with
    /// the agent's log if it does not come up.
    pub fn start(config_toml: &str, dir: impl AsRef<Path>) -> Agent {
        Self::start_with(config_toml, dir, AgentOptions::default())
    }

    /// [`Agent::start`] with options. Panics with the agent's log if it does not come up.
    pub fn start_with(config_toml: &str, dir: impl AsRef<Path>, opts: AgentOptions) -> Agent {
        Self::try_start_with(config_toml, dir, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the agent; `Err` carries its log when it exits or stays unhealthy.
    pub fn try_start_with(
        config_toml: &str,
        dir: impl AsRef<Path>,
        opts: AgentOptions,
    ) -> Result<Agent, HarnessError> {
        let dir = dir.as_ref();
        let bin = opts.program.clone().unwrap_or_else(logship_bin);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let config_path = dir.join(format!("logship-{n}.toml"));
        let stdout_path = dir.join(format!("agent-{n}.stdout.log"));
        let stderr_path = dir.join(format!("agent-{n}.stderr.log"));
        fs::write(&config_path, config_toml).map_err(io_err("writing the config"))?;
        let stdout = File::create(&stdout_path).map_err(io_err("creating the stdout file"))?;
        let stderr = File::create(&stderr_path).map_err(io_err("creating the stderr file"))?;
        let stdin = match &opts.stdin {
            Some(p) => {
                Stdio::from(File::open(p).map_err(io_err(format!("opening {}", p.display())))?)
            }
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&bin);
        cmd.args(&opts.args);
        if opts.config_flag {
            cmd.arg("--config").arg(&config_path);
        }
        let child = cmd
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_BACKTRACE", "1")
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(io_err(format!("spawning {}", bin.display())))?;
        let mut agent = Agent {
            child,
            exit: None,
            telemetry: telemetry_addr(config_toml),
            config_path,
            stdout_path,
            stderr_path,
        };
        agent.wait_healthy(opts.startup_timeout)?;
        Ok(agent)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let Some(addr) = self.telemetry else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(HarnessError::Startup {
                    reason: format!("exited with {status} before /health answered"),
                    log: self.log(),
                });
            }
            if http::get(addr, "/health").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(HarnessError::Startup {
                    reason: format!("/health on {addr} did not answer 200 within {timeout:?}"),
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The telemetry address from the config. Panics when telemetry is disabled.
    pub fn telemetry_addr(&self) -> SocketAddr {
        self.telemetry
            .unwrap_or_else(|| panic!("this agent's config disables telemetry"))
    }

    /// The config file it runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.try_exit_status().is_none()
    }

    fn signal(&mut self, sig: libc::c_int) {
        if self.is_running() {
            let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
                return;
            };
            // SAFETY: kill(2) with a pid this struct spawned and has not reaped yet.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGHUP: asks the agent to reload its config (rewrite [`Agent::config_path`] first).
    pub fn hup(&mut self) {
        self.signal(libc::SIGHUP);
    }

    /// Replaces the config file and sends SIGHUP.
    pub fn reload(&mut self, config_toml: &str) {
        fs::write(&self.config_path, config_toml)
            .unwrap_or_else(|e| panic!("rewriting {}: {e}", self.config_path.display()));
        self.hup();
    }

    /// SIGKILL, then reaps the process.
    pub fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        if self.exit.is_none() {
            self.exit = self.child.wait().ok();
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_exit_status().is_some());
        self.exit
    }

    /// SIGTERM and waits up to `timeout`; `None` if still running (it is then left running,
    /// and killed on drop).
    pub fn terminate_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(timeout)
    }

    /// SIGTERM, waits up to 30 s, returns the exit status. Panics (after SIGKILL) when the
    /// agent does not exit.
    pub fn terminate(&mut self) -> ExitStatus {
        match self.terminate_within(Duration::from_secs(30)) {
            Some(s) => s,
            None => {
                self.kill9();
                panic!("agent ignored SIGTERM for 30 s\n{}", self.log());
            }
        }
    }

    /// `GET /metrics` body. Panics when unreachable.
    pub fn metrics(&self) -> String {
        match http::get(self.telemetry_addr(), "/metrics") {
            Ok(r) => r.text(),
            Err(e) => panic!("GET /metrics failed: {e}"),
        }
    }

    /// Sum of the series of `name` matching `labels` in `/metrics` (0 when absent).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        prom::sum(&self.metrics(), name, labels)
    }

    /// Waits until [`Agent::metric`] is at least `min`.
    pub fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        min: f64,
        timeout: Duration,
    ) -> bool {
        wait_until(timeout, || {
            http::get(self.telemetry_addr(), "/metrics")
                .is_ok_and(|r| prom::sum(&r.text(), name, labels) >= min)
        })
    }

    /// `GET /ready`: (status, body). Panics when unreachable.
    pub fn ready(&self) -> (u16, String) {
        match http::get(self.telemetry_addr(), "/ready") {
            Ok(r) => (r.status, r.text()),
            Err(e) => panic!("GET /ready failed: {e}"),
        }
    }

    /// `GET /health`: (status, body). Panics when unreachable.
    pub fn health(&self) -> (u16, String) {
        match http::get(self.telemetry_addr(), "/health") {
            Ok(r) => (r.status, r.text()),
            Err(e) => panic!("GET /health failed: {e}"),
        }
    }

    /// The agent's stdout followed by its stderr.
    pub fn log(&self) -> String {
        let out = fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let err = fs::read_to_string(&self.stderr_path).unwrap_or_default();
        format!("--- stdout ---\n{out}--- stderr ---\n{err}")
    }

    /// Current RSS in KiB, if running.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "=== logship (config {}) log ===\n{}",
                self.config_path.display(),
                self.log()
            );
        }
    }
}

/// A finished command-line run.
#[derive(Debug)]
pub struct CliRun {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `logship <args>` to completion (killed after `timeout`). Panics if it cannot be
/// spawned or does not finish in time.
pub fn run_cli(args: &[&str], timeout: Duration) -> CliRun {
    run_program(&logship_bin(), args, timeout)
}

/// [`run_cli`] in directory `dir`, so relative paths in messages are as a user types them.
pub fn run_cli_in(dir: &Path, args: &[&str], timeout: Duration) -> CliRun {
    let mut cmd = Command::new(logship_bin());
    cmd.current_dir(dir);
    run_command(cmd, args, timeout)
}

/// Runs `program <args>` to completion, killed by pid after `timeout`. Panics if it cannot be
/// spawned or does not finish in time.
pub fn run_program(program: &Path, args: &[&str], timeout: Duration) -> CliRun {
    run_command(Command::new(program), args, timeout)
}

fn run_command(mut cmd: Command, args: &[&str], timeout: Duration) -> CliRun {
    let program = PathBuf::from(cmd.get_program());
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", program.display()));
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let deadline = Instant::now() + timeout;
    while !waiter.is_finished() {
        if Instant::now() >= deadline {
            if let Ok(p) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) on the child we spawned; the waiter thread reaps it.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
            let _ = waiter.join();
            panic!(
                "{} {args:?} did not finish within {timeout:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = match waiter.join() {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!("waiting for {} {args:?}: {e}", program.display()),
        Err(_) => panic!("waiter thread for {} panicked", program.display()),
    };
    CliRun {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[cfg(test)]
mod tests;
