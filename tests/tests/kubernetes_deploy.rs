//! The Kubernetes deployment as shipped: `deploy/kubernetes` (DaemonSet) and its `sidecar/`
//! example render with `kubectl kustomize`, every object passes `kubernetes-validate`, the
//! configs they carry pass `logship validate`, and the mounts cover what those configs read
//! and write. Then the image: a container made of the `logship` binary and the libraries
//! `ldd` names runs the DaemonSet's own config, as the DaemonSet runs it (uid 0, no
//! capabilities, read-only root, the service account's token and CA mounted), against a
//! `/var/log/pods` tree and the test API server, and ships what it should.
//!
//! Tools: `kubectl` and `kubernetes-validate` (`scripts/k8s-tools.sh` installs both; the
//! validator's path comes in `LOGSHIP_K8S_VALIDATE`). Under `CI=true` a missing tool fails.

mod docker_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use docker_support::{docker, require_docker, unique_prefix};
use logship_tests::harness::{free_port, logship_bin, wait_until, workspace_root};
use logship_tests::kube_api::{KubeApi, TOKEN, TestPod};
use logship_tests::loki::LokiReceiver;
use logship_tests::pods::{append_cri_lines, container_log};
use logship_tests::seqs::{count_seq_lines, seq_of};
use serde::Deserialize;
use serde_norway::Value as Yaml;

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The program, or `None` (after saying so) when it is missing outside CI.
fn tool(name: &str, env: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name));
    if Command::new(&path).arg("--help").output().is_ok() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "CI=true but `{}` is not installed: run scripts/k8s-tools.sh",
        path.display()
    );
    eprintln!("skipped: no {name}");
    None
}

/// `kubectl kustomize <dir>`: the rendered objects.
fn kustomize(kubectl: &Path, dir: &Path) -> (String, Vec<Yaml>) {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("running kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("rendered manifests are UTF-8");
    let docs = serde_norway::Deserializer::from_str(&text)
        .map(|d| Yaml::deserialize(d).expect("rendered YAML parses"))
        .collect();
    (text, docs)
}

fn validate_objects(validator: &Path, rendered: &str, dir: &Path) {
    let file = dir.join("rendered.yaml");
    std::fs::write(&file, rendered).unwrap();
    let out = Command::new(validator)
        .args(["--strict", "-k", "1.33.0"])
        .arg(&file)
        .output()
        .expect("running kubernetes-validate");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate failed:\n{report}"
    );
    assert!(
        !report.contains("WARN") && !report.contains("ERROR"),
        "kubernetes-validate complained:\n{report}"
    );
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn one<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}");
    found[0]
}

