//! The `kubernetes_logs` source end to end: the real binary over a `/var/log/pods` tree, a
//! Kubernetes API server that speaks the real protocol (`logship_tests::kube_api`: HTTPS,
//! bearer token, list + watch, 410, 403) and the Loki receiver. Every test counts lines: the
//! API only ever adds labels; it never costs a line.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use logship_tests::harness::{Agent, free_port, serial, wait_until};
use logship_tests::kube_api::{KubeApi, TOKEN, TestPod};
use logship_tests::logwriter::append_raw;
use logship_tests::loki::{LokiReceiver, ReceivedEntry};
use logship_tests::pipeline::toml_str;
use logship_tests::pods::{append_cri_lines, append_cri_split, container_log};
use logship_tests::seqs::{count_seq_lines, seq_of};

const NODE: &str = "node-a";

/// One node: a pod log tree, an API server, a Loki receiver.
struct Node {
    dir: tempfile::TempDir,
    pods_dir: PathBuf,
    api: KubeApi,
    loki: LokiReceiver,
    kubeconfig: PathBuf,
    telemetry_port: u16,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pods_dir = dir.path().join("pods");
        std::fs::create_dir_all(&pods_dir).unwrap();
        let api = KubeApi::start_new().unwrap();
        let kubeconfig = api.kubeconfig(dir.path()).unwrap();
        Self {
            pods_dir,
            api,
            loki: LokiReceiver::new().unwrap(),
            kubeconfig,
            telemetry_port: free_port(),
            dir,
        }
    }

    /// The source config, with `extra` lines in the source table.
    fn config(&self, extra: &str) -> String {
        format!(
            r#"data_dir = {data}
[telemetry]
address = "127.0.0.1:{port}"

[sources.pods]
type = "kubernetes_logs"
node_name = "{NODE}"
pods_dir = {pods}
kubeconfig = {kubeconfig}
pod_labels = {{ app = "app.kubernetes.io/name" }}
pod_annotations_as_metadata = {{ team = "example.com/team" }}
exclude_namespaces = ["kube-system"]
{extra}

[sinks.loki]
type = "loki"
inputs = ["pods"]
endpoint = {endpoint}
batch = {{ timeout_ms = 100 }}
request = {{ retry_initial_backoff_ms = 50, retry_max_backoff_ms = 500 }}
"#,
            data = toml_str(&self.dir.path().join("data").to_string_lossy()),
            port = self.telemetry_port,
            pods = toml_str(&self.pods_dir.to_string_lossy()),
            kubeconfig = toml_str(&self.kubeconfig.to_string_lossy()),
            endpoint = toml_str(&self.loki.url()),
        )
    }

    fn start(&self, extra: &str) -> Agent {
        Agent::start(&self.config(extra), self.dir.path())
    }

    /// The pod's `app` container log (restart 0), directories created.
    fn log_of(&self, pod: &TestPod) -> PathBuf {
        container_log(&pod.log_dir(&self.pods_dir), "app", 0).unwrap()
    }

    fn entries_with_seq(&self, seqs: &BTreeSet<u64>) -> Vec<ReceivedEntry> {
        self.loki.with_entries(|all| {
            all.iter()
                .filter(|e| seq_of(&e.line).is_some_and(|s| seqs.contains(&s)))
                .cloned()
                .collect()
        })
    }

    /// Waits until every seq in `seqs` arrived.
    fn wait_for(&self, seqs: &BTreeSet<u64>, timeout: Duration) -> bool {
        wait_until(timeout, || {
            let got: BTreeSet<u64> = self.loki.with_entries(|all| {
                all.iter()
                    .filter_map(|e| seq_of(&e.line))
                    .filter(|s| seqs.contains(s))
                    .collect()
            });
            got.len() == seqs.len()
        })
    }
}

fn seqs(r: std::ops::RangeInclusive<u64>) -> BTreeSet<u64> {
    r.collect()
}

fn web_pod(app: &str) -> TestPod {
    TestPod::new("shop", "web-7d4b9", "u-web", NODE)
        .label("app.kubernetes.io/name", app)
        .annotation("example.com/team", "payments")
}

