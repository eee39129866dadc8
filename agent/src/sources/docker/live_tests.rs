//! The docker source against a real Docker engine, driven directly (a Fanout into a channel
//! that acknowledges what it receives), so Docker's own behaviour — 16 KiB pieces, TTY
//! streams, `since` — is checked without the rest of the agent.
//!
//! They need a daemon on `/var/run/docker.sock` and the `logship-test-busybox:latest` image
//! (`scripts/docker-env.sh start`). Without one they print "skipped: no docker" and pass,
//! except under `CI=true`, where they fail.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::DockerSource;
use super::checkpoint::{CHECKPOINT_FILE, CheckpointDoc};
use crate::checkpoints::CheckpointFile;
use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Fanout};
use crate::sources::harness;

const IMAGE: &str = "logship-test-busybox:latest";

/// True when the daemon answers `/_ping` and the test image exists; under `CI=true` a
/// missing daemon is a failure.
fn docker_ready() -> bool {
    let ping = || -> std::io::Result<bool> {
        let mut s = UnixStream::connect("/var/run/docker.sock")?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200"))
    };
    let ok = ping().unwrap_or(false)
        && Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true but no Docker daemon answers on /var/run/docker.sock (or {IMAGE} is missing): \
             run scripts/docker-env.sh start first"
        );
    }
    if !ok {
        eprintln!("skipped: no docker");
    }
    ok
}

/// A container removed (`docker rm -f`) when dropped.
struct Container {
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

fn unique_prefix(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "lsunit-{}-{}-{test}-",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn run_container(name: &str, extra: &[&str], script: &str) -> Container {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    docker(&args);
    Container {
        name: name.to_owned(),
    }
}

/// One received line.
#[derive(Debug, Clone)]
struct Got {
    labels: String,
    container: String,
    stream: String,
    ts: i64,
    line: String,
}

/// A running source and the channel its chunks arrive on.
struct Running {
    ctx: ComponentContext,
    rx: mpsc::Receiver<Chunk>,
    task: tokio::task::JoinHandle<()>,
    got: Vec<Got>,
}

fn start(config: serde_json::Value, data_dir: &Path) -> Running {
    let config = serde_json::from_value(config).unwrap();
    let ctx = ComponentContext::for_test("containers", data_dir);
    let source = DockerSource::new(&config, ctx.clone()).unwrap();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let exit = harness::run(source, ctx, Fanout::new(vec![tx])).await;
            assert_eq!(exit, harness::SourceExit::Finished);
        }
    });
    Running {
        ctx,
        rx,
        task,
        got: Vec::new(),
    }
}

impl Running {
    fn take(&mut self, chunk: Chunk, ack: bool) {
        for e in &chunk.events {
            self.got.push(Got {
                labels: e.labels.selector().to_owned(),
                container: e.labels.get("container").unwrap_or("").to_owned(),
                stream: e.labels.get("stream").unwrap_or("").to_owned(),
                ts: e.timestamp_ns,
                line: String::from_utf8_lossy(&e.line).into_owned(),
            });
        }
        if ack {
            chunk.ack.delivered();
        }
    }

    /// Receives (and acknowledges) until `pred` holds; panics after `secs`.
    async fn until(&mut self, secs: u64, pred: impl Fn(&[Got]) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !pred(&self.got) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(chunk)) => self.take(chunk, true),
                Ok(None) => panic!("source stopped early"),
                Err(_) => panic!(
                    "timed out after {secs} s with {} lines; per container: {:?}",
                    self.got.len(),
                    per_container(&self.got)
                ),
            }
        }
    }

    /// Stops the source the way the agent does: shutdown, drain (acknowledging), drained.
    async fn stop(mut self) -> Vec<Got> {
        self.ctx.shutdown.cancel();
        while let Some(chunk) = self.rx.recv().await {
            self.take(chunk, true);
        }
        // The output closed and every chunk was acknowledged: the pipeline has drained. The
        // source returns after the checkpoint writer's final write, which waits for this.
        self.ctx.drained.cancel();
        self.task.await.unwrap();
        self.got
    }
}

fn per_container(got: &[Got]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for g in got {
        *m.entry(g.container.clone()).or_insert(0) += 1;
    }
    m
}

fn count(got: &[Got], container: &str) -> usize {
    got.iter().filter(|g| g.container == container).count()
}

