//! Criterion micro-benchmarks for `logship-parsers`, the agent's per-line hot path.
//!
//! Each group reports throughput (lines or bytes per second) so that results compare directly
//! with the agent's target of over a million lines per CPU-second:
//!
//! * `lines`: splitting a 64 KiB read block of ~250-byte JSON lines.
//! * `json`: extracting five fields from a typical ~250-byte JSON log line, and validating
//!   the line with no fields wanted.
//! * `timestamp`: RFC 3339 and epoch parsing, formats and zones (`TimestampParser`), and
//!   RFC 3339 formatting.
//! * `docker`: decoding Docker json-file lines, plain text and wrapped JSON.
//! * `cri`, `logfmt`: one line each.
//!
//! Run with `cargo bench -p logship-benches --bench parsers` (add `-- --quick` for a fast pass).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_parsers::cri::parse_cri;
use logship_parsers::docker::{parse_docker_json, parse_docker_json_into};
use logship_parsers::json::{FieldRanges, FieldSet, validate_object};
use logship_parsers::lines::LineSplitter;
use logship_parsers::logfmt::LogfmtPairs;
use logship_parsers::timestamp::{format_rfc3339_nanos, parse_timestamp};
use logship_parsers::timestamp_format::TimestampParser;

const JSON_LINE: &str = r#"{"time":"2026-11-22T20:20:07.123456789Z","level":"info","service":"order-api","msg":"order created","order_id":"ord_000123","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","http.status":202,"latency_ms":12.5}"#;

const FIELDS: [&str; 5] = ["service", "level", "trace_id", "span_id", "time"];

/// About 64 KiB of distinct ~250-byte JSON lines, each ending in `\n`.
fn json_block() -> Vec<u8> {
    let mut block = Vec::with_capacity(64 * 1024);
    let mut i = 0u32;
    while block.len() < 64 * 1024 - 300 {
        let line = JSON_LINE.replace("ord_000123", &format!("ord_{i:06}"));
        block.extend_from_slice(line.as_bytes());
        block.push(b'\n');
        i += 1;
    }
    block
}

fn bench_lines(c: &mut Criterion) {
    let block = json_block();
    let lines = block.iter().filter(|&&b| b == b'\n').count() as u64;
    let mut group = c.benchmark_group("lines");

    group.throughput(Throughput::Bytes(block.len() as u64));
    group.bench_function("split_64k_block", |b| {
        let mut splitter = LineSplitter::new(256 * 1024);
        let mut buf = BytesMut::with_capacity(block.len());
        b.iter(|| {
            // The copy into the read buffer stands in for the read(2) a tailer does.
            buf.extend_from_slice(&block);
            let mut n = 0usize;
            splitter.split(&mut buf, |l| {
                n += l.line.len();
                black_box(&l);
            });
            black_box(n)
        });
    });

    group.throughput(Throughput::Elements(lines));
    group.bench_function("split_64k_block_per_line", |b| {
        let mut splitter = LineSplitter::new(256 * 1024);
        let mut buf = BytesMut::with_capacity(block.len());
        b.iter(|| {
            buf.extend_from_slice(&block);
            splitter.split(&mut buf, |l| {
                black_box(l);
            })
        });
    });
    group.finish();
}

fn bench_json(c: &mut Criterion) {
    let line = JSON_LINE.as_bytes();
    let fields = FieldSet::new(&FIELDS);
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(1));

    group.bench_function("extract_5_fields", |b| {
        b.iter(|| {
            let mut out = [None; 5];
            fields.extract(black_box(line), &mut out).ok();
            black_box(out)
        });
    });

    group.bench_function("extract_5_fields_ranges", |b| {
        let mut ranges = FieldRanges::new();
        b.iter(|| {
            fields.extract_ranges(black_box(line), &mut ranges).ok();
            black_box(ranges.get(0, line))
        });
    });

    group.bench_function("extract_5_fields_and_decode", |b| {
        b.iter(|| {
            let mut out = [None; 5];
            fields.extract(black_box(line), &mut out).ok();
            let time = out[4].and_then(|t| parse_timestamp(t.as_text().as_bytes()));
            let level = out[1].map(|v| v.as_text());
            black_box((time, level, out))
        });
    });

    group.bench_function("validate_only", |b| {
        b.iter(|| validate_object(black_box(line)).is_ok());
    });

    let nested = br#"{"ts":1718000000.5,"level":"warn","ctx":{"user":{"id":42,"roles":["a","b"]},"req":{"path":"/api/orders","method":"POST"}},"span":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"},"msg":"slow \"request\" took 1.2s\n"}"#;
    let nested_fields = FieldSet::new(&["level", "span.trace_id", "span.span_id", "ts", "msg"]);
    group.bench_function("extract_5_nested_fields", |b| {
        b.iter(|| {
            let mut out = [None; 5];
            nested_fields.extract(black_box(nested), &mut out).ok();
            black_box(out)
        });
    });
    group.finish();
}

