//! The compose stack's files hang together: they parse; every file they mount or build from
//! exists; every datasource uid that is referenced is provisioned; Loki's derived field opens
//! Tempo and its regex finds the trace id in a real demo line; every scrape target is a service
//! of the compose file; alert rules and dashboards name metrics that exist; and logship accepts
//! the demo's configs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use logship_tests::harness::{logship_bin, workspace_root};
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

fn demo() -> PathBuf {
    workspace_root().join("demo")
}

fn yaml(rel: &str) -> Yaml {
    let path = demo().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Yaml = serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    // `<<: *anchor` merge keys, as Docker Compose applies them.
    v.apply_merge()
        .unwrap_or_else(|e| panic!("{}: bad merge key: {e}", path.display()));
    v
}

fn get<'a>(v: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(v, |v, k| &v[*k])
}

fn s(v: &Yaml) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn seq(v: &Yaml) -> &Vec<Yaml> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {v:?}"))
}

fn compose_services() -> BTreeSet<String> {
    let c = yaml("compose.yaml");
    c["services"]
        .as_mapping()
        .expect("services")
        .keys()
        .map(|k| s(k).to_owned())
        .collect()
}

/// Every string value anywhere in a JSON document under the key `key`.
fn json_values<'a>(v: &'a Json, key: &str, out: &mut Vec<&'a Json>) {
    match v {
        Json::Object(m) => {
            for (k, child) in m {
                if k == key {
                    out.push(child);
                }
                json_values(child, key, out);
            }
        }
        Json::Array(a) => a.iter().for_each(|c| json_values(c, key, out)),
        _ => {}
    }
}

fn provisioned_uids() -> BTreeSet<String> {
    let ds = yaml("grafana/provisioning/datasources/datasources.yaml");
    seq(&ds["datasources"])
        .iter()
        .map(|d| s(&d["uid"]).to_owned())
        .collect()
}

fn datasource<'a>(ds: &'a Yaml, kind: &str) -> &'a Yaml {
    seq(&ds["datasources"])
        .iter()
        .find(|d| d["type"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} datasource"))
}

#[test]
fn compose_file_parses_and_everything_it_mounts_or_builds_exists() {
    let c = yaml("compose.yaml");
    let services = compose_services();
    for must in [
        "order-api",
        "order-worker",
        "postgres",
        "redis",
        "logship",
        "loki",
        "tempo",
        "otel-collector",
        "prometheus",
        "grafana",
        "redis-exporter",
        "postgres-exporter",
        "cadvisor",
        "blackbox-exporter",
    ] {
        assert!(
            services.contains(must),
            "service {must} missing from compose.yaml"
        );
    }
    for (name, svc) in c["services"].as_mapping().unwrap() {
        let name = s(name);
        if let Some(build) = svc.get("build") {
            let context = demo().join(s(&build["context"]));
            let dockerfile = context.join(s(&build["dockerfile"]));
            assert!(
                dockerfile.is_file(),
                "{name}: {} missing",
                dockerfile.display()
            );
        }
        for v in svc.get("volumes").map(seq).into_iter().flatten() {
            let spec = s(v);
            if let Some(rel) = spec.strip_prefix("./") {
                let host = rel.split(':').next().unwrap();
                assert!(
                    demo().join(host).exists(),
                    "{name}: mounts missing ./{host}"
                );
            }
        }
        for dep in svc
            .get("depends_on")
            .and_then(Yaml::as_mapping)
            .into_iter()
            .flatten()
        {
            assert!(
                services.contains(s(dep.0)),
                "{name} depends on unknown {:?}",
                dep.0
            );
        }
    }
    // logship reads containers through the socket, read-only.
    let vols: Vec<&str> = seq(&c["services"]["logship"]["volumes"])
        .iter()
        .map(s)
        .collect();
    assert!(
        vols.contains(&"/var/run/docker.sock:/var/run/docker.sock:ro"),
        "{vols:?}"
    );
    // The services are labelled for logship's docker source.
    for svc in ["order-api", "order-worker"] {
        let labels = &c["services"][svc]["labels"];
        assert_eq!(
            labels["logship.ship"].as_str(),
            Some("true"),
            "{svc}: {labels:?}"
        );
    }
}

