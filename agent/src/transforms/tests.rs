//! The extract transforms end to end on chunks: labels, metadata, timestamps, drops, and lines
//! that do not parse.

use bytes::Bytes;
use logship_config::schema::{ExtractTransformConfig, TransformConfig};

use super::build;
use crate::context::ComponentContext;
use crate::pipeline::AckLedger;
use crate::pipeline::{Chunk, Event, LabelSet};

fn config(f: impl FnOnce(&mut ExtractTransformConfig)) -> ExtractTransformConfig {
    let mut c = ExtractTransformConfig {
        inputs: vec!["in".into()],
        ..Default::default()
    };
    f(&mut c);
    c
}

fn map(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `lines` through the transform and returns the events left, plus the context.
fn run(t: TransformConfig, lines: &[&[u8]]) -> (Vec<Event>, ComponentContext) {
    let ctx = ComponentContext::for_test("t", std::env::temp_dir());
    let mut transform = build(&t, &ctx).unwrap();
    let base = LabelSet::new([("job", "app")]);
    let ledger = AckLedger::new(0u64);
    let mut chunk = Chunk {
        events: lines
            .iter()
            .map(|l| Event::new(7, Bytes::copy_from_slice(l), base.clone()))
            .collect(),
        ack: ledger.token(1),
    };
    transform.apply(&mut chunk);
    let Chunk { events, ack } = chunk;
    ack.delivered();
    (events, ctx)
}

fn metadata(e: &Event) -> Vec<(String, String)> {
    e.metadata
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

#[test]
fn json_labels_metadata_and_timestamp() {
    let t = TransformConfig::Json(config(|c| {
        c.labels = map(&[("service", "service"), ("level", "level")]);
        c.structured_metadata = map(&[("trace_id", "trace_id"), ("code", "http.status")]);
        c.timestamp = Some("time".into());
    }));
    let line = br#"{"time":"2024-06-10T12:00:00.5Z","level":"warn","service":"api","trace_id":"4bf9","http":{"status":503}}"#;
    let (events, _) = run(t, &[line]);
    let e = &events[0];
    assert_eq!(
        e.labels.selector(),
        r#"{job="app", level="warn", service="api"}"#
    );
    assert_eq!(
        metadata(e),
        [
            ("code".into(), "503".into()),
            ("trace_id".into(), "4bf9".into())
        ]
    );
    assert_eq!(e.timestamp_ns, 1_718_020_800_500_000_000);
    assert_eq!(&e.line[..], line, "the line is never changed");
}

#[test]
fn escaped_values_are_decoded() {
    let t = TransformConfig::Json(config(|c| {
        c.labels = map(&[("service", "service")]);
        c.structured_metadata = map(&[("msg", "msg")]);
    }));
    let (events, _) = run(t, &[br#"{"service":"a\"b","msg":"caf\u00e9"}"#]);
    assert_eq!(events[0].labels.get("service"), Some("a\"b"));
    assert_eq!(metadata(&events[0]), [("msg".into(), "café".into())]);
}

#[test]
fn lines_that_do_not_parse_ship_unchanged_and_are_counted() {
    let t = TransformConfig::Json(config(|c| {
        c.labels = map(&[("service", "service")]);
        c.timestamp = Some("time".into());
    }));
    let bad: &[&[u8]] = &[b"plain text", br#"{"service":"api""#, b"\xff\xfe{}"];
    let (events, ctx) = run(t, bad);
    assert_eq!(events.len(), 3);
    for (e, line) in events.iter().zip(bad) {
        assert_eq!(&e.line[..], *line);
        assert_eq!(e.labels.selector(), r#"{job="app"}"#);
        assert_eq!(e.timestamp_ns, 7, "read time kept");
    }
    assert_eq!(ctx.metrics.parse_errors.with_label_values(&["t"]).get(), 3);
}

#[test]
fn invalid_utf8_in_a_value_keeps_the_fields_with_replacement_characters() {
    let t = TransformConfig::Json(config(|c| {
        c.labels = map(&[("service", "service"), ("level", "level")]);
        c.structured_metadata = map(&[("trace_id", "trace_id")]);
    }));
    let line: &[u8] = b"{\"service\":\"a\xffb\",\"level\":\"info\",\"trace_id\":\"x\xfe\"}";
    let (events, ctx) = run(t, &[line]);
    let e = &events[0];
    assert_eq!(e.labels.get("service"), Some("a\u{fffd}b"));
    assert_eq!(e.labels.get("level"), Some("info"));
    assert_eq!(metadata(e), [("trace_id".into(), "x\u{fffd}".into())]);
    assert_eq!(&e.line[..], line, "the line ships as written");
    assert_eq!(ctx.metrics.parse_errors.with_label_values(&["t"]).get(), 0);
}

#[test]
fn drop_rules_remove_and_count_lines() {
    let t = TransformConfig::Json(config(|c| {
        c.drop = [(
            "level".to_string(),
            vec!["debug".to_string(), "trace".to_string()],
        )]
        .into();
    }));
    let (events, ctx) = run(
        t,
        &[
            br#"{"level":"debug"}"#,
            br#"{"level":"info"}"#,
            br#"{"level":"trace"}"#,
            br#"{"msg":"no level"}"#,
        ],
    );
    assert_eq!(events.len(), 2);
    let filtered = ctx
        .metrics
        .discarded_events
        .with_label_values(&["t", "filtered"]);
    assert_eq!(filtered.get(), 2);
}

#[test]
fn drop_matches_case_only_when_asked() {
    let lines: &[&[u8]] = &[
        br#"{"level":"DEBUG"}"#,
        br#"{"level":"Debug"}"#,
        br#"{"level":"debug"}"#,
        br#"{"level":"info"}"#,
    ];
    let rule = |insensitive| {
        TransformConfig::Json(config(|c| {
            c.drop = [("level".to_string(), vec!["debug".to_string()])].into();
            c.drop_case_insensitive = insensitive;
        }))
    };
    assert_eq!(run(rule(false), lines).0.len(), 3, "exact by default");
    let (kept, _) = run(rule(true), lines);
    assert_eq!(kept.len(), 1);
    assert_eq!(&kept[0].line[..], br#"{"level":"info"}"#);
}

#[test]
fn timestamp_format_and_timezone_apply_and_failures_are_counted() {
    let t = TransformConfig::Regex(config(|c| {
        c.pattern = Some(r"^(?P<time>\S+ \S+) (?P<msg>.*)$".into());
        c.timestamp = Some("time".into());
        c.timestamp_format = Some("%Y-%m-%d %H:%M:%S,%f".into());
        c.timezone = Some("+01:00".into());
    }));
    let (events, ctx) = run(
        t,
        &[
            b"2024-06-10 13:00:00,250 started",
            b"10/06/2024 13:00:00 not the format",
        ],
    );
    assert_eq!(events[0].timestamp_ns, 1_718_020_800_250_000_000);
    assert_eq!(events[1].timestamp_ns, 7, "read time kept");
    let errors = ctx.metrics.timestamp_errors.with_label_values(&["t"]);
    assert_eq!(errors.get(), 1);
    assert_eq!(ctx.metrics.parse_errors.with_label_values(&["t"]).get(), 0);
}

#[test]
fn a_missing_timestamp_is_not_an_error_but_a_bad_one_is() {
    let t = TransformConfig::Json(config(|c| c.timestamp = Some("time".into())));
    let (events, ctx) = run(t, &[br#"{"msg":"no time"}"#, br#"{"time":"yesterday"}"#]);
    assert!(events.iter().all(|e| e.timestamp_ns == 7));
    let errors = ctx.metrics.timestamp_errors.with_label_values(&["t"]);
    assert_eq!(errors.get(), 1);
}

#[test]
fn logfmt_fields() {
    let t = TransformConfig::Logfmt(config(|c| {
        c.labels = map(&[("level", "level")]);
        c.structured_metadata = map(&[("trace_id", "trace_id"), ("msg", "msg")]);
        c.timestamp = Some("ts".into());
    }));
    let (events, _) = run(
        t,
        &[br#"ts=1718020800123 level=error msg="disk \"sda\" full" trace_id=abc"#],
    );
    let e = &events[0];
    assert_eq!(e.labels.get("level"), Some("error"));
    assert_eq!(
        metadata(e),
        [
            ("msg".into(), "disk \"sda\" full".into()),
            ("trace_id".into(), "abc".into())
        ]
    );
    assert_eq!(e.timestamp_ns, 1_718_020_800_123_000_000);
}

#[test]
fn regex_captures() {
    let t = TransformConfig::Regex(config(|c| {
        c.pattern = Some(r"^(?P<time>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$".into());
        c.labels = map(&[("level", "level")]);
        c.timestamp = Some("time".into());
    }));
    let (events, ctx) = run(
        t,
        &[b"2024-06-10T12:00:00Z WARN slow query", b"no match here"],
    );
    assert_eq!(events[0].labels.get("level"), Some("WARN"));
    assert_eq!(events[0].timestamp_ns, 1_718_020_800_000_000_000);
    assert_eq!(events[1].labels.selector(), r#"{job="app"}"#);
    assert_eq!(ctx.metrics.parse_errors.with_label_values(&["t"]).get(), 1);
}

#[test]
fn same_values_share_one_label_set() {
    let t = TransformConfig::Json(config(|c| {
        c.labels = map(&[("service", "service")]);
    }));
    let (events, _) = run(t, &[br#"{"service":"a"}"#, br#"{"service":"a"}"#]);
    assert!(events[0].labels.ptr_eq(&events[1].labels));
}
