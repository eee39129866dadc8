//! The agent under test as a process: finding the release binary, and reading its CPU time
//! and peak memory from `/proc`.

use std::path::PathBuf;
use std::process::{Child, Command};

/// The `logship` binary to measure: `$LOGSHIP_BIN` when set (to compare another build, say the
/// one before a change), else the workspace's release binary, built first.
pub fn release_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("LOGSHIP_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("logship");
    let status = logship_tests::harness::cargo_command()
        // With this crate selected too, features resolve as for `cargo run -p
        // logship-benches` (which depends on the agent), so the agent is not rebuilt.
        .args([
            "build",
            "--release",
            "-p",
            "logship-benches",
            "-p",
            "logship-agent",
            "--bins",
        ])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !bin.exists() {
        return Err(format!("building {} failed", bin.display()));
    }
    Ok(bin)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// CPU and memory used by a process so far.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User CPU seconds.
    pub user: f64,
    /// System CPU seconds.
    pub system: f64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

impl Usage {
    /// User plus system seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.user + self.system
    }
}

/// A child process stopped by its pid when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    /// Wraps a started child.
    pub fn new(child: Child) -> Self {
        Self { child }
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time and peak RSS so far, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
    pub fn usage(&self) -> Option<Usage> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = clock_ticks();
        let user = fields.get(11)?.parse::<f64>().ok()? / ticks;
        let system = fields.get(12)?.parse::<f64>().ok()? / ticks;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
        Some(Usage {
            user,
            system,
            peak_rss_kib,
        })
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) with our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// One measured run of the agent: how long it took to deliver everything and what it used.
#[derive(Debug, Clone, Copy)]
pub struct Measurement {
    /// From start-up until the receiver had every line.
    pub wall: std::time::Duration,
    /// The agent's CPU time and peak memory at that moment.
    pub usage: Usage,
}

impl Measurement {
    /// Prints the figures for `lines` lines of `bytes` bytes, each row indented by `indent`.
    pub fn print(&self, indent: &str, lines: usize, bytes: u64) {
        let secs = self.wall.as_secs_f64();
        let u = &self.usage;
        println!("{indent}wall          {secs:.2} s");
        println!("{indent}lines/s       {:.0}", lines as f64 / secs);
        println!("{indent}MB/s          {:.1}", bytes as f64 / 1e6 / secs);
        println!(
            "{indent}cpu seconds   {:.2} (user {:.2}, sys {:.2})",
            u.cpu_seconds(),
            u.user,
            u.system
        );
        println!(
            "{indent}lines/cpu-s   {:.0}",
            lines as f64 / u.cpu_seconds()
        );
        println!(
            "{indent}peak rss      {:.1} MiB",
            u.peak_rss_kib as f64 / 1024.0
        );
    }
}

/// Runs `bin --config config` until `receiver` has counted `lines` entries (at most 600 s),
/// measures the agent, and stops it.
pub fn run_until_delivered(
    bin: &std::path::Path,
    config: &std::path::Path,
    receiver: &logship_tests::loki::LokiReceiver,
    lines: usize,
) -> Result<Measurement, String> {
    let started = std::time::Instant::now();
    let child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .env("LOGSHIP_LOG", "warn")
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let mut proc = Process::new(child);
    let done = receiver.wait_for_count(lines, std::time::Duration::from_secs(600));
    let wall = started.elapsed();
    let usage = proc.usage();
    proc.terminate();
    if !done {
        return Err(format!(
            "only {} of {lines} lines arrived within 600 s",
            receiver.count()
        ));
    }
    let usage = usage.ok_or("could not read /proc for the agent")?;
    Ok(Measurement { wall, usage })
}
