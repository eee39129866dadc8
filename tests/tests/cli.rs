//! The command line: `--version`, `validate` (exit 0/1, diagnostics with file, line and
//! column, runs nothing), a bad config refused before anything starts, and `run`.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logship_tests::harness::{Agent, AgentOptions, logship_bin, run_cli, run_cli_in};
use logship_tests::logwriter::append_lines;
use logship_tests::loki::LokiReceiver;
use logship_tests::pipeline::{PipelineConfig, logs_dir};
use logship_tests::seqs::wait_for_seqs;

const T: Duration = Duration::from_secs(30);

#[test]
fn version() {
    let r = run_cli(&["--version"], T);
    assert!(r.status.success(), "{r:?}");
    assert!(r.stdout.contains("logship"), "{r:?}");
    assert!(r.stdout.contains(env!("CARGO_PKG_VERSION")), "{r:?}");
}

#[test]
fn validate_accepts_a_good_config_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=10).unwrap();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let r = run_cli(&["validate", "--config", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        loki.requests().is_empty(),
        "validate must not ship anything"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", cfg.telemetry_port)).is_err(),
        "validate must not serve telemetry"
    );
}

/// A config with an unknown key; returns (file, 1-based line, 1-based column of the key).
fn typo_config(dir: &std::path::Path) -> (std::path::PathBuf, usize, usize) {
    let cfg = PipelineConfig::new(dir, "http://127.0.0.1:9").to_toml();
    let mut lines: Vec<String> = cfg.lines().map(str::to_owned).collect();
    let at = lines.iter().position(|l| l == "[sources.app]").unwrap() + 1;
    lines.insert(at, "raed_from = \"end\"".to_owned());
    let path = dir.join("typo.toml");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    (path, at + 1, 1)
}

#[test]
fn validate_rejects_a_typo_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let (path, line, col) = typo_config(dir.path());
    let r = run_cli(&["validate", "--config", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let err = &r.stderr;
    assert!(
        err.contains(path.to_str().unwrap()),
        "stderr must name the file: {err}"
    );
    assert!(err.contains("raed_from"), "stderr must name the key: {err}");
    let has_line = err.contains(&format!(":{line}:")) || err.contains(&format!("line {line}"));
    assert!(has_line, "stderr must name line {line}: {err}");
    let has_col = err.contains(&format!(":{line}:{col}"))
        || err.contains(&format!("column {col}"))
        || err.contains(&format!("col {col}"));
    assert!(has_col, "stderr must name column {col}: {err}");
}

#[test]
fn bad_config_exits_1_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _) = typo_config(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let port = logship_tests::harness::telemetry_addr(&text)
        .unwrap()
        .port();
    let mut child = Command::new(logship_bin())
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + T;
    let mut port_opened = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            port_opened = true;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("logship --config <bad> is still running after {T:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(1));
    assert!(!port_opened, "the telemetry port opened for a bad config");
}

#[test]
fn run_subcommand_runs_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=10).unwrap();
    let _agent = Agent::start_with(
        &cfg.to_toml(),
        dir.path(),
        AgentOptions {
            args: vec!["run".to_owned()],
            ..AgentOptions::default()
        },
    );
    let c = wait_for_seqs(&loki, 10, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
}

#[test]
fn config_may_come_before_or_after_the_subcommand_or_as_validates_argument() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        PipelineConfig::new(dir.path(), "http://127.0.0.1:9").to_toml(),
    )
    .unwrap();
    let (typo, _, _) = typo_config(dir.path());
    let (good, typo) = (good.to_str().unwrap(), typo.to_str().unwrap());
    for args in [
        vec!["--config", good, "validate"],
        vec!["-c", good, "validate"],
        vec!["validate", "--config", good],
        vec!["validate", good],
    ] {
        let r = run_cli(&args, T);
        assert_eq!(r.status.code(), Some(0), "{args:?}: {r:?}");
        assert!(
            r.stdout.contains(good),
            "{args:?} checked another file: {r:?}"
        );
    }
    for args in [vec!["--config", typo, "validate"], vec!["validate", typo]] {
        let r = run_cli(&args, T);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("typo.toml:"),
            "{args:?} checked another file: {r:?}"
        );
    }
}

#[test]
fn a_missing_config_is_reported_once() {
    let r = run_cli(&["validate", "/nonexistent/logship.toml"], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stderr.contains("/nonexistent/logship.toml"), "{r:?}");
    assert_eq!(
        r.stderr.matches("(os error 2)").count(),
        1,
        "the OS error is printed once: {}",
        r.stderr
    );
}

#[test]
fn a_second_agent_on_the_same_data_dir_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=10).unwrap();
    let first = Agent::start(&cfg.to_toml(), dir.path());
    // The same data_dir, another telemetry port.
    let second = PipelineConfig::new(dir.path(), &loki.url());
    assert_eq!(second.data_dir, cfg.data_dir);
    let path = dir.path().join("second.toml");
    std::fs::write(&path, second.to_toml()).unwrap();
    let r = run_cli(&["--config", path.to_str().unwrap(), "run"], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stderr.contains(&format!("pid {}", first.pid())),
        "the refusal should name the holder: {r:?}"
    );
    assert!(r.stderr.contains(&*cfg.data_dir.to_string_lossy()), "{r:?}");
    let c = wait_for_seqs(&loki, 10, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "the first agent goes on: {c}");
}

