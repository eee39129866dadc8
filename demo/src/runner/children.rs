//! The child processes: started in their own process group (so the terminal's Ctrl-C reaches
//! only the runner, which then stops them in order), told to die with the runner, and stopped
//! by pid.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// A running child.
pub struct ChildProcess {
    /// Short name for messages.
    pub name: &'static str,
    child: Child,
}

impl ChildProcess {
    /// Starts `program` with `env` added, stdout and stderr as given.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
        stdout: Stdio,
        stderr: Stdio,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches only this (forked) process.
        unsafe {
            cmd.pre_exec(|| {
                // If the runner dies without stopping us (kill -9), we go too.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self { name, child })
    }

    /// The pid, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The child's piped stdout, once.
    pub fn take_stdout(&mut self) -> Option<tokio::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL after `grace`. Returns how it ended.
    pub async fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: sending a signal to our own child by its pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                eprintln!(
                    "demo: {} did not stop within {grace:?}; killing it",
                    self.name
                );
                let _ = self.child.kill().await;
                self.child.wait().await.ok()
            }
        }
    }
}
