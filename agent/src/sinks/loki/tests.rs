//! The sink end to end against [`FakeLoki`]: batching, acknowledgements, retries, splitting,
//! health, cardinality, shutdown and secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use logship_config::schema::{
    AuthConfig, BatchConfig, LokiEncoding, LokiSinkConfig, RequestConfig, Secret,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::test_support::{FakeLoki, Reply, wait_until};
use super::{LokiSink, LokiSinkError};
use crate::context::ComponentContext;
use crate::pipeline::{AckLedger, AckToken};
use crate::pipeline::{Chunk, Event, LabelSet, MetadataName};

const WAIT: Duration = Duration::from_secs(10);

pub(super) fn config(endpoint: &str) -> LokiSinkConfig {
    LokiSinkConfig {
        inputs: vec!["in".into()],
        endpoint: endpoint.into(),
        path: "/loki/api/v1/push".into(),
        labels: BTreeMap::new(),
        tenant_id: None,
        auth: None,
        tls: None,
        encoding: LokiEncoding::Protobuf,
        compression: None,
        batch: BatchConfig {
            max_bytes: 1 << 20,
            max_events: 1000,
            timeout_ms: 20,
        },
        request: RequestConfig {
            concurrency: 2,
            timeout_ms: 5_000,
            retry_initial_backoff_ms: 5,
            retry_max_backoff_ms: 40,
        },
        label_cardinality_limit: 100,
        cardinality_overflow_value: "__overflow__".into(),
        not_ready_after_secs: 30,
        // These tests send fixed timestamps from 2024; re-stamping is tested in `repair`
        // and end to end.
        limits: logship_config::schema::LokiLimitsConfig {
            repair_timestamps: false,
            ..Default::default()
        },
    }
}

fn ctx() -> ComponentContext {
    ComponentContext::for_test("loki_out", std::env::temp_dir())
}

fn ev(labels: &LabelSet, line: &str) -> Event {
    let mut e = Event::new(
        1_718_000_000_000_000_000,
        Bytes::copy_from_slice(line.as_bytes()),
        labels.clone(),
    );
    e.metadata.push((
        MetadataName::from("trace_id"),
        Bytes::from_static(b"4bf92f35"),
    ));
    e
}

fn chunk(ack: AckToken, events: Vec<Event>) -> Chunk {
    Chunk { events, ack }
}

fn start(config: &LokiSinkConfig, ctx: ComponentContext) -> (mpsc::Sender<Chunk>, JoinHandle<()>) {
    let sink = LokiSink::new(config, ctx)
        .unwrap()
        .with_shutdown_grace(Duration::from_millis(200));
    let (tx, rx) = mpsc::channel(4);
    (tx, tokio::spawn(sink.run(rx)))
}

fn counter(family: &prometheus::IntCounterVec, labels: &[&str]) -> u64 {
    family.with_label_values(labels).get()
}