#[test]
fn grafana_datasources_link_logs_traces_and_metrics() {
    let ds = yaml("grafana/provisioning/datasources/datasources.yaml");
    let uids = provisioned_uids();
    let loki = datasource(&ds, "loki");
    let tempo = datasource(&ds, "tempo");
    let prom = datasource(&ds, "prometheus");
    let tempo_uid = s(&tempo["uid"]);

    // Every uid referenced anywhere in the file exists.
    let text =
        std::fs::read_to_string(demo().join("grafana/provisioning/datasources/datasources.yaml"))
            .unwrap();
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("datasourceUid:"))
    {
        let uid = line
            .split(':')
            .nth(1)
            .unwrap()
            .trim()
            .trim_matches('\'')
            .trim_matches('"');
        assert!(uids.contains(uid), "datasourceUid {uid} is not provisioned");
    }

    // Loki → Tempo, by structured metadata and, as a fallback, by a regex on the line.
    let derived = seq(get(loki, &["jsonData", "derivedFields"]));
    assert!(!derived.is_empty());
    for d in derived {
        assert_eq!(
            s(&d["datasourceUid"]),
            tempo_uid,
            "derived field {d:?} must open Tempo"
        );
    }
    let by_label = derived
        .iter()
        .find(|d| d["matcherType"].as_str() == Some("label"))
        .expect("a derived field reading the trace_id structured metadata");
    let key_re = regex::Regex::new(s(&by_label["matcherRegex"])).unwrap();
    assert!(key_re.is_match("trace_id") && !key_re.is_match("parent_trace_id"));
    let by_line = derived
        .iter()
        .find(|d| d["matcherType"].as_str() == Some("regex"))
        .expect("a derived field matching the line");
    let line_re = regex::Regex::new(s(&by_line["matcherRegex"])).unwrap();
    // A line exactly as the demo services write it.
    let line = r#"{"time":"2026-01-01T00:00:00.000000Z","level":"info","service":"order-api","msg":"order accepted","order_id":"0b4f6b43-cdd7-4f5e-9d7a-b0c4a9d0e2c5","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}"#;
    let caps = line_re
        .captures(line)
        .expect("the regex finds the trace id in a demo line");
    assert_eq!(&caps[1], "4bf92f3577b34da6a3ce929d0e0e4736");

    // Tempo → Loki (by the `service` label logship sets) and → Prometheus.
    let t2l = get(tempo, &["jsonData", "tracesToLogsV2"]);
    assert_eq!(s(&t2l["datasourceUid"]), s(&loki["uid"]));
    assert_eq!(t2l["filterByTraceID"].as_bool(), Some(true));
    let tag = &seq(&t2l["tags"])[0];
    assert_eq!(
        (s(&tag["key"]), s(&tag["value"])),
        ("service.name", "service")
    );
    assert_eq!(
        s(get(tempo, &["jsonData", "serviceMap", "datasourceUid"])),
        s(&prom["uid"])
    );

    // Prometheus exemplars → Tempo, under the label the services put on exemplars.
    let ex = &seq(get(prom, &["jsonData", "exemplarTraceIdDestinations"]))[0];
    assert_eq!(s(&ex["datasourceUid"]), tempo_uid);
    assert_eq!(s(&ex["name"]), "trace_id");
    let metrics_rs = std::fs::read_to_string(demo().join("src/metrics.rs")).unwrap();
    assert!(
        metrics_rs.contains("pub trace_id: String"),
        "exemplar label is trace_id"
    );
}

#[test]
fn dashboards_use_provisioned_datasources_and_existing_metrics() {
    let uids = provisioned_uids();
    let provider = yaml("grafana/provisioning/dashboards/dashboards.yaml");
    let path = s(get(&seq(&provider["providers"])[0], &["options", "path"]));
    let compose = yaml("compose.yaml");
    let mounted = seq(&compose["services"]["grafana"]["volumes"])
        .iter()
        .map(s)
        .any(|v| v == format!("./grafana/dashboards:{path}:ro"));
    assert!(
        mounted,
        "the dashboards directory is mounted where the provider reads"
    );

    let agent_metrics =
        std::fs::read_to_string(workspace_root().join("agent/src/telemetry/metrics.rs")).unwrap();
    let demo_metrics = std::fs::read_to_string(demo().join("src/metrics.rs")).unwrap()
        + &std::fs::read_to_string(demo().join("src/ops/process_metrics.rs")).unwrap();
    let metric_re =
        regex::Regex::new(r"\b((?:logship|http|orders|outbox|worker|payment|db|process)_[a-z_]+)")
            .unwrap();
    let mut files = 0;
    for entry in std::fs::read_dir(demo().join("grafana/dashboards")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        let dash: Json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            dash["uid"].is_string() && dash["title"].is_string(),
            "{}",
            p.display()
        );
        let mut refs = Vec::new();
        json_values(&dash, "datasource", &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let uid = r["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: datasource without uid: {r}", p.display()));
            assert!(
                uids.contains(uid),
                "{}: datasource uid {uid} is not provisioned",
                p.display()
            );
        }
        let mut exprs = Vec::new();
        json_values(&dash, "expr", &mut exprs);
        for e in exprs.iter().filter_map(|e| e.as_str()) {
            check_metrics_exist(&metric_re, e, &agent_metrics, &demo_metrics, &p);
        }
    }
    assert_eq!(files, 2, "orders and logship dashboards");
}