fn s(v: &Yaml) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn list(v: &Yaml) -> &[Yaml] {
    v.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

/// `logship validate` of `config` with `env`.
fn logship_validate(config: &str, env: &[(&str, &str)], dir: &Path) {
    let file = dir.join("from-configmap.toml");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(logship_bin())
        .arg("validate")
        .arg(&file)
        .envs(env.iter().copied())
        .output()
        .expect("running logship validate");
    assert!(
        out.status.success(),
        "the ConfigMap's config does not validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The volume (from the pod spec) mounted at the deepest mount path that contains `path`.
fn covering_mount<'a>(pod_spec: &'a Yaml, container: &'a Yaml, path: &str) -> (&'a Yaml, &'a Yaml) {
    let mount = list(&container["volumeMounts"])
        .iter()
        .filter(|m| {
            let at = s(&m["mountPath"]);
            path == at || path.starts_with(&format!("{}/", at.trim_end_matches('/')))
        })
        .max_by_key(|m| s(&m["mountPath"]).len())
        .unwrap_or_else(|| panic!("no volume mount covers {path}"));
    let volume = list(&pod_spec["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap_or_else(|| panic!("mount {:?} names no volume", mount["name"]));
    (mount, volume)
}

fn env_value<'a>(container: &'a Yaml, name: &str) -> &'a Yaml {
    list(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("the container sets no {name}"))
}

#[test]
fn the_daemonset_renders_validates_and_covers_what_its_config_reads() {
    let Some(kubectl) = tool("kubectl", "LOGSHIP_KUBECTL") else {
        return;
    };
    let Some(validator) = tool("kubernetes-validate", "LOGSHIP_K8S_VALIDATE") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = workspace_root().join("deploy/kubernetes");
    let (rendered, docs) = kustomize(&kubectl, &base);
    validate_objects(&validator, &rendered, dir.path());

    let ds = one(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    let containers = list(&pod["containers"]);
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // The config: the ConfigMap the DaemonSet mounts holds deploy/kubernetes/logship.toml,
    // which validates with the environment the DaemonSet gives it.
    let cm = one(&docs, "ConfigMap");
    let toml_text = s(&cm["data"]["logship.toml"]);
    assert_eq!(
        toml_text,
        std::fs::read_to_string(base.join("logship.toml")).unwrap()
    );
    assert_eq!(
        env_value(c, "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    let loki_url = s(&env_value(c, "LOKI_URL")["value"]).to_owned();
    logship_validate(
        toml_text,
        &[("NODE_NAME", "node-a"), ("LOKI_URL", &loki_url)],
        dir.path(),
    );
    let config: toml::Value = toml::from_str(toml_text).unwrap();
    let args: Vec<&str> = list(&c["args"]).iter().map(s).collect();
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1])
        .expect("the container passes --config");
    let (mount, volume) = covering_mount(pod, c, config_path);
    assert_eq!(mount["readOnly"].as_bool(), Some(true));
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    assert!(config_path.ends_with("/logship.toml"));

    // What the config reads and writes is on the node, through hostPath mounts.
    let pods_dir = config["sources"]["pods"]
        .get("pods_dir")
        .and_then(|v| v.as_str())
        .unwrap_or("/var/log/pods");
    let (mount, volume) = covering_mount(pod, c, pods_dir);
    assert_eq!(
        mount["readOnly"].as_bool(),
        Some(true),
        "logs are read-only"
    );
    assert_eq!(s(&volume["hostPath"]["path"]), s(&mount["mountPath"]));
    let data_dir = config["data_dir"].as_str().unwrap();
    let (mount, volume) = covering_mount(pod, c, data_dir);
    assert_ne!(
        mount["readOnly"].as_bool(),
        Some(true),
        "data_dir is written"
    );
    assert!(
        volume["hostPath"]["path"].as_str().is_some(),
        "checkpoints must outlive the pod"
    );

    // Probes and the metrics Service reach the telemetry address's port.
    let telemetry = config["telemetry"]["address"].as_str().unwrap();
    let port: i64 = telemetry.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        telemetry.starts_with("0.0.0.0:"),
        "probes come from outside the pod"
    );
    let named = list(&c["ports"])
        .iter()
        .find(|p| p["containerPort"].as_i64() == Some(port))
        .expect("the telemetry port is a container port");
    for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
        assert_eq!(s(&c[probe]["httpGet"]["path"]), path);
        assert_eq!(c[probe]["httpGet"]["port"], named["name"]);
    }
    let svc = one(&docs, "Service");
    assert_eq!(list(&svc["spec"]["ports"])[0]["targetPort"], named["name"]);

    // RBAC: the service account may get, list and watch pods, and nothing else.
    let sa = one(&docs, "ServiceAccount");
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    let binding = one(&docs, "ClusterRoleBinding");
    let role = one(&docs, "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        list(&binding["subjects"])[0]["name"],
        sa["metadata"]["name"]
    );
    assert_eq!(
        list(&binding["subjects"])[0]["namespace"],
        sa["metadata"]["namespace"]
    );
    let rules = list(&role["rules"]);
    assert_eq!(rules.len(), 1);
    let verbs: BTreeSet<&str> = list(&rules[0]["verbs"]).iter().map(s).collect();
    assert_eq!(verbs, BTreeSet::from(["get", "list", "watch"]));
    assert_eq!(list(&rules[0]["resources"])[0].as_str(), Some("pods"));

    // Locked down, on every node, rolled one node at a time, with resources stated.
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(list(&sc["capabilities"]["drop"])[0].as_str(), Some("ALL"));
    assert!(
        sc["capabilities"]["add"].is_null(),
        "no capability is needed"
    );
    assert_eq!(
        list(&pod["tolerations"])[0]["operator"].as_str(),
        Some("Exists")
    );
    assert_eq!(s(&ds["spec"]["updateStrategy"]["type"]), "RollingUpdate");
    assert!(c["resources"]["requests"]["memory"].as_str().is_some());
    assert!(c["resources"]["limits"]["memory"].as_str().is_some());
}

#[test]
fn the_sidecar_example_renders_validates_and_covers_its_files() {
    let Some(kubectl) = tool("kubectl", "LOGSHIP_KUBECTL") else {
        return;
    };
    let Some(validator) = tool("kubernetes-validate", "LOGSHIP_K8S_VALIDATE") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rendered, docs) = kustomize(
        &kubectl,
        &workspace_root().join("deploy/kubernetes/sidecar"),
    );
    validate_objects(&validator, &rendered, dir.path());
    let deployment = one(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = list(&pod["initContainers"])
        .iter()
        .find(|c| c["name"].as_str() == Some("logship"))
        .expect("a logship native sidecar");
    assert_eq!(
        sidecar["restartPolicy"].as_str(),
        Some("Always"),
        "a native sidecar starts before the app and stops after it"
    );
    let app = &list(&pod["containers"])[0];
    let cm = one(&docs, "ConfigMap");
    let toml_text = s(&cm["data"]["logship.toml"]);
    logship_validate(
        toml_text,
        &[
            ("LOKI_URL", s(&env_value(sidecar, "LOKI_URL")["value"])),
            ("POD_NAME", "orders-1"),
            ("POD_NAMESPACE", "shop"),
        ],
        dir.path(),
    );
    let config: toml::Value = toml::from_str(toml_text).unwrap();
    let include = config["sources"]["app"]["include"][0].as_str().unwrap();
    let logs_dir = include.rsplit_once('/').unwrap().0;
    // The sidecar reads the very volume the app writes.
    let (_, read_volume) = covering_mount(pod, sidecar, logs_dir);
    let (written, write_volume) = covering_mount(pod, app, logs_dir);
    assert_eq!(read_volume["name"], write_volume["name"]);
    assert!(write_volume["emptyDir"].is_mapping());
    assert_ne!(written["readOnly"].as_bool(), Some(true));
    let (state, _) = covering_mount(pod, sidecar, config["data_dir"].as_str().unwrap());
    assert_ne!(state["readOnly"].as_bool(), Some(true));
}

/// An image of the `logship` binary and the shared libraries `ldd` names (no base image can
/// be pulled here), with the distroless image's non-root user.
fn build_image(tag: &str, dir: &Path) {
    let root = dir.join("rootfs");
    let bin = logship_bin();
    let dest = root.join("usr/local/bin/logship");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(&bin, &dest).unwrap();
    let ldd = Command::new("ldd").arg(&bin).output().expect("running ldd");
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let to = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("copying {lib}: {e}"));
    }
    for d in ["etc/logship", "var/lib/logship", "tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    let tarball = dir.join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(tar.success(), "tar of the rootfs failed");
    let out = Command::new("docker")
        .args([
            "import",
            "-c",
            "USER 65532:65532",
            "-c",
            r#"ENTRYPOINT ["/usr/local/bin/logship"]"#,
        ])
        .arg(&tarball)
        .arg(tag)
        .output()
        .expect("running docker import");
    assert!(
        out.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Removes the container and the image when dropped (by id and tag).
struct Cleanup {
    container: Option<String>,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(id) = &self.container {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

#[test]
fn the_image_runs_the_daemonsets_config_like_the_daemonset() {
    if !require_docker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tag = format!(
        "{}:test",
        unique_prefix("logship-image").trim_end_matches('-')
    );
    let mut cleanup = Cleanup {
        container: None,
        image: tag.clone(),
    };
    build_image(&tag, dir.path());

    // The node: a pod in the API, its logs under pods/, the service account's files.
    let api = KubeApi::start_new().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let pods_dir = dir.path().join("pods");
    let pod = TestPod::new("shop", "orders-5c9d", "u-orders", "node-a")
        .label("app.kubernetes.io/name", "orders");
    api.add_pod(pod.clone());
    let log = container_log(&pod.log_dir(&pods_dir), "app", 0).unwrap();
    append_cri_lines(&log, 1..=500).unwrap();
    let sa = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), TOKEN).unwrap();
    std::fs::copy(
        workspace_root().join("agent/src/sinks/loki/testdata/ca.pem"),
        sa.join("ca.crt"),
    )
    .unwrap();
    std::fs::write(sa.join("namespace"), "logging").unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();

    // The DaemonSet's config, with only the metrics port moved off 9598 (host network).
    let shipped =
        std::fs::read_to_string(workspace_root().join("deploy/kubernetes/logship.toml")).unwrap();
    let port = free_port();
    let config = shipped.replace("0.0.0.0:9598", &format!("127.0.0.1:{port}"));
    assert_ne!(
        config, shipped,
        "the DaemonSet config's telemetry address moved"
    );
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("logship.toml"), config).unwrap();

    let api_port = api.url().rsplit(':').next().unwrap().to_owned();
    let mount = |from: &Path, to: &str, ro: bool| {
        format!("{}:{to}{}", from.display(), if ro { ":ro" } else { "" })
    };
    let name = unique_prefix("logship-ds").trim_end_matches('-').to_owned();
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "host",
        "--user",
        "0:0",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-e",
        "NODE_NAME=node-a",
        "-e",
        &format!("LOKI_URL={}", loki.url()),
        "-e",
        "KUBERNETES_SERVICE_HOST=127.0.0.1",
        "-e",
        &format!("KUBERNETES_SERVICE_PORT={api_port}"),
        "-v",
        &mount(&config_dir, "/etc/logship", true),
        "-v",
        &mount(&pods_dir, "/var/log/pods", true),
        "-v",
        &mount(&state, "/var/lib/logship", false),
        "-v",
        &mount(&sa, "/var/run/secrets/kubernetes.io/serviceaccount", true),
        &tag,
        "--config",
        "/etc/logship/logship.toml",
        "run",
    ]);
    cleanup.container = Some(id.clone());
    let logs = || docker(&["logs", &id]);

    let arrived = wait_until(Duration::from_secs(60), || {
        loki.with_entries(|e| e.iter().filter(|e| seq_of(&e.line).is_some()).count()) >= 500
    });
    assert!(
        arrived,
        "the container shipped {} lines: {}",
        loki.count(),
        logs()
    );
    append_cri_lines(&log, 501..=600).unwrap();
    assert!(
        loki.wait_for_count(600, Duration::from_secs(30)),
        "{}",
        logs()
    );
    let entries = loki.entries();
    let lines: Vec<&[u8]> = entries.iter().map(|e| e.line.as_slice()).collect();
    let counts = count_seq_lines(lines, 600);
    assert!(counts.is_exactly_once(), "{counts}");
    // Labels from the path, the pod (through the in-cluster service account) and the JSON;
    // the trace id as metadata.
    let last = entries
        .iter()
        .find(|e| seq_of(&e.line) == Some(600))
        .unwrap();
    for (k, v) in [
        ("namespace", "shop"),
        ("pod", "orders-5c9d"),
        ("container", "app"),
        ("app", "orders"),
        ("service", "svc-a"),
        ("level", "info"),
        ("cluster", "kubernetes"),
    ] {
        assert_eq!(last.label(k), Some(v), "label {k} of {:?}", last.labels);
    }
    assert!(last.metadata.contains_key("trace_id"));
    assert!(
        api.requests()
            .iter()
            .any(|r| r.contains("spec.nodeName%3Dnode-a")),
        "the container did not watch its node's pods: {:?}",
        api.requests()
    );
    // Checkpoints on the hostPath; SIGTERM stops it cleanly.
    docker(&["stop", "-t", "20", &id]);
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &id]);
    assert_eq!(code, "0", "{}", logs());
    assert!(
        state.join("pods").join("checkpoints.json").exists(),
        "no checkpoint in the state volume: {}",
        logs()
    );
    assert!(!logs().contains(TOKEN), "the token was logged");
}
