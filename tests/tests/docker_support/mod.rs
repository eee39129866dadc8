//! What the Docker end-to-end tests share: the daemon check, containers that remove
//! themselves, JSON writers in busybox sh, the docker → json → Loki config, and reading the
//! agent's container checkpoint.
//!
//! The daemon comes from `scripts/docker-env.sh start` (dockerd with `--live-restore`, no
//! bridge, image `logship-test-busybox:latest`). Without a daemon the tests print
//! "skipped: no docker" and pass, except under `CI=true`, where they fail.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use logship_tests::harness::{free_port, workspace_root};
use logship_tests::loki::{LokiReceiver, ReceivedEntry};
use logship_tests::pipeline::toml_str;
use logship_tests::seqs::{SeqCounts, count_seq_lines};

/// The image every test container runs.
pub const IMAGE: &str = "logship-test-busybox:latest";
/// The trace id every writer line carries.
pub const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn daemon_answers() -> bool {
    let ping = || -> std::io::Result<bool> {
        let mut s = UnixStream::connect("/var/run/docker.sock")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
    };
    ping().unwrap_or(false)
}

/// True when a daemon answers and the test image exists. Under `CI=true` anything else
/// fails the test; otherwise it prints "skipped: no docker".
pub fn require_docker() -> bool {
    let ok = daemon_answers()
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but no Docker daemon answers on /var/run/docker.sock (or {IMAGE} is \
                 missing): run `scripts/docker-env.sh start` before the tests"
            );
        }
        eprintln!("skipped: no docker");
    }
    ok
}

/// Runs `docker <args>`, panicking with its stderr when it fails; returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// True when the running daemon was started by `scripts/docker-env.sh` (its pid file names a
/// live dockerd), so the script can stop and start it.
pub fn daemon_started_by_script() -> bool {
    let dir =
        std::env::var("LOGSHIP_DOCKERD_DIR").unwrap_or_else(|_| "/tmp/logship-dockerd".into());
    let Ok(pid) = std::fs::read_to_string(Path::new(&dir).join("dockerd.pid")) else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{}/comm", pid.trim()))
        .is_ok_and(|c| c.trim() == "dockerd")
}