/// Asserts that every entry of `seqs` carries these labels (and no others than the path's,
/// `stream`, and `extra`).
fn assert_labels(entries: &[ReceivedEntry], pod: &TestPod, app: Option<&str>) {
    assert!(!entries.is_empty(), "no entries to check");
    for e in entries {
        let mut want = vec![
            ("container", "app"),
            ("namespace", pod.namespace.as_str()),
            ("pod", pod.name.as_str()),
            ("stream", "stdout"),
        ];
        if let Some(app) = app {
            want.push(("app", app));
        }
        want.sort();
        let got: Vec<(&str, &str)> = e
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want, "labels of {}", e.line_str());
    }
}

#[test]
fn pods_get_their_labels_and_metadata_and_filters_hold() {
    let _g = serial();
    let node = Node::new();
    let web = web_pod("web");
    let system = TestPod::new("kube-system", "coredns-1", "u-sys", NODE);
    let quiet =
        TestPod::new("shop", "quiet-1", "u-quiet", NODE).annotation("logship.io/exclude", "true");
    for p in [&web, &system, &quiet] {
        node.api.add_pod(p.clone());
    }
    // A pod of another node: never listed to this agent (the field selector).
    node.api.add_pod(
        TestPod::new("shop", "elsewhere", "u-other", "node-b")
            .label("app.kubernetes.io/name", "other"),
    );
    let web_log = node.log_of(&web);
    append_cri_lines(&web_log, 1..=100).unwrap();
    append_cri_lines(&node.log_of(&system), 10_001..=10_050).unwrap();
    append_cri_lines(&node.log_of(&quiet), 20_001..=20_050).unwrap();

    let agent = node.start("metadata_wait_secs = 10");
    assert!(
        node.wait_for(&seqs(1..=100), Duration::from_secs(30)),
        "{}",
        agent.log()
    );
    let first = node.entries_with_seq(&seqs(1..=100));
    assert_labels(&first, &web, Some("web"));
    for e in &first {
        assert_eq!(e.metadata.get("team").map(String::as_str), Some("payments"));
    }

    // A pod created after start: the API first, then its files.
    let late =
        TestPod::new("shop", "late-1", "u-late", NODE).label("app.kubernetes.io/name", "late");
    node.api.add_pod(late.clone());
    append_cri_lines(&node.log_of(&late), 201..=300).unwrap();
    // Files before the API knows the pod (the kubelet is quicker than the watch): they wait.
    let early =
        TestPod::new("shop", "early-1", "u-early", NODE).label("app.kubernetes.io/name", "early");
    append_cri_lines(&node.log_of(&early), 301..=400).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    node.api.add_pod(early.clone());
    // A line the kubelet split into partial records arrives whole.
    let split = append_cri_split(&web_log, 500, 3).unwrap();
    assert!(
        node.wait_for(&seqs(201..=400), Duration::from_secs(30)),
        "{}",
        agent.log()
    );
    assert_labels(
        &node.entries_with_seq(&seqs(201..=300)),
        &late,
        Some("late"),
    );
    assert_labels(
        &node.entries_with_seq(&seqs(301..=400)),
        &early,
        Some("early"),
    );
    assert!(node.wait_for(&seqs(500..=500), Duration::from_secs(10)));
    let whole = node.entries_with_seq(&seqs(500..=500));
    assert_eq!(whole[0].line_str(), split);

    // A label edited on the pod: lines read from then on carry the new value.
    node.api.modify_pod(web_pod("web-v2"));
    std::thread::sleep(Duration::from_millis(1500));
    append_cri_lines(&web_log, 601..=650).unwrap();
    assert!(node.wait_for(&seqs(601..=650), Duration::from_secs(20)));
    assert_labels(
        &node.entries_with_seq(&seqs(601..=650)),
        &web,
        Some("web-v2"),
    );

    // The API's history is compacted: the watch's resourceVersion is too old (410), the
    // agent lists again and goes on watching.
    let lists_before = list_calls(&node.api);
    node.api.compact();
    assert!(
        wait_until(Duration::from_secs(20), || list_calls(&node.api)
            > lists_before),
        "no re-list after 410: {:?}",
        node.api.requests()
    );
    node.api.modify_pod(web_pod("web-v3"));
    std::thread::sleep(Duration::from_millis(1500));
    append_cri_lines(&web_log, 701..=750).unwrap();
    assert!(node.wait_for(&seqs(701..=750), Duration::from_secs(20)));
    assert_labels(
        &node.entries_with_seq(&seqs(701..=750)),
        &web,
        Some("web-v3"),
    );

    // Nothing from the excluded namespace or the excluded pod; everything else exactly once.
    std::thread::sleep(Duration::from_millis(1000));
    let all = node.loki.entries();
    assert!(
        !all.iter()
            .any(|e| e.label("namespace") == Some("kube-system")),
        "an excluded namespace was shipped"
    );
    assert!(
        !all.iter().any(|e| e.label("pod") == Some("quiet-1")),
        "a pod annotated logship.io/exclude was shipped"
    );
    let wanted: BTreeSet<u64> = (1..=100)
        .chain(201..=400)
        .chain([500])
        .chain(601..=650)
        .chain(701..=750)
        .collect();
    let got: Vec<u64> = all.iter().filter_map(|e| seq_of(&e.line)).collect();
    assert_eq!(got.len(), wanted.len(), "duplicates or strays: {got:?}");
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), wanted);

    // It watched this node's pods only, with the token, and never logged the token.
    let requests = node.api.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.contains("fieldSelector=spec.nodeName%3Dnode-a")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("watch=true")),
        "{requests:?}"
    );
    assert!(!agent.log().contains(TOKEN), "the bearer token was logged");
}