#[tokio::test]
async fn delivers_with_headers_labels_and_metadata_and_settles_only_after_2xx() {
    let loki = FakeLoki::start().await;
    loki.script([Reply::status(204).delay(Duration::from_millis(500))]);
    let mut cfg = config(&loki.endpoint());
    cfg.labels = BTreeMap::from([("env".into(), "prod".into())]);
    cfg.tenant_id = Some("team-a".into());
    cfg.auth = Some(AuthConfig {
        user: None,
        password: None,
        password_file: None,
        token: Some(Secret::new("tok")),
        token_file: None,
    });
    let ctx = ctx();
    let (tx, run) = start(&cfg, ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api"), ("env", "dev")]);
    tx.send(chunk(
        ledger.token(10),
        vec![ev(&labels, "a"), ev(&labels, "b")],
    ))
    .await
    .unwrap();
    wait_until(WAIT, "the push", || loki.received().len() == 1).await;
    assert_eq!(ledger.committed(), 0, "not settled before Loki answers");
    wait_until(WAIT, "the ack", || ledger.committed() == 10).await;

    let push = &loki.received()[0];
    assert_eq!(
        push.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(push.header("x-scope-orgid").as_deref(), Some("team-a"));
    assert_eq!(push.header("authorization").as_deref(), Some("Bearer tok"));
    assert!(push.header("user-agent").unwrap().starts_with("logship/"));
    let lines = push.lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].0, r#"{env="prod", service="api"}"#, "static wins");
    assert_eq!(lines[0].1, b"a");
    assert_eq!(
        lines[0].2,
        vec![("trace_id".to_owned(), "4bf92f35".to_owned())]
    );
    assert_eq!(lines[1].1, b"b");

    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let m = &ctx.metrics;
    assert_eq!(counter(&m.sent_events, &["loki_out"]), 2);
    assert_eq!(counter(&m.sent_bytes, &["loki_out"]), 2);
    assert_eq!(counter(&m.received_events, &["loki_out"]), 2);
    assert_eq!(counter(&m.loki_requests, &["loki_out", "204"]), 1);
    assert_eq!(m.loki_inflight.with_label_values(&["loki_out"]).get(), 0);
    assert!(m.loki_sent_bytes.with_label_values(&["loki_out"]).get() > 0);
}

#[tokio::test]
async fn batches_by_events_and_flushes_the_rest_when_input_closes() {
    let loki = FakeLoki::start().await;
    let mut cfg = config(&loki.endpoint());
    cfg.batch.max_events = 3;
    cfg.batch.timeout_ms = 60_000;
    let (tx, run) = start(&cfg, ctx());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    let events = (0..7).map(|i| ev(&labels, &i.to_string())).collect();
    tx.send(chunk(ledger.token(7), events)).await.unwrap();
    wait_until(WAIT, "two full batches", || loki.received().len() == 2).await;
    assert_eq!(ledger.committed(), 0, "the last event is still batched");
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let sizes: Vec<usize> = loki.received().iter().map(|r| r.lines().len()).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
    let lines: Vec<Vec<u8>> = loki.accepted_lines().into_iter().map(|l| l.1).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted.len(), 7);
    assert_eq!(ledger.committed(), 7);
}

#[tokio::test]
async fn batches_by_bytes() {
    let loki = FakeLoki::start().await;
    let mut cfg = config(&loki.endpoint());
    // Each event: 10 line bytes + "trace_id" (8) + 8 value bytes = 26.
    cfg.batch.max_bytes = 60;
    cfg.batch.timeout_ms = 60_000;
    let (tx, run) = start(&cfg, ctx());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    let events = (0..5)
        .map(|i| ev(&labels, &format!("line-{i:05}")))
        .collect();
    tx.send(chunk(ledger.token(1), events)).await.unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let sizes: Vec<usize> = loki.received().iter().map(|r| r.lines().len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(ledger.committed(), 1);
}

#[tokio::test]
async fn batches_by_time_from_the_oldest_event() {
    let loki = FakeLoki::start().await;
    let mut cfg = config(&loki.endpoint());
    cfg.batch.timeout_ms = 150;
    let (tx, _run) = start(&cfg, ctx());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    let sent = Instant::now();
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "a")]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(75)).await;
    tx.send(chunk(ledger.token(2), vec![ev(&labels, "b")]))
        .await
        .unwrap();
    wait_until(WAIT, "timeout flush", || loki.received().len() == 1).await;
    let elapsed = loki.received()[0].at - sent;
    assert!(elapsed >= Duration::from_millis(140), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
    assert_eq!(loki.received()[0].lines().len(), 2, "one batch for both");
    wait_until(WAIT, "acks", || ledger.committed() == 2).await;
}

#[tokio::test]
async fn groups_interleaved_events_by_label_set() {
    let loki = FakeLoki::start().await;
    let (tx, run) = start(&config(&loki.endpoint()), ctx());
    let ledger = AckLedger::new(0u64);
    let a = LabelSet::new([("service", "a")]);
    let b = LabelSet::new([("service", "b")]);
    let a2 = LabelSet::new([("service", "a")]); // same content, another Arc
    let events = vec![
        ev(&a, "1"),
        ev(&b, "2"),
        ev(&a2, "3"),
        ev(&b, "4"),
        ev(&a, "5"),
    ];
    tx.send(chunk(ledger.token(1), events)).await.unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let pushes = loki.received();
    assert_eq!(pushes.len(), 1);
    let decoded = pushes[0].decode();
    let streams: Vec<(String, Vec<Vec<u8>>)> = decoded
        .streams
        .into_iter()
        .map(|s| (s.labels, s.entries.into_iter().map(|e| e.line).collect()))
        .collect();
    assert_eq!(
        streams,
        vec![
            (
                r#"{service="a"}"#.to_owned(),
                vec![b"1".to_vec(), b"3".to_vec(), b"5".to_vec()]
            ),
            (
                r#"{service="b"}"#.to_owned(),
                vec![b"2".to_vec(), b"4".to_vec()]
            ),
        ]
    );
}