#[test]
fn validate_refuses_a_data_dir_that_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = PipelineConfig::new(dir.path(), "http://127.0.0.1:9");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "a file").unwrap();
    cfg.data_dir = blocker.join("state");
    let path = dir.path().join("bad-data-dir.toml");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let r = run_cli(&["validate", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(r.stderr.contains("data_dir"), "{r:?}");
    assert!(r.stderr.contains("not-a-dir"), "{r:?}");
    // A data_dir that does not exist yet is fine, and validate leaves nothing behind.
    cfg.data_dir = dir.path().join("later/state");
    std::fs::write(&path, cfg.to_toml()).unwrap();
    let r = run_cli(&["validate", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(!dir.path().join("later").exists());
}

#[test]
fn validate_prints_each_warning_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warns.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[sources.k]\ntype = \"kubernetes_logs\"\nmetadata = false\nkubeconfig = \"/nowhere\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"k\"]\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let r = run_cli(&["validate", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert_eq!(
        r.stderr.matches("`kubeconfig` is unused").count(),
        1,
        "the warning should be printed once: {r:?}"
    );
}

#[test]
fn logs_are_json_for_collectors_and_text_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=5).unwrap();
    // stderr is a file here, not a terminal: JSON lines.
    let mut json = Agent::start(&cfg.to_toml(), dir.path());
    assert!(
        wait_for_seqs(&loki, 5, Duration::from_secs(30))
            .missing
            .is_empty()
    );
    json.terminate();
    let log = json.log();
    let started = log
        .lines()
        .find(|l| l.contains("logship started"))
        .expect("a start line");
    assert!(started.starts_with('{'), "{log}");
    // LOGSHIP_LOG_FORMAT=text: what a person reads.
    let text_cfg = PipelineConfig::new(dir.path(), &loki.url());
    let mut text = Agent::start_with(
        &text_cfg.to_toml(),
        dir.path(),
        AgentOptions {
            env: vec![("LOGSHIP_LOG_FORMAT".to_owned(), "text".to_owned())],
            ..AgentOptions::default()
        },
    );
    text.terminate();
    let log = text.log();
    let started = log
        .lines()
        .find(|l| l.contains("logship started"))
        .expect("a start line");
    assert!(!started.starts_with('{'), "{log}");
    assert!(started.contains("INFO"), "{log}");
}

/// The pipeline of `cfg` in two files: globals, sources and transforms in the first, the
/// sink in the second, as a team would split a shared config.
fn split_config(cfg: &PipelineConfig, dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let text = cfg.to_toml();
    let at = text.find("[sinks.").expect("the config has a sink");
    let sinks = dir.join("sinks.toml");
    std::fs::write(&sinks, &text[at..]).unwrap();
    (text[..at].to_owned(), sinks)
}

#[test]
fn several_config_files_make_one_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let loki = LokiReceiver::new().unwrap();
    let cfg = PipelineConfig::new(dir.path(), &loki.url());
    append_lines(&logs_dir(dir.path()).join("app.log"), 1..=20).unwrap();
    let (main, sinks) = split_config(&cfg, dir.path());
    let sinks = sinks.to_str().unwrap().to_owned();
    // Alone, neither file is a pipeline.
    let r = run_cli(&["validate", &sinks], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let mut agent = Agent::start_with(
        &main,
        dir.path(),
        AgentOptions {
            args: vec!["--config".to_owned(), sinks.clone()],
            ..AgentOptions::default()
        },
    );
    let c = wait_for_seqs(&loki, 20, Duration::from_secs(30));
    assert!(c.is_exactly_once(), "{c}");
    agent.terminate();
    let main_path = agent.config_path().to_str().unwrap().to_owned();
    let r = run_cli(&["validate", &main_path, &sinks], T);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(r.stdout.contains(&sinks), "{r:?}");
}

#[test]
fn an_id_defined_in_two_files_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PipelineConfig::new(dir.path(), "http://127.0.0.1:9");
    let (main, sinks) = split_config(&cfg, dir.path());
    let main_path = dir.path().join("main.toml");
    // The second file defines `app` again (as a source) and sets `data_dir` again.
    let again = dir.path().join("again.toml");
    std::fs::write(&main_path, &main).unwrap();
    std::fs::write(
        &again,
        "data_dir = \"/tmp/elsewhere\"\n\n[sources.app]\ntype = \"stdin\"\n",
    )
    .unwrap();
    let r = run_cli(
        &[
            "validate",
            main_path.to_str().unwrap(),
            sinks.to_str().unwrap(),
            again.to_str().unwrap(),
        ],
        T,
    );
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let again_name = again.to_str().unwrap();
    let main_name = main_path.to_str().unwrap();
    let data_dir_at = format!("{again_name}:1:1: `data_dir` is set in more than one config file");
    let app_at = format!("{again_name}:3:10: `sources.app` is already defined");
    let first_at = format!("first defined here: {main_name}:6:10");
    let report = unwrapped(&r.stderr);
    for expected in [data_dir_at, app_at, first_at] {
        assert!(report.contains(&expected), "{expected:?} in\n{}", r.stderr);
    }
}