/// `scripts/docker-env.sh <cmd>`; panics when it fails.
pub fn docker_env(cmd: &str) {
    let script = workspace_root().join("scripts").join("docker-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(cmd)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} {cmd} failed: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A container that is removed (`docker rm -f`) when dropped.
pub struct Container {
    /// Its name.
    pub name: String,
    /// Its full id.
    pub id: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// `docker run -d --network none <extra> IMAGE sh -c <script>` named `name`.
pub fn run_container(name: &str, extra: &[&str], script: &str) -> Container {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    let id = docker(&args);
    Container {
        name: name.to_owned(),
        id,
    }
}

/// A container name prefix unique to this process and call, so tests running side by side
/// (and leftovers of earlier runs) never see each other's containers.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "lse2e-{}-{}-{test}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A busybox-sh script writing JSON lines `"seq":1..=total` to stdout, `per_batch` lines
/// then a `usleep pause_us`; every 10th line also goes to stderr as `"stream_seq"`. It then
/// sleeps, so the container keeps running.
pub fn json_writer(total: u64, per_batch: u64, pause_us: u64) -> String {
    format!(
        r#"i=1; while [ $i -le {total} ]; do j=0; while [ $j -lt {per_batch} ] && [ $i -le {total} ]; do echo "{{\"level\":\"info\",\"service\":\"order-api\",\"seq\":$i,\"trace_id\":\"{TRACE_ID}\",\"msg\":\"order placed\"}}"; if [ $((i % 10)) -eq 0 ]; then echo "{{\"level\":\"error\",\"service\":\"order-api\",\"err_seq\":$i}}" >&2; fi; i=$((i+1)); j=$((j+1)); done; usleep {pause_us}; done; sleep 3600"#
    )
}

/// The test agent: a docker source `containers` (with `source_lines` added) → a json
/// transform (labels service and level, trace_id as metadata, Docker's timestamps kept) →
/// Loki at `loki_url`; `extra` is appended verbatim (more sources, say).
pub struct DockerPipeline {
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// Telemetry port on 127.0.0.1.
    pub telemetry_port: u16,
    /// Lines for `[sources.containers]`.
    pub source_lines: Vec<String>,
    /// Ids the transform reads (default just `containers`).
    pub transform_inputs: Vec<String>,
    /// Loki base URL.
    pub endpoint: String,
    /// TOML appended at the end.
    pub extra: String,
}

impl DockerPipeline {
    /// Follows containers whose name starts with `prefix`.
    pub fn new(dir: &Path, loki_url: &str, prefix: &str) -> Self {
        Self {
            data_dir: dir.join("data"),
            telemetry_port: free_port(),
            source_lines: vec![format!("include_containers = [{}]", toml_str(prefix))],
            transform_inputs: vec!["containers".to_owned()],
            endpoint: loki_url.to_owned(),
            extra: String::new(),
        }
    }

    /// Adds a line to `[sources.containers]`.
    pub fn source(mut self, line: &str) -> Self {
        self.source_lines.push(line.to_owned());
        self
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "data_dir = {}",
            toml_str(&self.data_dir.to_string_lossy())
        );
        let _ = writeln!(
            t,
            "\n[telemetry]\naddress = \"127.0.0.1:{}\"",
            self.telemetry_port
        );
        let _ = writeln!(t, "\n[sources.containers]\ntype = \"docker\"");
        for l in &self.source_lines {
            let _ = writeln!(t, "{l}");
        }
        let inputs: Vec<String> = self.transform_inputs.iter().map(|i| toml_str(i)).collect();
        let _ = writeln!(
            t,
            "\n[transforms.parse]\ntype = \"json\"\ninputs = [{}]\n\
             labels = {{ service = \"service\", level = \"level\" }}\n\
             structured_metadata = {{ trace_id = \"trace_id\" }}",
            inputs.join(", ")
        );
        let _ = writeln!(
            t,
            "\n[sinks.loki]\ntype = \"loki\"\ninputs = [\"parse\"]\nendpoint = {}\n\
             batch = {{ timeout_ms = 200 }}\n\
             request = {{ retry_initial_backoff_ms = 50, retry_max_backoff_ms = 1000 }}",
            toml_str(&self.endpoint)
        );
        t.push_str(&self.extra);
        t
    }
}

/// Received entries of container `name`.
pub fn entries_of(loki: &LokiReceiver, name: &str) -> Vec<ReceivedEntry> {
    loki.with_entries(|all| {
        all.iter()
            .filter(|e| e.label("container") == Some(name))
            .cloned()
            .collect()
    })
}

/// Seq counts of container `name`'s stdout lines against `1..=total`.
pub fn stdout_seqs(loki: &LokiReceiver, name: &str, total: u64) -> SeqCounts {
    loki.with_entries(|all| {
        count_seq_lines(
            all.iter()
                .filter(|e| {
                    e.label("container") == Some(name) && e.label("stream") == Some("stdout")
                })
                .map(|e| e.line.as_slice()),
            total,
        )
    })
}

/// Stderr lines (`"err_seq"`) of container `name`.
pub fn stderr_count(loki: &LokiReceiver, name: &str) -> usize {
    loki.with_entries(|all| {
        all.iter()
            .filter(|e| e.label("container") == Some(name) && e.label("stream") == Some("stderr"))
            .count()
    })
}

/// Polls until every named container's seqs `1..=total` arrived and it has at least
/// `total + total / 10` lines (its stderr lines too; a TTY container has them on its one
/// stream), or `timeout`; returns the stdout seq counts per container.
pub fn wait_complete(
    loki: &LokiReceiver,
    names: &[&str],
    total: u64,
    timeout: Duration,
) -> Vec<SeqCounts> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let counts: Vec<SeqCounts> = names.iter().map(|n| stdout_seqs(loki, n, total)).collect();
        let errs_done = names
            .iter()
            .all(|n| entries_of(loki, n).len() >= (total + total / 10) as usize);
        if (counts.iter().all(|c| c.missing.is_empty()) && errs_done)
            || std::time::Instant::now() >= deadline
        {
            return counts;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One stream position in the agent's `containers.json`.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct StreamPos {
    /// Unix ns of the last acknowledged line.
    pub ts: i64,
    /// Lines acknowledged at exactly `ts`.
    pub n: u32,
}

/// One container's checkpoint.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Cursor {
    /// Standard output.
    pub stdout: StreamPos,
    /// Standard error.
    pub stderr: StreamPos,
}

#[derive(serde::Deserialize)]
struct Entry {
    cursor: Cursor,
}

#[derive(serde::Deserialize)]
struct Doc {
    containers: BTreeMap<String, Entry>,
}

/// The docker source's checkpoint, by container id: `<data_dir>/containers/containers.json`,
/// or its `.latest` file when there is one (what the agent itself loads after a crash).
pub fn read_checkpoint(data_dir: &Path) -> BTreeMap<String, Cursor> {
    let durable = data_dir.join("containers").join("containers.json");
    let latest = data_dir.join("containers").join("containers.json.latest");
    // The latest file first: a durable write removes it, so when it is gone the durable
    // file is the newer one.
    let Some((path, bytes)) = [latest, durable]
        .into_iter()
        .find_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
    else {
        return BTreeMap::new();
    };
    let doc: Doc = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not a checkpoint: {e}", path.display()));
    doc.containers
        .into_iter()
        .map(|(k, v)| (k, v.cursor))
        .collect()
}

/// Entries of container `name` that arrived more than once (same stream, timestamp and
/// line), one per extra copy.
pub fn duplicates_of(loki: &LokiReceiver, name: &str) -> Vec<ReceivedEntry> {
    let mut seen = std::collections::HashSet::new();
    entries_of(loki, name)
        .into_iter()
        .filter(|e| {
            !seen.insert((
                e.label("stream").unwrap_or("").to_owned(),
                e.timestamp_ns,
                e.line.clone(),
            ))
        })
        .collect()
}