#[tokio::test]
async fn empty_chunk_is_settled_at_once() {
    let loki = FakeLoki::start().await;
    let (tx, _run) = start(&config(&loki.endpoint()), ctx());
    let ledger = AckLedger::new(0u64);
    tx.send(chunk(ledger.token(5), vec![])).await.unwrap();
    wait_until(WAIT, "ack", || ledger.committed() == 5).await;
    assert!(loki.received().is_empty());
}

#[tokio::test]
async fn rejected_400_is_settled_and_counted_as_discarded_not_retried() {
    let loki = FakeLoki::start().await;
    loki.script([
        // About the stream's labels: every entry of it refused, how many not said.
        Reply::status(400)
            .body("entry for stream '{service=\"api\"}' has 17 label names; limit 15"),
    ]);
    let ctx = ctx();
    let (tx, run) = start(&config(&loki.endpoint()), ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(
        ledger.token(3),
        vec![ev(&labels, "a"), ev(&labels, "b"), ev(&labels, "c")],
    ))
    .await
    .unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert_eq!(ledger.committed(), 3);
    assert_eq!(loki.received().len(), 1, "never retried");
    let m = &ctx.metrics;
    assert_eq!(
        counter(&m.discarded_events, &["loki_out", "loki_rejected"]),
        3
    );
    assert_eq!(counter(&m.sent_events, &["loki_out"]), 0);
}

#[tokio::test]
async fn retries_500_and_429_and_settles_only_after_success() {
    let loki = FakeLoki::start().await;
    loki.script([
        Reply::status(500).body("internal"),
        Reply::status(429),
        Reply::status(204).delay(Duration::from_millis(500)),
    ]);
    let ctx = ctx();
    let (tx, run) = start(&config(&loki.endpoint()), ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "x")]))
        .await
        .unwrap();
    wait_until(WAIT, "third attempt", || loki.received().len() == 3).await;
    assert_eq!(ledger.committed(), 0, "not settled while failing");
    assert!(!ledger.has_failed());
    wait_until(WAIT, "ack", || ledger.committed() == 1).await;
    let bodies: Vec<Bytes> = loki.received().iter().map(|r| r.body.clone()).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "same body re-sent");
    let m = &ctx.metrics;
    assert_eq!(counter(&m.loki_retries, &["loki_out", "server_error"]), 1);
    assert_eq!(counter(&m.loki_retries, &["loki_out", "rate_limited"]), 1);
    assert_eq!(counter(&m.loki_requests, &["loki_out", "500"]), 1);
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
}

#[tokio::test]
async fn honours_retry_after() {
    let loki = FakeLoki::start().await;
    loki.script([Reply::status(429).header("retry-after", "1")]);
    let mut cfg = config(&loki.endpoint());
    cfg.request.retry_max_backoff_ms = 5_000;
    let (tx, run) = start(&cfg, ctx());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "x")]))
        .await
        .unwrap();
    wait_until(WAIT, "retry", || loki.received().len() == 2).await;
    let r = loki.received();
    let gap = r[1].at - r[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
    assert!(gap < Duration::from_millis(3000), "waited {gap:?}");
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert_eq!(ledger.committed(), 1);
}

