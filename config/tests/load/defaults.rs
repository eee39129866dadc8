//! The README example and the defaults it gets; secrets in Debug output.

use std::net::SocketAddr;
use std::path::PathBuf;

use logship_config::schema::{
    FileDecoder, LokiEncoding, ReadFrom, SinkConfig, SourceConfig, TransformConfig,
};
use logship_config::{ConfigError, load_file, load_str};

use crate::common::{MINIMAL, load};

const README: &str = include_str!("../../examples/file-to-loki.toml");

#[test]
fn readme_example_loads_with_defaults() {
    let loaded = load_str(README, "file-to-loki.toml", &|_| None).unwrap();
    let c = &loaded.config;
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/logship"));
    assert_eq!(
        c.telemetry.address,
        "127.0.0.1:9598".parse::<SocketAddr>().unwrap()
    );
    assert!(c.telemetry.enabled);

    let SourceConfig::File(app) = &c.sources["app"] else {
        panic!("app is not a file source: {:?}", c.sources["app"]);
    };
    assert_eq!(app.include, ["/var/log/app/*.log*"]);
    assert_eq!(app.exclude, ["/var/log/app/*.gz"]);
    assert_eq!(app.read_from, ReadFrom::Beginning);
    assert_eq!(app.max_line_bytes, 256 * 1024);
    assert_eq!(app.decoder, FileDecoder::None);
    assert_eq!(app.filename_label, "filename");
    assert_eq!(app.glob_interval_ms, 30_000);
    assert_eq!(app.open_files_limit, 1024);
    assert_eq!(app.ignore_older_secs, None);
    assert!(app.multiline.is_none());

    let TransformConfig::Json(parse) = &c.transforms["parse"] else {
        panic!("parse is not json");
    };
    assert_eq!(parse.inputs, ["app"]);
    assert_eq!(parse.labels["service"], "service");
    assert_eq!(parse.labels["level"], "level");
    assert_eq!(parse.structured_metadata["trace_id"], "trace_id");
    assert_eq!(parse.structured_metadata["span_id"], "span_id");
    assert_eq!(parse.timestamp.as_deref(), Some("time"));
    assert!(parse.pattern.is_none());
    assert!(parse.drop.is_empty());

    let SinkConfig::Loki(loki) = &c.sinks["loki"] else {
        panic!("loki is not a loki sink");
    };
    assert_eq!(loki.inputs, ["parse"]);
    assert_eq!(loki.endpoint, "http://127.0.0.1:3100");
    assert_eq!(loki.path, "/loki/api/v1/push");
    assert_eq!(loki.labels["job"], "app");
    assert_eq!(loki.labels["env"], "dev");
    assert_eq!(loki.encoding, LokiEncoding::Protobuf);
    assert_eq!(loki.compression, None);
    assert!(loki.auth.is_none() && loki.tls.is_none() && loki.tenant_id.is_none());
    assert_eq!(loki.batch.max_bytes, 512 * 1024);
    assert_eq!(loki.batch.max_events, 100_000);
    assert_eq!(loki.batch.timeout_ms, 1000);
    assert_eq!(loki.request.concurrency, 4);
    assert_eq!(loki.request.timeout_ms, 10_000);
    assert_eq!(loki.request.retry_initial_backoff_ms, 500);
    assert_eq!(loki.request.retry_max_backoff_ms, 60_000);
    assert_eq!(loki.label_cardinality_limit, 500);
    assert_eq!(loki.cardinality_overflow_value, "__overflow__");

    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn readme_example_takes_values_from_the_environment() {
    let env = |name: &str| match name {
        "LOKI_URL" => Some("https://loki.internal:443".to_owned()),
        "ENV" => Some("prod".to_owned()),
        _ => None,
    };
    let loaded = load_str(README, "file-to-loki.toml", &env).unwrap();
    let SinkConfig::Loki(loki) = &loaded.config.sinks["loki"] else {
        panic!("not loki");
    };
    assert_eq!(loki.endpoint, "https://loki.internal:443");
    assert_eq!(loki.labels["env"], "prod");
}

#[test]
fn an_omitted_data_dir_and_telemetry_get_defaults() {
    let c = load(MINIMAL).unwrap().config;
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/logship"));
    assert_eq!(
        c.telemetry.address,
        "127.0.0.1:9598".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn numbers_can_come_from_the_environment() {
    let text = format!(
        "{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"http://x\"\nbatch = {{ max_bytes = ${{MAX}}, max_events = ${{UNSET:-7}} }}\n"
    );
    let c = load(&text).unwrap().config;
    let SinkConfig::Loki(loki) = &c.sinks["loki"] else {
        panic!("not loki");
    };
    assert_eq!(loki.batch.max_bytes, 2048);
    assert_eq!(loki.batch.max_events, 7);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text = format!(
        "{MINIMAL}[sinks.loki]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"http://x\"\nauth = {{ user = \"me\", password = \"hunter2-password\" }}\n\
         [sinks.bearer]\ntype = \"loki\"\ninputs = [\"app\"]\nendpoint = \"http://x\"\nauth = {{ token = \"${{TOKEN}}\" }}\n"
    );
    let env = |name: &str| (name == "TOKEN").then(|| "sekrit-token-value".to_owned());
    let loaded = load_str(&text, "t.toml", &env).unwrap();
    let SinkConfig::Loki(loki) = &loaded.config.sinks["loki"] else {
        panic!("not loki");
    };
    // The value is there for whoever needs to put it on the wire ...
    let password = loki.auth.as_ref().unwrap().password.as_ref().unwrap();
    assert_eq!(password.expose(), "hunter2-password");
    // ... and nowhere else.
    let debug = format!("{:?} {:#?} {:?}", loaded.config, loaded.config, loaded);
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("sekrit"), "{debug}");
    assert!(debug.contains("Secret(***)"));
    assert_eq!(password.to_string(), "***");
}

#[test]
fn load_file_reads_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logship.toml");
    std::fs::write(&path, MINIMAL).unwrap();
    let loaded = load_file(&path).unwrap();
    assert_eq!(loaded.graph.outputs_of("app"), ["out"]);

    std::fs::write(&path, format!("{MINIMAL}bogus = 1\n")).unwrap();
    let err = load_file(&path).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "error: {}:6:1: unknown field `bogus`",
            path.display()
        )),
        "{shown}"
    );

    let missing = dir.path().join("nope.toml");
    let err = load_file(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.toml"), "{err}");

    std::fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
    assert!(matches!(load_file(&path), Err(ConfigError::Read { .. })));
}
