//! The receiver against hand-made pushes: what it accepts, what it refuses, and each fault.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use prost::Message;

use super::proto::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};
use super::*;
use crate::http::{HttpResponse, post, request};
use crate::timefmt::now_nanos;

const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");
const JSON: (&str, &str) = ("Content-Type", "application/json");
const PUSH: &str = "/loki/api/v1/push";

type Line<'a> = (i64, &'a [u8], &'a [(&'a str, &'a str)]);

fn proto_request(streams: &[(&str, &[Line<'_>])]) -> Vec<u8> {
    PushRequest {
        streams: streams
            .iter()
            .map(|(labels, entries)| StreamAdapter {
                labels: (*labels).to_owned(),
                entries: entries
                    .iter()
                    .map(|(ts, line, meta)| EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: ts.div_euclid(1_000_000_000),
                            nanos: ts.rem_euclid(1_000_000_000) as i32,
                        }),
                        line: line.to_vec(),
                        structured_metadata: meta
                            .iter()
                            .map(|(k, v)| LabelPairAdapter {
                                name: (*k).to_owned(),
                                value: (*v).to_owned(),
                            })
                            .collect(),
                        parsed: vec![],
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
    .encode_to_vec()
}

fn snappy(b: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(b).unwrap()
}

fn proto_body(streams: &[(&str, &[Line<'_>])]) -> Vec<u8> {
    snappy(&proto_request(streams))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn push(rx: &LokiReceiver, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    post(rx.addr(), PUSH, headers, body).unwrap()
}

fn simple_push(rx: &LokiReceiver, n: usize) -> HttpResponse {
    let now = now_nanos();
    let lines: Vec<Vec<u8>> = (0..n).map(|i| format!("line {i}").into_bytes()).collect();
    let entries: Vec<Line<'_>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (now + i as i64, l.as_slice(), &[][..]))
        .collect();
    push(rx, &[PROTO], &proto_body(&[(r#"{job="t"}"#, &entries)]))
}

#[test]
fn accepts_protobuf_snappy_with_exact_content() {
    let rx = LokiReceiver::new().unwrap();
    let ts = now_nanos();
    let body = proto_body(&[
        (
            r#"{job="app", service="svc-a", empty=""}"#,
            &[
                (
                    ts,
                    b"{\"msg\":\"a\"}",
                    &[("trace_id", "4bf9"), ("span_id", "00f0")],
                ),
                (ts + 1, b"\xffnot utf8", &[]),
            ],
        ),
        (r#"{job="other"}"#, &[(ts + 2, b"third", &[])]),
    ]);
    let r = push(
        &rx,
        &[
            PROTO,
            ("Authorization", "Bearer s3cret"),
            ("X-Scope-OrgID", "team-a"),
        ],
        &body,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(rx.count(), 3);
    let e = rx.entries();
    assert_eq!(
        e[0].labels,
        [("job", "app"), ("service", "svc-a")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    );
    assert_eq!(e[0].timestamp_ns, ts);
    assert_eq!(e[0].line, b"{\"msg\":\"a\"}");
    assert_eq!(
        e[0].metadata.get("trace_id").map(String::as_str),
        Some("4bf9")
    );
    assert_eq!(
        e[0].metadata.get("span_id").map(String::as_str),
        Some("00f0")
    );
    assert_eq!(e[0].tenant.as_deref(), Some("team-a"));
    assert_eq!(e[1].line, b"\xffnot utf8");
    assert_eq!(e[2].label("job"), Some("other"));
    assert_eq!(rx.lines_with_label("job", "app").len(), 2);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(
        reqs[0].content_type.as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(reqs[0].body_len, body.len());
    assert_eq!(reqs[0].status, Some(204));
    assert_eq!(reqs[0].entries, 3);
}

#[test]
fn accepts_json_gzip_with_exact_content() {
    let rx = LokiReceiver::new().unwrap();
    let ts = now_nanos();
    let json = format!(
        r#"{{"streams":[{{"stream":{{"job":"app","level":"info"}},"values":[["{ts}","line \"one\"",{{"trace_id":"abc"}}],["{}","two"]]}}]}}"#,
        ts + 5
    );
    let r = push(
        &rx,
        &[JSON, ("Content-Encoding", "gzip")],
        &gzip(json.as_bytes()),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let e = rx.entries();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].timestamp_ns, ts);
    assert_eq!(e[0].line, b"line \"one\"");
    assert_eq!(
        e[0].metadata.get("trace_id").map(String::as_str),
        Some("abc")
    );
    assert_eq!(e[1].timestamp_ns, ts + 5);
    assert!(e[1].metadata.is_empty());
    assert_eq!(e[1].label("level"), Some("info"));
    assert_eq!(e[1].tenant, None);
    assert_eq!(rx.requests()[0].content_encoding.as_deref(), Some("gzip"));
}

#[test]
fn refuses_what_loki_refuses() {
    let rx = LokiReceiver::new().unwrap();
    let ts = now_nanos();
    let raw = proto_request(&[(r#"{job="a"}"#, &[(ts, b"x", &[])])]);

    let mut framed = Vec::new();
    {
        let mut w = snap::write::FrameEncoder::new(&mut framed);
        w.write_all(&raw).unwrap();
    }
    assert_eq!(push(&rx, &[PROTO], &framed).status, 400, "framed snappy");
    assert_eq!(push(&rx, &[], &snappy(&raw)).status, 400, "no content type");
    assert_eq!(
        push(&rx, &[PROTO], &raw).status,
        400,
        "protobuf without snappy"
    );

    let r = push(&rx, &[PROTO, ("Content-Encoding", "br")], &snappy(&raw));
    assert_eq!(r.status, 400);
    assert_eq!(r.text().trim(), r#"Content-Encoding "br" not supported"#);

    let bad_labels = proto_body(&[(r#"{job="a", bad-name="x"}"#, &[(ts, b"x", &[])])]);
    let r = push(&rx, &[PROTO], &bad_labels);
    assert_eq!(r.status, 400);
    assert!(
        r.text().starts_with("couldn't parse labels"),
        "{}",
        r.text()
    );

    let numeric = format!(r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[[{ts},"x"]]}}]}}"#);
    assert_eq!(
        push(&rx, &[JSON], numeric.as_bytes()).status,
        400,
        "numeric timestamp"
    );
    let four =
        format!(r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{ts}","x",{{}},"y"]]}}]}}"#);
    assert_eq!(
        push(&rx, &[JSON], four.as_bytes()).status,
        400,
        "4-element value"
    );

    let r = push(
        &rx,
        &[PROTO],
        &snappy(&PushRequest::default().encode_to_vec()),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("at least one valid stream"));

    assert_eq!(rx.count(), 0);
    assert!(rx.entries().is_empty());
    assert!(rx.requests().iter().all(|r| r.stored == 0));
}

#[test]
fn validation_drops_bad_entries_and_keeps_the_rest() {
    let rx = LokiReceiver::with_config(ReceiverConfig {
        limits: Limits {
            max_line_size: 100,
            ..Limits::default()
        },
        ..ReceiverConfig::default()
    })
    .unwrap();
    let now = now_nanos();
    let day = 86_400_000_000_000i64;
    let long = vec![b'x'; 101];
    let many_labels: String = format!(
        "{{{}}}",
        (0..16)
            .map(|i| format!("l{i}=\"v\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let big_meta = "m".repeat(64 * 1024);
    let r = push(
        &rx,
        &[PROTO],
        &proto_body(&[
            (
                r#"{job="a"}"#,
                &[
                    (now, b"ok1", &[]),
                    (now, &long, &[]),
                    (now - 8 * day, b"old", &[]),
                    (now + 3_600_000_000_000, b"future", &[]),
                    (now, b"bigmeta", &[("k", &big_meta)]),
                    (now, b"ok2", &[]),
                ],
            ),
            (&many_labels, &[(now, b"labels", &[])]),
        ]),
    );
    assert_eq!(r.status, 400);
    let body = r.text();
    // The distributor's refusals: one message per line, no counts.
    assert_eq!(body.lines().count(), 5, "{body}");
    assert!(
        body.contains("max entry size '100' bytes exceeded"),
        "{body}"
    );
    assert!(body.contains("timestamp too old"), "{body}");
    assert!(body.contains("timestamp too new"), "{body}");
    assert!(body.contains("structured metadata too large"), "{body}");
    assert!(
        body.contains("17 label names; limit 15"),
        "16 labels and the service_name Loki adds: {body}"
    );
    assert!(!body.contains("total ignored"), "{body}");
    let lines: Vec<Vec<u8>> = rx.entries().into_iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![b"ok1".to_vec(), b"ok2".to_vec()]);
    assert_eq!(rx.rejected().len(), 5);
}

#[test]
fn entries_too_far_behind_their_stream_are_refused_by_the_ingester() {
    let rx = LokiReceiver::new().unwrap();
    let now = now_nanos();
    let hour = 3_600_000_000_000i64;
    let first = push(
        &rx,
        &[PROTO],
        &proto_body(&[(r#"{job="a"}"#, &[(now, b"new", &[])])]),
    );
    assert_eq!(first.status, 204);
    let r = push(
        &rx,
        &[PROTO],
        &proto_body(&[
            (
                r#"{job="a"}"#,
                &[
                    (now - 2 * hour, b"behind", &[]),
                    (now - hour / 2, b"near", &[]),
                ],
            ),
            (r#"{job="b"}"#, &[(now - 2 * hour, b"other stream", &[])]),
        ]),
    );
    assert_eq!(r.status, 400);
    let body = r.text();
    assert!(
        body.starts_with("entry with timestamp ")
            && body.contains("ignored, reason: 'entry too far behind, entry timestamp is: ")
            && body.ends_with("total ignored: 1 out of 2 for stream: {job=\"a\"}"),
        "{body}"
    );
    let lines: Vec<Vec<u8>> = rx.entries().into_iter().map(|e| e.line).collect();
    assert_eq!(
        lines,
        vec![b"new".to_vec(), b"near".to_vec(), b"other stream".to_vec()]
    );
}

#[test]
fn auth_enabled_requires_a_tenant() {
    let rx = LokiReceiver::with_config(ReceiverConfig {
        auth_enabled: true,
        ..ReceiverConfig::default()
    })
    .unwrap();
    let body = proto_body(&[(r#"{job="a"}"#, &[(now_nanos(), b"x", &[])])]);
    let r = push(&rx, &[PROTO], &body);
    assert_eq!(r.status, 401);
    assert_eq!(r.text().trim(), "no org id");
    assert_eq!(
        push(&rx, &[PROTO, ("X-Scope-OrgID", "a|b")], &body).status,
        400
    );
    assert_eq!(
        push(&rx, &[PROTO, ("X-Scope-OrgID", "t1")], &body).status,
        204
    );
    assert_eq!(rx.entries()[0].tenant.as_deref(), Some("t1"));
    assert_eq!(rx.count(), 1);
}

#[test]
fn ready_and_unknown_paths() {
    let rx = LokiReceiver::new().unwrap();
    let r = crate::http::get(rx.addr(), "/ready").unwrap();
    assert_eq!((r.status, r.text().trim()), (200, "ready"));
    assert_eq!(crate::http::get(rx.addr(), "/nope").unwrap().status, 404);
    assert_eq!(crate::http::get(rx.addr(), PUSH).unwrap().status, 405);
}

#[test]
fn status_faults_store_nothing_and_script_runs_before_mode() {
    let rx = LokiReceiver::new().unwrap();
    rx.push_faults([
        Fault::Status429 {
            retry_after: Some(2),
        },
        Fault::Status429 { retry_after: None },
        Fault::Status500,
        Fault::Status401,
        Fault::Status403,
        Fault::Status404,
    ]);
    let r = simple_push(&rx, 3);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    let r = simple_push(&rx, 3);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(simple_push(&rx, 3).status, 500);
    let r = simple_push(&rx, 3);
    assert_eq!((r.status, r.text().trim()), (401, "no org id"));
    assert_eq!(simple_push(&rx, 3).status, 403);
    assert_eq!(simple_push(&rx, 3).status, 404);
    assert_eq!(rx.count(), 0);
    assert_eq!(rx.pending_faults(), 0);
    // Script empty: the mode applies, and keeps applying.
    rx.set_mode(Mode::Fault(Fault::Status500));
    rx.push_fault(Fault::Status403);
    assert_eq!(simple_push(&rx, 1).status, 403);
    assert_eq!(simple_push(&rx, 1).status, 500);
    assert_eq!(simple_push(&rx, 1).status, 500);
    rx.set_mode(Mode::Normal);
    assert_eq!(simple_push(&rx, 2).status, 204);
    assert_eq!(rx.count(), 2);
    let statuses: Vec<Option<u16>> = rx.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 10);
    assert_eq!(statuses[0], Some(429));
    assert_eq!(rx.requests()[0].entries, 3);
}

#[test]
fn partial_400_stores_the_others() {
    let rx = LokiReceiver::new().unwrap();
    rx.push_fault(Fault::Status400Partial {
        reject_every_nth: 3,
    });
    let r = simple_push(&rx, 7);
    assert_eq!(r.status, 400);
    let body = r.text();
    assert!(body.contains("total ignored: 2 out of 7"), "{body}");
    assert_eq!(body.matches("entry with timestamp").count(), 2, "{body}");
    assert!(body.contains("entry too far behind"), "{body}");
    let stored: Vec<String> = rx
        .entries()
        .iter()
        .map(|e| e.line_str().into_owned())
        .collect();
    assert_eq!(stored, ["line 0", "line 1", "line 3", "line 4", "line 6"]);
    let rejected: Vec<String> = rx
        .rejected()
        .iter()
        .map(|e| e.entry.line_str().into_owned())
        .collect();
    assert_eq!(rejected, ["line 2", "line 5"]);
}

#[test]
fn status_413_only_above_the_limit() {
    let rx = LokiReceiver::new().unwrap();
    rx.set_mode(Mode::Fault(Fault::Status413IfBodyOver(200)));
    assert_eq!(simple_push(&rx, 2).status, 204);
    let r = simple_push(&rx, 200);
    assert_eq!(r.status, 413);
    assert_eq!(rx.count(), 2);
}

#[test]
fn delay_then_normal_answer() {
    let rx = LokiReceiver::new().unwrap();
    rx.push_fault(Fault::Delay(Duration::from_millis(400)));
    let t = Instant::now();
    assert_eq!(simple_push(&rx, 1).status, 204);
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(rx.count(), 1);
}

#[test]
fn drop_connection_writes_no_answer() {
    let rx = LokiReceiver::new().unwrap();
    rx.push_fault(Fault::DropConnection);
    let body = proto_body(&[(r#"{job="a"}"#, &[(now_nanos(), b"x", &[])])]);
    let err = post(rx.addr(), PUSH, &[PROTO], &body).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(rx.count(), 0);
    assert_eq!(rx.requests()[0].status, None);
    assert_eq!(push(&rx, &[PROTO], &body).status, 204);
}

#[test]
fn hang_never_answers() {
    let rx = LokiReceiver::new().unwrap();
    rx.push_fault(Fault::Hang);
    let body = proto_body(&[(r#"{job="a"}"#, &[(now_nanos(), b"x", &[])])]);
    let err = request(
        rx.addr(),
        "POST",
        PUSH,
        &[PROTO],
        &body,
        Duration::from_millis(500),
    )
    .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(rx.count(), 0);
    assert_eq!(push(&rx, &[PROTO], &body).status, 204);
}

#[test]
fn stop_refuses_connections_and_start_reuses_the_port() {
    let rx = LokiReceiver::new().unwrap();
    let addr = rx.addr();
    assert_eq!(simple_push(&rx, 1).status, 204);
    // A keep-alive connection open at stop time must be closed too.
    let idle = TcpStream::connect(addr).unwrap();
    rx.stop();
    assert!(!rx.is_running());
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1];
    match std::io::Read::read(&mut &idle, &mut buf) {
        Ok(n) => assert_eq!(n, 0, "idle connection should be closed"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    rx.start().unwrap();
    assert_eq!(rx.addr(), addr);
    assert_eq!(simple_push(&rx, 1).status, 204);
    assert_eq!(rx.count(), 2);
}

#[test]
fn ack_only_counts_without_storing() {
    let rx = LokiReceiver::new().unwrap();
    rx.set_mode(Mode::AckOnly);
    assert_eq!(simple_push(&rx, 50).status, 204);
    let json = br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"],["2","y"]]}]}"#;
    assert_eq!(
        push(&rx, &[JSON, ("Content-Encoding", "gzip")], &gzip(json)).status,
        204
    );
    assert_eq!(push(&rx, &[PROTO], b"garbage").status, 400);
    assert_eq!(rx.count(), 52);
    assert!(rx.entries().is_empty());
    assert!(rx.wait_for_count(52, Duration::from_millis(10)));
}

#[test]
fn wait_for_count_times_out_and_wakes_up() {
    let rx = std::sync::Arc::new(LokiReceiver::new().unwrap());
    let t = Instant::now();
    assert!(!rx.wait_for_count(1, Duration::from_millis(200)));
    assert!(t.elapsed() >= Duration::from_millis(200));
    let rx2 = rx.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        simple_push(&rx2, 5).status
    });
    assert!(rx.wait_for_count(5, Duration::from_secs(10)));
    assert_eq!(h.join().unwrap(), 204);
    rx.clear();
    assert_eq!(rx.count(), 0);
    assert!(rx.requests().is_empty());
}

#[test]
fn digest_identifies_a_resent_batch_in_any_stream_order() {
    let rx = LokiReceiver::new().unwrap();
    let ts = now_nanos();
    let a: &[Line<'_>] = &[(ts, b"a", &[])];
    let b: &[Line<'_>] = &[(ts + 1, b"b", &[])];
    push(
        &rx,
        &[PROTO],
        &proto_body(&[(r#"{s="1"}"#, a), (r#"{s="2"}"#, b)]),
    );
    push(
        &rx,
        &[PROTO],
        &proto_body(&[(r#"{s="2"}"#, b), (r#"{s="1"}"#, a)]),
    );
    push(&rx, &[PROTO], &proto_body(&[(r#"{s="1"}"#, a)]));
    let r = rx.requests();
    assert_eq!(r[0].lines_digest, r[1].lines_digest);
    assert_ne!(r[0].lines_digest, r[2].lines_digest);
    assert_eq!((r[0].entries, r[2].entries), (2, 1));
}