#[tokio::test]
async fn retries_timeouts() {
    let loki = FakeLoki::start().await;
    loki.script([Reply::status(204).delay(Duration::from_secs(3))]);
    let mut cfg = config(&loki.endpoint());
    cfg.request.timeout_ms = 200;
    let ctx = ctx();
    let (tx, run) = start(&cfg, ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "x")]))
        .await
        .unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert_eq!(ledger.committed(), 1);
    assert_eq!(loki.received().len(), 2);
    let m = &ctx.metrics;
    assert_eq!(counter(&m.loki_retries, &["loki_out", "timeout"]), 1);
    assert_eq!(counter(&m.loki_requests, &["loki_out", "error"]), 1);
}

#[tokio::test]
async fn splits_on_413_and_discards_a_single_entry_that_is_still_too_large() {
    let loki = FakeLoki::start().await;
    // Anything with more than one line, or the line "huge", is too large.
    loki.rule(|r| {
        let lines = r.lines();
        if lines.len() > 1 || lines.iter().any(|l| l.1 == b"huge") {
            Reply::status(413)
        } else {
            Reply::status(204)
        }
    });
    let ctx = ctx();
    let (tx, run) = start(&config(&loki.endpoint()), ctx.clone());
    let ledger = AckLedger::new(0u64);
    let a = LabelSet::new([("service", "a")]);
    let b = LabelSet::new([("service", "b")]);
    let events = vec![
        ev(&a, "1"),
        ev(&a, "2"),
        ev(&a, "huge"),
        ev(&b, "3"),
        ev(&a, "4"),
    ];
    tx.send(chunk(ledger.token(9), events)).await.unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let mut accepted: Vec<Vec<u8>> = loki.accepted_lines().into_iter().map(|l| l.1).collect();
    accepted.sort();
    assert_eq!(
        accepted,
        vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec(), b"4".to_vec()],
        "each line delivered exactly once"
    );
    assert_eq!(ledger.committed(), 9);
    assert_eq!(
        counter(&ctx.metrics.discarded_events, &["loki_out", "too_large"]),
        1
    );
    assert_eq!(counter(&ctx.metrics.sent_events, &["loki_out"]), 4);
}

#[tokio::test]
async fn unauthorized_marks_unready_keeps_data_and_recovers() {
    let loki = FakeLoki::start().await;
    loki.script([
        Reply::status(401).body("no org id"),
        Reply::status(401).body("no org id"),
        // Slow enough for the test to see the problem standing before it is cleared.
        Reply::status(204).delay(Duration::from_millis(500)),
    ]);
    let ctx = ctx();
    let (tx, run) = start(&config(&loki.endpoint()), ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "x")]))
        .await
        .unwrap();
    wait_until(WAIT, "health problem", || !ctx.health.problems().is_empty()).await;
    let problems = ctx.health.problems();
    assert!(problems[0].contains("loki_out"), "{problems:?}");
    assert!(problems[0].contains("401"), "{problems:?}");
    assert!(problems[0].contains("tenant_id"), "{problems:?}");
    assert_eq!(ctx.metrics.ready.get(), 0);
    wait_until(WAIT, "ack", || ledger.committed() == 1).await;
    assert!(ctx.health.problems().is_empty(), "cleared after the 2xx");
    assert_eq!(ctx.metrics.ready.get(), 1);
    assert_eq!(loki.received().len(), 3);
    assert_eq!(
        counter(&ctx.metrics.loki_retries, &["loki_out", "unauthorized"]),
        2
    );
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_chunk_spread_over_batches_waits_for_all_of_them() {
    let loki = FakeLoki::start().await;
    loki.script([
        Reply::status(204),
        Reply::status(503).delay(Duration::from_millis(100)),
        Reply::status(204).delay(Duration::from_millis(500)),
    ]);
    let mut cfg = config(&loki.endpoint());
    cfg.batch.max_events = 2;
    cfg.request.concurrency = 1;
    let (tx, run) = start(&cfg, ctx());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    // Chunk A spans both batches; chunk B shares the second.
    tx.send(chunk(
        ledger.token(1),
        vec![ev(&labels, "a1"), ev(&labels, "a2"), ev(&labels, "a3")],
    ))
    .await
    .unwrap();
    tx.send(chunk(ledger.token(2), vec![ev(&labels, "b1")]))
        .await
        .unwrap();
    wait_until(WAIT, "the retry", || loki.received().len() == 3).await;
    assert_eq!(ledger.committed(), 0, "A's second batch is not yet stored");
    wait_until(WAIT, "acks", || ledger.committed() == 2).await;
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
}