/// Every metric an expression names is exported by the agent or the demo services.
fn check_metrics_exist(re: &regex::Regex, expr: &str, agent: &str, demo: &str, file: &Path) {
    for m in re.captures_iter(expr) {
        let name = &m[1];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| name.strip_suffix(suf))
            .unwrap_or(name);
        let found = if base.starts_with("logship_") {
            agent.contains(&format!("\"{base}\""))
        } else {
            // prometheus-client registers counters without `_total`.
            let registered = base.strip_suffix("_total").unwrap_or(base);
            demo.contains(&format!("\"{registered}\"")) || demo.contains(&format!("\"{base}\""))
        };
        assert!(
            found,
            "{}: {name} is not a metric anybody exports",
            file.display()
        );
    }
}

#[test]
fn every_scrape_target_is_a_compose_service_and_alerts_cover_the_issue() {
    let services = compose_services();
    let prom = yaml("prometheus/prometheus.yml");
    let host_of = |target: &str| {
        let no_scheme = target.split("://").last().unwrap();
        no_scheme.split(['/', ':']).next().unwrap().to_owned()
    };
    let mut jobs = BTreeSet::new();
    for job in seq(&prom["scrape_configs"]) {
        jobs.insert(s(&job["job_name"]).to_owned());
        for sc in seq(&job["static_configs"]) {
            for t in seq(&sc["targets"]) {
                let host = host_of(s(t));
                assert!(
                    services.contains(&host),
                    "scrape target {} is not a compose service",
                    s(t)
                );
            }
        }
        for rc in job.get("relabel_configs").map(seq).into_iter().flatten() {
            if rc["target_label"].as_str() == Some("__address__") {
                let host = host_of(s(&rc["replacement"]));
                assert!(
                    services.contains(&host),
                    "probe exporter {host} is not a compose service"
                );
            }
        }
    }
    for must in [
        "order-api",
        "order-worker",
        "logship",
        "redis",
        "postgres",
        "cadvisor",
        "blackbox-order-api",
    ] {
        assert!(jobs.contains(must), "no scrape job {must}");
    }

    let rules = yaml("prometheus/alerts.yml");
    let agent_metrics =
        std::fs::read_to_string(workspace_root().join("agent/src/telemetry/metrics.rs")).unwrap();
    let demo_metrics = std::fs::read_to_string(demo().join("src/metrics.rs")).unwrap();
    let metric_re =
        regex::Regex::new(r"\b((?:logship|http|orders|outbox|worker|payment|db)_[a-z_]+)").unwrap();
    let mut names = BTreeSet::new();
    for g in seq(&rules["groups"]) {
        for r in seq(&g["rules"]) {
            names.insert(s(&r["alert"]).to_owned());
            check_metrics_exist(
                &metric_re,
                s(&r["expr"]),
                &agent_metrics,
                &demo_metrics,
                Path::new("alerts.yml"),
            );
        }
    }
    for must in [
        "OrderApiHighErrorRate",
        "OrderApiHighLatencyP99",
        "LogshipDroppingLines",
        "LogshipCannotReachLoki",
    ] {
        assert!(names.contains(must), "alert {must} missing: {names:?}");
    }
    let rule_file = s(&seq(&prom["rule_files"])[0]);
    let compose = yaml("compose.yaml");
    let mounted = seq(&compose["services"]["prometheus"]["volumes"])
        .iter()
        .map(s)
        .any(|v| v.ends_with(&format!(":{rule_file}:ro")));
    assert!(mounted, "{rule_file} is mounted into prometheus");
    let cmd: Vec<&str> = seq(&compose["services"]["prometheus"]["command"])
        .iter()
        .map(s)
        .collect();
    assert!(
        cmd.contains(&"--enable-feature=exemplar-storage"),
        "{cmd:?}"
    );
    assert!(
        cmd.contains(&"--web.enable-remote-write-receiver"),
        "{cmd:?}"
    );
}