/// `n` JSON lines with `"seq":1..=n` on stdout, every 10th also on stderr.
fn writer_script(n: u32) -> String {
    format!(
        r#"i=1; while [ $i -le {n} ]; do echo "{{\"seq\":$i,\"msg\":\"hello\"}}"; if [ $((i % 10)) -eq 0 ]; then echo "{{\"seq\":$i,\"err\":true}}" >&2; fi; i=$((i+1)); done; sleep 3600"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_running_and_new_containers_with_labels() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("labels");
    let dir = tempfile::tempdir().unwrap();
    let a = format!("{p}a");
    let _ca = run_container(
        &a,
        &[
            "--label",
            "com.docker.compose.service=api",
            "--label",
            "com.docker.compose.project=shop",
        ],
        &writer_script(500),
    );
    let mut src = start(
        serde_json::json!({
            "include_containers": [p.clone()],
            "structured_metadata": {"container_id": "container_id", "image": "image"}
        }),
        dir.path(),
    );
    src.until(30, |g| count(g, &a) >= 550).await;
    // A container started after the source, with a TTY.
    let b = format!("{p}b");
    let _cb = run_container(&b, &["-t"], &writer_script(300));
    src.until(30, |g| count(g, &b) >= 330).await;
    // Stay a moment: nothing more may come.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = src.stop().await;
    assert_eq!(count(&got, &a), 550);
    assert_eq!(count(&got, &b), 330);
    let a_out = got
        .iter()
        .find(|g| g.container == a && g.stream == "stdout")
        .unwrap();
    assert_eq!(
        a_out.labels,
        format!(
            r#"{{compose_project="shop", compose_service="api", container="{a}", stream="stdout"}}"#
        )
    );
    assert_eq!(
        got.iter()
            .filter(|g| g.container == a && g.stream == "stderr")
            .count(),
        50
    );
    // TTY: one stream, reported as stdout, `\r\n` removed.
    assert!(
        got.iter()
            .filter(|g| g.container == b)
            .all(|g| g.stream == "stdout")
    );
    assert!(
        got.iter()
            .all(|g| !g.line.ends_with('\r') && !g.line.ends_with('\n'))
    );
    assert!(got.iter().any(|g| g.line == r#"{"seq":300,"msg":"hello"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_arrive_whole_with_and_without_tty() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("long");
    let dir = tempfile::tempdir().unwrap();
    // 40,000 'a's between two markers, then a short line.
    let script =
        "printf 'BEGIN'; head -c 40000 /dev/zero | tr '\\0' a; echo END; echo short; sleep 3600";
    let plain = format!("{p}plain");
    let tty = format!("{p}tty");
    let _c1 = run_container(&plain, &[], script);
    let _c2 = run_container(&tty, &["-t"], script);
    let mut src = start(
        serde_json::json!({"include_containers": [p.clone()]}),
        dir.path(),
    );
    src.until(30, |g| count(g, &plain) >= 2 && count(g, &tty) >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = src.stop().await;
    for name in [&plain, &tty] {
        let lines: Vec<&Got> = got.iter().filter(|g| &g.container == name).collect();
        assert_eq!(
            lines.len(),
            2,
            "{name}: {:?}",
            lines.iter().map(|g| g.line.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[0].line.len(), 40_008, "{name}");
        assert!(lines[0].line.starts_with("BEGINaaa") && lines[0].line.ends_with("aaaEND"));
        assert_eq!(lines[1].line, "short");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_of_the_source_resumes_without_loss_or_duplicates() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("resume");
    let dir = tempfile::tempdir().unwrap();
    let trigger = tempfile::tempdir().unwrap();
    let mount = format!("{}:/x", trigger.path().display());
    let name = format!("{p}w");
    // 300 lines, wait for /x/go, 300 more, wait.
    let script = r#"i=1; while [ $i -le 300 ]; do echo "{\"seq\":$i}"; i=$((i+1)); done;
        while [ ! -e /x/go ]; do usleep 50000; done;
        while [ $i -le 600 ]; do echo "{\"seq\":$i}"; i=$((i+1)); done; sleep 3600"#;
    let _c = run_container(&name, &["-v", &mount], script);
    let cfg = serde_json::json!({"include_containers": [p.clone()]});

    let mut first = start(cfg.clone(), dir.path());
    first.until(30, |g| count(g, &name) >= 300).await;
    let got1 = first.stop().await;
    assert_eq!(count(&got1, &name), 300);
    let doc: CheckpointDoc = CheckpointFile::new(dir.path(), CHECKPOINT_FILE)
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(doc.containers.len(), 1, "{doc:?}");

    // Lines written while the source is down.
    std::fs::write(trigger.path().join("go"), b"").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut second = start(cfg.clone(), dir.path());
    second.until(30, |g| count(g, &name) >= 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got2 = second.stop().await;
    let seqs: Vec<String> = got2.iter().map(|g| g.line.clone()).collect();
    assert_eq!(
        seqs.len(),
        300,
        "first: {:?} last: {:?}",
        seqs.first(),
        seqs.last()
    );
    assert_eq!(seqs[0], r#"{"seq":301}"#);
    assert_eq!(seqs[299], r#"{"seq":600}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_lines_are_sent_again_after_a_restart() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("unacked");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{p}w");
    let _c = run_container(&name, &[], &writer_script(2000));
    let cfg = serde_json::json!({"include_containers": [p.clone()]});
    let mut first = start(cfg.clone(), dir.path());
    // Acknowledge the first chunk only, hold the rest as "in flight".
    let chunk = first.rx.recv().await.unwrap();
    let acked = chunk.events.len();
    first.take(chunk, true);
    let mut held = Vec::new();
    while first.got.len() < 2200 {
        let c = tokio::time::timeout(Duration::from_secs(30), first.rx.recv())
            .await
            .unwrap()
            .unwrap();
        for e in &c.events {
            first.got.push(Got {
                labels: String::new(),
                container: name.clone(),
                stream: String::new(),
                ts: e.timestamp_ns,
                line: String::from_utf8_lossy(&e.line).into_owned(),
            });
        }
        held.push(c);
    }
    // Shutdown with those chunks never delivered (dropped = failed).
    first.ctx.shutdown.cancel();
    drop(held);
    let _ = first.stop().await;
    let mut second = start(cfg, dir.path());
    second.until(30, |g| g.len() >= 2200 - acked).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got2 = second.stop().await;
    assert_eq!(got2.len(), 2200 - acked);
    let mut ts: Vec<i64> = got2.iter().map(|g| g.ts).collect();
    ts.sort_unstable();
    ts.dedup();
    assert_eq!(ts.len(), got2.len(), "a line arrived twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_container_is_followed_again_without_duplicates() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("restart");
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{p}w");
    // Each run writes 200 lines and exits.
    let script =
        r#"i=1; while [ $i -le 200 ]; do echo "{\"seq\":$i}"; i=$((i+1)); done; echo err >&2"#;
    let _c = run_container(&name, &[], script);
    let mut src = start(
        serde_json::json!({"include_containers": [p.clone()]}),
        dir.path(),
    );
    src.until(30, |g| count(g, &name) >= 201).await;
    docker(&["wait", &name]);
    docker(&["start", &name]);
    src.until(30, |g| count(g, &name) >= 402).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = src.stop().await;
    assert_eq!(count(&got, &name), 402);
    assert_eq!(
        distinct_stamps(&got),
        402,
        "every line has its own timestamp"
    );
}

fn distinct_stamps(got: &[Got]) -> usize {
    let mut ts: Vec<(i64, &str)> = got.iter().map(|g| (g.ts, g.stream.as_str())).collect();
    ts.sort_unstable();
    ts.dedup();
    ts.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_own_container_are_respected() {
    if !docker_ready() {
        return;
    }
    let p = unique_prefix("filter");
    let dir = tempfile::tempdir().unwrap();
    let keep = format!("{p}keep");
    let skip = format!("{p}skip");
    let unlabelled = format!("{p}plain");
    let _c1 = run_container(
        &keep,
        &["--label", "logging=enabled"],
        "echo kept; sleep 3600",
    );
    let _c2 = run_container(
        &skip,
        &["--label", "logging=enabled"],
        "echo skipped; sleep 3600",
    );
    let _c3 = run_container(&unlabelled, &[], "echo unlabelled; sleep 3600");
    let mut src = start(
        serde_json::json!({
            "include_containers": [p.clone()],
            "exclude_containers": [skip.clone()],
            "include_labels": ["logging=enabled"],
        }),
        dir.path(),
    );
    src.until(30, |g| count(g, &keep) >= 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got = src.stop().await;
    assert_eq!(per_container(&got), HashMap::from([(keep.clone(), 1)]));
}