#[tokio::test]
async fn backpressure_stops_reading_when_all_slots_are_busy() {
    let loki = FakeLoki::start().await;
    loki.rule(|_| Reply::status(204).delay(Duration::from_millis(800)));
    let mut cfg = config(&loki.endpoint());
    cfg.batch.max_events = 1;
    cfg.request.concurrency = 1;
    let sink = LokiSink::new(&cfg, ctx()).unwrap();
    let (tx, rx) = mpsc::channel(1);
    let run = tokio::spawn(sink.run(rx));
    let labels = LabelSet::new([("service", "api")]);
    // 1: in flight; 2: batched, waiting for the slot; 3: in the channel; 4: must wait.
    for i in 0..3 {
        tx.send(chunk(
            AckToken::untracked(),
            vec![ev(&labels, &i.to_string())],
        ))
        .await
        .unwrap();
    }
    let fourth = tokio::time::timeout(
        Duration::from_millis(300),
        tx.send(chunk(AckToken::untracked(), vec![ev(&labels, "3")])),
    )
    .await;
    assert!(fourth.is_err(), "the sink kept reading with no free slot");
    wait_until(WAIT, "the first push", || !loki.received().is_empty()).await;
    assert_eq!(loki.received().len(), 1, "one slot, one request in flight");
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert_eq!(loki.received().len(), 3);
}