#[test]
fn validate_lists_every_error_of_a_file_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.toml");
    std::fs::write(
        &path,
        "[sources.app]\n\
         type = \"file\"\n\
         include = \"/var/log/*.log\"\n\
         \n\
         [transforms.parse]\n\
         type = \"json\"\n\
         inputs = [\"app\"]\n\
         timestamp = \"time\"\n\
         timezone = \"Mars/Olympus\"\n\
         \n\
         [sinks.out]\n\
         type = \"console\"\n\
         inputs = [\"parse\"]\n\
         fromat = \"json\"\n",
    )
    .unwrap();
    let name = path.to_str().unwrap();
    let r = run_cli(&["validate", name], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let expected = [
        format!("{name}:3:11: expected a list, found the string \"/var/log/*.log\""),
        format!("{name}:9:12: unknown time zone `Mars/Olympus`"),
        format!("{name}:14:1: unknown field `fromat`"),
    ];
    let report = unwrapped(&r.stderr);
    let mut from = 0;
    for e in &expected {
        let at = report[from..]
            .find(e.as_str())
            .unwrap_or_else(|| panic!("{e:?} missing or out of order in:\n{}", r.stderr));
        from += at + e.len();
    }
}

/// A rendered report as one line of words: miette wraps messages to the terminal's width and
/// draws a `│` margin, which says nothing about their content.
fn unwrapped(report: &str) -> String {
    report
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The README's sample of `logship validate bad.toml` is what the tool prints for the
/// `bad.toml` the README shows.
#[test]
fn the_readme_validate_sample_is_true() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("$ logship validate bad.toml\n")
        .expect("README shows `$ logship validate bad.toml`");
    let block = &readme[start..];
    let block = &block[..block.find("\n```").expect("the sample block ends")];
    let expected: Vec<&str> = block.lines().skip(1).collect();
    // The file is the README's own `toml` block just before the sample.
    let before = &readme[..start];
    let toml_start = before
        .rfind("```toml\n")
        .expect("README shows bad.toml before the sample")
        + "```toml\n".len();
    let toml_end = toml_start
        + before[toml_start..]
            .find("```")
            .expect("the toml block ends");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), &before[toml_start..toml_end]).unwrap();
    let r = run_cli_in(dir.path(), &["validate", "bad.toml"], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    let printed: Vec<&str> = r.stderr.trim_end().lines().map(str::trim_end).collect();
    let expected: Vec<&str> = expected.iter().map(|l| l.trim_end()).collect();
    assert_eq!(
        printed,
        expected,
        "README.md's sample differs from what logship prints:\n{}",
        printed.join("\n")
    );
}

#[test]
fn logship_test_runs_the_configs_tests_and_shows_what_differed() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/examples/file-to-loki.toml"
    );
    let r = run_cli(&["test", example], T);
    assert_eq!(r.status.code(), Some(0), "{r:?}");
    assert!(r.stdout.contains("2 tests: 2 passed, 0 failed"), "{r:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tests.toml");
    std::fs::write(
        &path,
        r#"
[sources.app]
type = "stdin"

[transforms.parse]
type = "json"
inputs = ["app"]
labels = { level = "level" }
drop = { level = ["debug"] }
drop_case_insensitive = true

[transforms.route]
type = "logfmt"
inputs = ["parse"]
labels = { team = "team" }

[sinks.out]
type = "console"
inputs = ["route"]

[[tests]]
name = "debug lines are dropped whatever their case"
no_outputs_from = ["parse", "route"]
[[tests.inputs]]
insert_at = "parse"
value = '{"level":"DEBUG"}'

[[tests]]
name = "a line flows on to the next transform"
[[tests.inputs]]
insert_at = "parse"
value = '{"level":"info"}'
labels = { team = "from-source" }
[[tests.outputs]]
extract_from = "route"
labels = { level = "warn", team = "from-source" }
"#,
    )
    .unwrap();
    let r = run_cli(&["test", "--config", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        r.stdout
            .contains("test \"debug lines are dropped whatever their case\" ... passed"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("test \"a line flows on to the next transform\" ... FAILED"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains(r#"label level: expected "warn", got "info""#),
        "the failure says what differed: {r:?}"
    );
    assert!(r.stdout.contains("2 tests: 1 passed, 1 failed"), "{r:?}");

    // A test that names no transform is a config error, found by validate too.
    std::fs::write(
        &path,
        "[sources.app]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"app\"]\n\
         [[tests]]\nname = \"t\"\n[[tests.inputs]]\ninsert_at = \"nope\"\nvalue = \"x\"\n",
    )
    .unwrap();
    let r = run_cli(&["validate", path.to_str().unwrap()], T);
    assert_eq!(r.status.code(), Some(1), "{r:?}");
    assert!(
        unwrapped(&r.stderr).contains("`insert_at = \"nope\"` names no transform"),
        "{}",
        r.stderr
    );
}