fn bench_timestamp(c: &mut Criterion) {
    let mut group = c.benchmark_group("timestamp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rfc3339_nanos", |b| {
        b.iter(|| parse_timestamp(black_box(b"2026-11-22T20:20:07.123456789Z")));
    });
    group.bench_function("rfc3339_offset", |b| {
        b.iter(|| parse_timestamp(black_box(b"2026-11-22T22:20:07.123+02:00")));
    });
    group.bench_function("epoch_millis", |b| {
        b.iter(|| parse_timestamp(black_box(b"1718000000123")));
    });
    group.bench_function("epoch_seconds_fraction", |b| {
        b.iter(|| parse_timestamp(black_box(b"1718000000.123456")));
    });
    // `timestamp_format` / `timezone`: what a log4j or common-log-format line costs, next to
    // the fast path that a parser without a format still takes.
    let default = TimestampParser::default();
    group.bench_function("parser_default_rfc3339", |b| {
        b.iter(|| default.parse(black_box(b"2026-11-22T20:20:07.123456789Z"), 0));
    });
    let log4j = TimestampParser::new(Some("%Y-%m-%d %H:%M:%S,%f"), Some("Europe/Berlin"))
        .expect("a valid format");
    group.bench_function("format_log4j_in_zone", |b| {
        b.iter(|| log4j.parse(black_box(b"2026-11-22 21:20:07,123"), 0));
    });
    let clf = TimestampParser::new(Some("%d/%b/%Y:%H:%M:%S %z"), None).expect("a valid format");
    group.bench_function("format_common_log", |b| {
        b.iter(|| clf.parse(black_box(b"22/Nov/2026:22:20:07 +0200"), 0));
    });
    group.bench_function("format_rfc3339_nanos", |b| {
        let mut s = String::with_capacity(32);
        b.iter(|| {
            s.clear();
            format_rfc3339_nanos(black_box(1_795_378_807_123_456_789), &mut s);
            black_box(s.len())
        });
    });
    group.finish();
}

fn bench_docker(c: &mut Criterion) {
    let plain = br#"{"log":"2026-11-22 20:20:07 INFO order created id=ord_000123 user=42 took=12ms\n","stream":"stdout","time":"2026-11-22T20:20:07.123456789Z"}"#;
    let mut wrapped = br#"{"log":""#.to_vec();
    for &c in JSON_LINE.as_bytes() {
        if c == b'"' {
            wrapped.push(b'\\');
        }
        wrapped.push(c);
    }
    wrapped.extend_from_slice(br#"\n","stream":"stdout","time":"2026-11-22T20:20:07.123456789Z"}"#);
    let wrapped = Bytes::from(wrapped);

    let mut group = c.benchmark_group("docker");
    group.throughput(Throughput::Elements(1));
    group.bench_function("json_file_plain", |b| {
        b.iter(|| parse_docker_json(black_box(plain)).map(|d| d.time_ns));
    });
    group.bench_function("json_file_wrapped_json", |b| {
        b.iter(|| parse_docker_json(black_box(&wrapped)).map(|d| d.log.len()));
    });
    group.bench_function("json_file_wrapped_json_into_arena", |b| {
        let mut arena = BytesMut::with_capacity(64 * 1024);
        b.iter(|| parse_docker_json_into(black_box(&wrapped), &mut arena).map(|d| d.log));
    });
    group.finish();
}

fn bench_cri_logfmt(c: &mut Criterion) {
    let mut group = c.benchmark_group("other");
    group.throughput(Throughput::Elements(1));
    let cri = format!("2026-11-22T20:20:07.123456789Z stdout F {JSON_LINE}");
    group.bench_function("cri_line", |b| {
        b.iter(|| parse_cri(black_box(cri.as_bytes())).map(|l| l.log.len()));
    });
    let logfmt = br#"ts=2026-11-22T20:20:07.123Z level=info service=order-api msg="order created" order_id=ord_000123 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 latency_ms=12.5"#;
    group.bench_function("logfmt_all_pairs", |b| {
        b.iter(|| LogfmtPairs::new(black_box(logfmt)).count());
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_lines,
    bench_json,
    bench_timestamp,
    bench_docker,
    bench_cri_logfmt
);
criterion_main!(benches);