#[tokio::test]
async fn cardinality_overflow_collapses_values_end_to_end() {
    let loki = FakeLoki::start().await;
    let mut cfg = config(&loki.endpoint());
    cfg.label_cardinality_limit = 2;
    let ctx = ctx();
    let (tx, run) = start(&cfg, ctx.clone());
    let events = ["a", "b", "c", "d", "a"]
        .iter()
        .map(|pod| ev(&LabelSet::new([("pod", *pod)]), pod))
        .collect();
    tx.send(chunk(AckToken::untracked(), events)).await.unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let mut got: Vec<(String, Vec<u8>)> = loki
        .accepted_lines()
        .into_iter()
        .map(|l| (l.0, l.1))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (r#"{pod="__overflow__"}"#.to_owned(), b"c".to_vec()),
            (r#"{pod="__overflow__"}"#.to_owned(), b"d".to_vec()),
            (r#"{pod="a"}"#.to_owned(), b"a".to_vec()),
            (r#"{pod="a"}"#.to_owned(), b"a".to_vec()),
            (r#"{pod="b"}"#.to_owned(), b"b".to_vec()),
        ]
    );
    assert_eq!(
        counter(&ctx.metrics.label_overflow, &["loki_out", "pod"]),
        2
    );
}

#[tokio::test]
async fn json_gzip_encoding_end_to_end() {
    let loki = FakeLoki::start().await;
    let mut cfg = config(&loki.endpoint());
    cfg.encoding = LokiEncoding::Json;
    let (tx, run) = start(&cfg, ctx());
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(
        AckToken::untracked(),
        vec![ev(&labels, "{\"msg\":\"hi\"}")],
    ))
    .await
    .unwrap();
    drop(tx);
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    let push = &loki.received()[0];
    assert_eq!(
        push.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(push.header("content-encoding").as_deref(), Some("gzip"));
    let lines = push.lines();
    assert_eq!(lines[0].0, r#"{service="api"}"#);
    assert_eq!(lines[0].1, b"{\"msg\":\"hi\"}");
    assert_eq!(lines[0].2, vec![("trace_id".into(), "4bf92f35".into())]);
}

#[tokio::test]
async fn shutdown_stops_retrying_after_the_grace_and_leaves_chunks_unsettled() {
    let loki = FakeLoki::start().await;
    loki.rule(|_| Reply::status(503));
    let ctx = ctx();
    let (tx, run) = start(&config(&loki.endpoint()), ctx.clone());
    let ledger = AckLedger::new(0u64);
    let labels = LabelSet::new([("service", "api")]);
    tx.send(chunk(ledger.token(1), vec![ev(&labels, "x")]))
        .await
        .unwrap();
    wait_until(WAIT, "retries", || loki.received().len() >= 2).await;
    drop(tx);
    let stopping = Instant::now();
    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert_eq!(ledger.committed(), 0);
    assert!(ledger.has_failed(), "undelivered chunk marked failed");
}

#[tokio::test]
async fn unreachable_loki_is_retried_as_a_connection_error() {
    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ctx = ctx();
    let (tx, run) = start(&config(&format!("http://127.0.0.1:{port}")), ctx.clone());
    let ledger = AckLedger::new(0u64);
    tx.send(chunk(
        ledger.token(1),
        vec![ev(&LabelSet::new([("a", "b")]), "x")],
    ))
    .await
    .unwrap();
    wait_until(WAIT, "connection retries", || {
        ctx.metrics
            .loki_retries
            .with_label_values(&["loki_out", "connection"])
            .get()
            >= 2
    })
    .await;
    assert_eq!(ledger.committed(), 0);
    drop(tx);
    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let mut cfg = config("http://user:url-hunter2@127.0.0.1:3100");
    let built = LokiSink::new(&cfg, ctx()).unwrap();
    let text = format!("{built:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1:3100"), "{text}");

    cfg.endpoint = "http://127.0.0.1:3100".into();
    cfg.auth = Some(AuthConfig {
        user: Some("u".into()),
        password: Some(Secret::new("pw-hunter2")),
        password_file: None,
        token: None,
        token_file: None,
    });
    let built = LokiSink::new(&cfg, ctx()).unwrap();
    let text = format!("{built:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        !text.contains("dTpwdy1odW50ZXIy"),
        "not even base64: {text}"
    );

    cfg.auth = Some(AuthConfig {
        user: Some("u".into()),
        password: Some(Secret::new("pw-hunter2")),
        password_file: None,
        token: Some(Secret::new("tok-hunter2")),
        token_file: None,
    });
    let err = LokiSink::new(&cfg, ctx()).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    cfg.auth = None;
    cfg.endpoint = "http://user:url-hunter2@[::1".into();
    let err = LokiSink::new(&cfg, ctx()).unwrap_err();
    assert!(matches!(err, LokiSinkError::InvalidEndpoint { .. }));
    assert!(!format!("{err} {err:?}").contains("hunter2"));
}

#[test]
fn invalid_settings_are_typed_errors() {
    let mut cfg = config("http://127.0.0.1:3100");
    cfg.label_cardinality_limit = 0;
    assert!(matches!(
        LokiSink::new(&cfg, ctx()),
        Err(LokiSinkError::ZeroCardinalityLimit)
    ));
    let mut cfg = config("http://127.0.0.1:3100");
    cfg.compression = Some(logship_config::schema::LokiCompression::Gzip);
    assert!(matches!(
        LokiSink::new(&cfg, ctx()),
        Err(LokiSinkError::UnsupportedFormat(_))
    ));
    let mut cfg = config("http://127.0.0.1:3100");
    cfg.tls = Some(logship_config::schema::TlsConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        crt_file: None,
        key_file: None,
        insecure_skip_verify: false,
    });
    assert!(matches!(
        LokiSink::new(&cfg, ctx()),
        Err(LokiSinkError::ReadTls { .. })
    ));
    let mut cfg = config("http://127.0.0.1:3100");
    cfg.tls = Some(logship_config::schema::TlsConfig {
        ca_file: None,
        crt_file: Some("/nonexistent/crt.pem".into()),
        key_file: None,
        insecure_skip_verify: false,
    });
    assert!(matches!(
        LokiSink::new(&cfg, ctx()),
        Err(LokiSinkError::IncompleteClientCert)
    ));
    let mut cfg = config("http://127.0.0.1:3100");
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "not a certificate").unwrap();
    cfg.tls = Some(logship_config::schema::TlsConfig {
        ca_file: Some(garbage.path().to_owned()),
        crt_file: None,
        key_file: None,
        insecure_skip_verify: true,
    });
    assert!(matches!(
        LokiSink::new(&cfg, ctx()),
        Err(LokiSinkError::InvalidTls { .. })
    ));
}