fn list_calls(api: &KubeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| !r.contains("watch=true"))
        .count()
}

#[test]
fn lines_ship_while_the_api_is_down_or_forbidden_and_get_labels_once_it_answers() {
    let _g = serial();
    let node = Node::new();
    let web = web_pod("web");
    node.api.add_pod(web.clone());
    node.api.stop();
    let log = node.log_of(&web);
    append_cri_lines(&log, 1..=100).unwrap();
    // A long metadata wait: lines must not wait for an API that is known to be failing.
    let agent = node.start("metadata_wait_secs = 120");
    assert!(
        node.wait_for(&seqs(1..=100), Duration::from_secs(20)),
        "lines waited for an unreachable API: {}",
        agent.log()
    );
    assert_labels(&node.entries_with_seq(&seqs(1..=100)), &web, None);
    assert!(agent.wait_for_metric(
        "logship_kubernetes_api_errors_total",
        &[("reason", "unreachable")],
        1.0,
        Duration::from_secs(10)
    ));

    // Up, but the service account has no role: 403.
    node.api.set_forbidden(true);
    node.api.start().unwrap();
    assert!(
        agent.wait_for_metric(
            "logship_kubernetes_api_errors_total",
            &[("reason", "forbidden")],
            2.0,
            Duration::from_secs(60)
        ),
        "{}",
        agent.log()
    );
    append_cri_lines(&log, 101..=200).unwrap();
    assert!(node.wait_for(&seqs(101..=200), Duration::from_secs(20)));
    assert_labels(&node.entries_with_seq(&seqs(101..=200)), &web, None);
    let log_text = agent.log();
    assert_eq!(
        log_text.matches("pods is forbidden").count(),
        1,
        "the 403 should be reported once, not per retry: {log_text}"
    );
    assert!(
        log_text.contains("clusterrole"),
        "the warning should say what is missing"
    );

    // The role is granted: new lines get the pod's labels.
    node.api.set_forbidden(false);
    let mut next = 201;
    let labelled = wait_until(Duration::from_secs(60), || {
        append_cri_lines(&log, next..=next + 9).unwrap();
        next += 10;
        std::thread::sleep(Duration::from_millis(400));
        node.loki
            .with_entries(|all| all.iter().any(|e| e.label("app") == Some("web")))
    });
    assert!(labelled, "no label after the API answered: {}", agent.log());
    assert!(node.wait_for(&seqs(1..=next - 1), Duration::from_secs(20)));
    let lines: Vec<Vec<u8>> = node.loki.entries().into_iter().map(|e| e.line).collect();
    let counts = count_seq_lines(lines.iter().map(Vec::as_slice), next - 1);
    assert!(counts.is_exactly_once(), "{counts}");
    assert!(!agent.log().contains(TOKEN), "the bearer token was logged");
}

