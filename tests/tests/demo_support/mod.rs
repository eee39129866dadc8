//! What the demo tests share: the demo's binaries, real PostgreSQL and Redis servers started
//! as child processes on free ports (and stopped by pid), and the two services.
//!
//! A test that needs PostgreSQL or Redis fails when they are not installed and `CI=true`;
//! elsewhere it prints why and returns early. Install them with
//! `demo/scripts/install-test-services.sh` (Debian's `postgresql` and `redis-server`).
// Each demo test file uses a different part of this module.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use logship_tests::harness::{free_port, target_dir, wait_until, workspace_root};
use logship_tests::http;

/// The demo's programs, built once per test process (debug profile).
pub struct DemoBins {
    /// `order-api`.
    pub order_api: PathBuf,
    /// `order-worker`.
    pub order_worker: PathBuf,
    /// `demo`, the quickstart runner.
    pub demo: PathBuf,
}

/// Builds `logship-demo`'s binaries once and returns their paths; panics with cargo's output
/// when the build fails.
pub fn demo_bins() -> &'static DemoBins {
    static BINS: OnceLock<Result<DemoBins, String>> = OnceLock::new();
    let r = BINS.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(&cargo)
            .args(["build", "-p", "logship-demo", "--bins"])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building logship-demo failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let dir = target_dir().join("debug");
        Ok(DemoBins {
            order_api: dir.join("order-api"),
            order_worker: dir.join("order-worker"),
            demo: dir.join("demo"),
        })
    });
    match r {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// True when running in CI, where a missing service is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Panics in CI, otherwise prints why the test does nothing; returns `None` for the caller to
/// return early.
pub fn missing<T>(what: &str) -> Option<T> {
    let msg = format!(
        "{what} is not installed; run demo/scripts/install-test-services.sh \
         (apt-get install postgresql redis-server)"
    );
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

fn find_program(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn postgres_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

fn is_root() -> bool {
    // SAFETY: geteuid only reads the process's credentials.
    unsafe { libc::geteuid() == 0 }
}

fn stop_child(child: &mut Child, signal: i32, grace: Duration) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(pid, signal);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A PostgreSQL server in a temporary directory, owned by this test.
pub struct Postgres {
    child: Child,
    port: u16,
    psql: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Initialises and starts a cluster on a free port (as the `postgres` user when running
    /// as root, since PostgreSQL refuses root). `None` (or a panic in CI) when not installed.
    pub fn start() -> Option<Postgres> {
        let dirs = postgres_dirs();
        let (Some(initdb), Some(postgres), Some(psql)) = (
            find_program("initdb", &dirs),
            find_program("postgres", &dirs),
            find_program("psql", &dirs),
        ) else {
            return missing("PostgreSQL");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        fs::create_dir(&data).expect("data dir");
        let as_postgres = |program: &Path| {
            if is_root() {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ])
                .arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        if is_root() {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&data)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the data directory failed");
        }
        let out = as_postgres(&initdb)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdin(Stdio::null())
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = File::create(dir.path().join("postgres.log")).expect("log file");
        let child = as_postgres(&postgres)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&data)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        let mut pg = Postgres {
            child,
            port,
            psql,
            _dir: dir,
        };
        let ready = wait_until(Duration::from_secs(30), || pg.try_query("SELECT 1").is_ok());
        if !ready {
            let log = fs::read_to_string(pg._dir.path().join("postgres.log")).unwrap_or_default();
            stop_child(&mut pg.child, libc::SIGINT, Duration::from_secs(5));
            panic!("PostgreSQL did not start:\n{log}");
        }
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one statement with psql; the rows as `|`-separated lines.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args([
                "-d",
                "postgres",
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// [`Postgres::try_query`], panicking on error.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// A single integer result.
    pub fn count(&self, sql: &str) -> i64 {
        let v = self.query(sql);
        v.parse()
            .unwrap_or_else(|_| panic!("{sql} gave {v:?}, not a number"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to leave.
        stop_child(&mut self.child, libc::SIGINT, Duration::from_secs(10));
    }
}

/// A Redis server with an append-only file, so a stop and start keeps the queue, as a
/// production Redis would.
pub struct Redis {
    child: Option<Child>,
    program: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server on a free port. `None` (or a panic in CI) when not installed.
    pub fn start() -> Option<Redis> {
        let Some(program) = find_program("redis-server", &[]) else {
            return missing("Redis");
        };
        let mut r = Redis {
            child: None,
            program,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        r.resume();
        Some(r)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and data directory.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("redis.log"))
            .expect("log");
        let child = Command::new(&self.program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let up = wait_until(Duration::from_secs(15), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        assert!(up, "redis-server did not start: {}", self.log());
    }

    /// Stops the server (SIGTERM: it writes its append-only file and exits).
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGTERM, Duration::from_secs(10));
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Environment variables a developer may have set that would change what the tests see.
const SCRUBBED: &[&str] = &[
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "DATABASE_URL",
    "REDIS_URL",
    "LOKI_URL",
    "RUST_LOG",
];

/// A running demo service whose stdout and stderr are appended to `<logs>/<name>.log`.
pub struct Service {
    /// `order-api` or `order-worker`.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    program: PathBuf,
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Service {
    /// Starts `order-api` or `order-worker` with `env` (plus `LISTEN_ADDR`) and waits for
    /// `/healthz`.
    pub fn start(name: &'static str, logs: &Path, env: &[(&str, String)]) -> Service {
        let bins = demo_bins();
        let program = match name {
            "order-api" => bins.order_api.clone(),
            "order-worker" => bins.order_worker.clone(),
            other => panic!("unknown service {other}"),
        };
        fs::create_dir_all(logs).expect("creating the logs directory");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut s = Service {
            name,
            addr,
            program,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            log_path: logs.join(format!("{name}.log")),
            child: None,
        };
        s.restart();
        s
    }

    /// Starts the process again (appending to the same log file, as a restarted container
    /// would) and waits until it is healthy.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut cmd = Command::new(&self.program);
        for v in SCRUBBED {
            cmd.env_remove(v);
        }
        cmd.env("LISTEN_ADDR", self.addr.to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("starting a demo service"));
        let ok = wait_until(Duration::from_secs(60), || {
            self.get("/healthz").is_ok_and(|(status, _)| status == 200)
        });
        assert!(ok, "{} did not become healthy:\n{}", self.name, self.log());
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (spans are flushed on the way out).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, libc::SIGTERM, Duration::from_secs(20));
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The log's JSON lines (other lines skipped).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// GET `path`: status and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        let r = http::request(self.addr, "GET", path, &[], b"", Duration::from_secs(5))?;
        Ok((r.status, r.text()))
    }

    /// POST a JSON body: status and parsed body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let bytes = body.to_string();
        let r = http::request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            bytes.as_bytes(),
            Duration::from_secs(10),
        )
        .expect("POST");
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
        self.kill9();
    }
}

/// A valid order for `customer`.
pub fn order(customer: &str) -> serde_json::Value {
    serde_json::json!({
        "customer_id": customer,
        "currency": "EUR",
        "items": [
            {"sku": "espresso-beans-1kg", "quantity": 2, "unit_price_cents": 2490},
            {"sku": "milk-jug", "quantity": 1, "unit_price_cents": 1450}
        ]
    })
}

/// Posts `n` valid orders; returns their ids. Panics unless each is answered 202.
pub fn post_orders(api: &Service, n: usize, prefix: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (status, body) = api.post_json("/v1/orders", &order(&format!("{prefix}-{i}")));
            assert_eq!(status, 202, "order {i}: {body}");
            body["id"].as_str().expect("id").to_owned()
        })
        .collect()
}

/// The statuses of `ids`, read from the database (not through the API: a read request would
/// add lines with a trace of their own to the order's logs).
pub fn statuses(pg: &Postgres, ids: &[String]) -> Vec<String> {
    let rows = pg.query("SELECT id, status FROM orders");
    let by_id: std::collections::HashMap<&str, &str> =
        rows.lines().filter_map(|l| l.split_once('|')).collect();
    ids.iter()
        .map(|id| {
            by_id
                .get(id.as_str())
                .copied()
                .unwrap_or("missing")
                .to_owned()
        })
        .collect()
}

/// Waits until no order in `ids` is `pending`; returns the statuses.
pub fn wait_settled(pg: &Postgres, ids: &[String], timeout: Duration) -> Vec<String> {
    let mut st = Vec::new();
    wait_until(timeout, || {
        st = statuses(pg, ids);
        st.iter().all(|s| s == "paid" || s == "failed")
    });
    st
}

/// Runs `cmd` to completion with its output captured, killing it by pid after `timeout`.
pub fn output_within(mut cmd: Command, timeout: Duration) -> std::process::Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("waiting for the command"),
        Err(_) => {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: signalling our own child by its pid.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
    }
}