#[test]
fn loki_tempo_and_collector_are_configured_as_the_issue_says() {
    let services = compose_services();
    let loki = yaml("loki/loki.yaml");
    let schema = &seq(get(&loki, &["schema_config", "configs"]))[0];
    assert_eq!(
        s(&schema["schema"]),
        "v13",
        "structured metadata needs schema v13"
    );
    assert_eq!(s(&schema["store"]), "tsdb");
    assert_eq!(
        get(&loki, &["limits_config", "allow_structured_metadata"]).as_bool(),
        Some(true)
    );
    assert!(
        get(&loki, &["limits_config", "retention_period"])
            .as_str()
            .is_some()
    );
    assert_eq!(
        get(&loki, &["compactor", "retention_enabled"]).as_bool(),
        Some(true)
    );

    let tempo = yaml("tempo/tempo.yaml");
    let rw = s(&seq(get(
        &tempo,
        &["metrics_generator", "storage", "remote_write"],
    ))[0]["url"]);
    assert!(rw.starts_with("http://prometheus:"), "{rw}");
    let procs: Vec<&str> = seq(get(
        &tempo,
        &["overrides", "defaults", "metrics_generator", "processors"],
    ))
    .iter()
    .map(s)
    .collect();
    assert!(
        procs.contains(&"service-graphs"),
        "the service map needs service graphs"
    );

    let col = yaml("otel-collector/config.yaml");
    let policies = seq(get(&col, &["processors", "tail_sampling", "policies"]));
    let by_type = |t: &str| {
        policies
            .iter()
            .find(|p| p["type"].as_str() == Some(t))
            .unwrap_or_else(|| panic!("no {t} policy"))
    };
    let codes: Vec<&str> = seq(get(
        by_type("status_code"),
        &["status_code", "status_codes"],
    ))
    .iter()
    .map(s)
    .collect();
    assert_eq!(codes, ["ERROR"]);
    assert_eq!(
        get(by_type("latency"), &["latency", "threshold_ms"]).as_i64(),
        Some(500)
    );
    assert_eq!(
        get(
            by_type("probabilistic"),
            &["probabilistic", "sampling_percentage"]
        )
        .as_f64(),
        Some(20.0)
    );
    let pipeline = get(&col, &["service", "pipelines", "traces"]);
    assert!(
        seq(&pipeline["processors"])
            .iter()
            .any(|p| s(p) == "tail_sampling")
    );
    for exp in seq(&pipeline["exporters"]) {
        let endpoint = s(get(&col, &["exporters", s(exp), "endpoint"]));
        let host = endpoint
            .split("://")
            .last()
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        assert!(
            services.contains(host),
            "collector exports to unknown {host}"
        );
    }
    // The services send to the collector.
    let compose = yaml("compose.yaml");
    for svc in ["order-api", "order-worker"] {
        let ep = s(get(
            &compose,
            &[
                "services",
                svc,
                "environment",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ],
        ));
        assert_eq!(ep, "http://otel-collector:4318");
    }
}

#[test]
fn logship_accepts_the_demo_configs() {
    let dir = tempfile::tempdir().unwrap();
    for (file, env) in [
        ("demo/logship.toml", vec![]),
        (
            "demo/logship-loki.toml",
            vec![("LOKI_URL", "http://127.0.0.1:3100")],
        ),
        ("demo/docker/logship-docker.toml", vec![]),
    ] {
        let path = workspace_root().join(file);
        let cmd_env: Vec<(String, String)> = [("DEMO_RUN_DIR", dir.path().to_str().unwrap())]
            .into_iter()
            .chain(env)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let out = std::process::Command::new(logship_bin())
            .args(["validate", "--config"])
            .arg(&path)
            .envs(cmd_env)
            .output()
            .expect("running logship validate");
        assert!(
            out.status.success(),
            "logship validate {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