#[test]
fn deleted_pods_rotation_restarts_and_kill9_lose_nothing() {
    let _g = serial();
    let node = Node::new();
    let gone =
        TestPod::new("shop", "batch-1", "u-gone", NODE).label("app.kubernetes.io/name", "batch");
    let web = web_pod("web");
    node.api.add_pod(gone.clone());
    node.api.add_pod(web.clone());
    // A pod with a backlog that is deleted, files and all, before its lines are sent.
    append_cri_lines(&node.log_of(&gone), 1..=30_000).unwrap();
    node.loki.stop();
    let mut agent = node.start("");
    assert!(
        agent.wait_for_metric("logship_files_watched", &[], 1.0, Duration::from_secs(20)),
        "{}",
        agent.log()
    );
    node.api.delete_pod(&gone.uid);
    std::fs::remove_dir_all(gone.log_dir(&node.pods_dir)).unwrap();
    node.loki.start().unwrap();
    assert!(
        node.wait_for(&seqs(1..=30_000), Duration::from_secs(60)),
        "a deleted pod's unread lines were lost: {}",
        agent.log()
    );
    assert_labels(
        &node.entries_with_seq(&seqs(29_990..=30_000)),
        &gone,
        Some("batch"),
    );

    // The kubelet rotates 0.log to 0.log.<time> and compresses older ones; the container
    // restarts into 1.log.
    let web_log = node.log_of(&web);
    append_cri_lines(&web_log, 30_001..=31_000).unwrap();
    let container_dir = web_log.parent().unwrap().to_path_buf();
    std::fs::rename(&web_log, container_dir.join("0.log.20261130-100000")).unwrap();
    append_cri_lines(&web_log, 31_001..=32_000).unwrap();
    append_raw(
        &container_dir.join("0.log.20261130-090000.gz"),
        b"\x1f\x8b\x08\x00 compressed bytes that are not lines\n",
    )
    .unwrap();
    append_raw(
        &container_dir.join("0.log.20261130-095000.tmp"),
        b"half-compressed\n",
    )
    .unwrap();
    let restarted = container_dir.join("1.log");
    append_cri_lines(&restarted, 32_001..=33_000).unwrap();
    assert!(
        node.wait_for(&seqs(30_001..=33_000), Duration::from_secs(30)),
        "{}",
        agent.log()
    );
    assert_labels(
        &node.entries_with_seq(&seqs(30_001..=33_000)),
        &web,
        Some("web"),
    );

    // kill -9 while the service writes; after the restart everything is there.
    let writer_log = restarted.clone();
    let writer = std::thread::spawn(move || {
        for batch in 0..100u64 {
            let from = 33_001 + batch * 200;
            append_cri_lines(&writer_log, from..=from + 199).unwrap();
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    agent.kill9();
    std::thread::sleep(Duration::from_millis(500));
    let agent = node.start("");
    writer.join().unwrap();
    let total = 53_000;
    assert!(
        node.wait_for(&seqs(1..=total), Duration::from_secs(60)),
        "lines lost across kill -9: {}",
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(1000));
    let lines: Vec<Vec<u8>> = node.loki.entries().into_iter().map(|e| e.line).collect();
    let counts = count_seq_lines(lines.iter().map(Vec::as_slice), total);
    assert!(counts.missing.is_empty(), "{counts}");
    assert_eq!(
        counts.without_seq, 0,
        "compressed or partial files were read: {counts}"
    );
    assert!(
        counts.duplicates as u64 <= total / 50,
        "too many re-sent lines after kill -9: {counts}"
    );
}
