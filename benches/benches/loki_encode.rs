//! Criterion benchmarks for the Loki sink's body encoders.
//!
//! The workload is one full default batch: about 512 KiB of distinct ~250-byte JSON log lines in
//! four streams, each line with two structured-metadata pairs (`trace_id`, `span_id`) that are
//! slices of the line, as the JSON transform produces them. Each group reports bytes per second
//! of line data; divide the time per iteration by the line count printed at start-up for the
//! cost per line (the agent's budget is well under 1 µs per line end to end, so encoding should
//! stay below ~150 ns).
//!
//! * `protobuf_snappy`: the default body: hand-written protobuf + raw snappy.
//! * `protobuf_only`: the protobuf pass alone, to see snappy's share.
//! * `json_gzip` / `json`: the JSON option, for comparison.
//!
//! Run with `cargo bench -p logship-benches --bench loki_encode` (add `-- --quick` for a fast
//! pass).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logship_agent::pipeline::MetadataName;
use logship_agent::sinks::loki::{JsonEncoder, ProtobufEncoder, Stream, event_size};
use logship_agent::{Event, LabelSet};

const BATCH_BYTES: usize = 512 * 1024;
const STREAMS: usize = 4;

/// A ~250-byte JSON line in the demo services' shape, made distinct by `i`.
fn json_line(i: usize) -> String {
    format!(
        concat!(
            r#"{{"time":"2026-11-22T20:20:{:02}.{:09}Z","level":"info","service":"order-api","#,
            r#""msg":"order created","order_id":"ord_{:06}","trace_id":"{:032x}","#,
            r#""span_id":"{:016x}","http.status":202,"latency_ms":{}.5}}"#
        ),
        i % 60,
        (i * 7919) % 1_000_000_000,
        i,
        (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        i % 500,
    )
}

/// The slice of `line` holding the string value of `"key":"`.
fn field(line: &Bytes, key: &str) -> Bytes {
    let text = std::str::from_utf8(line).unwrap_or_default();
    let pattern = format!("\"{key}\":\"");
    let start = text.find(&pattern).map_or(0, |p| p + pattern.len());
    let end = text[start..].find('"').map_or(start, |e| start + e);
    line.slice(start..end)
}

fn batch() -> (Vec<Stream>, usize, usize) {
    let labels: Vec<LabelSet> = (0..STREAMS)
        .map(|s| {
            LabelSet::new([
                ("service", format!("order-api-{s}")),
                ("level", "info".to_owned()),
                ("host", "node-1".to_owned()),
            ])
        })
        .collect();
    let trace_id = MetadataName::interned("trace_id");
    let span_id = MetadataName::interned("span_id");
    let mut entries: Vec<Vec<Event>> = vec![Vec::new(); STREAMS];
    let (mut bytes, mut line_bytes, mut i) = (0, 0, 0);
    while bytes < BATCH_BYTES {
        let line = Bytes::from(json_line(i));
        let s = i % STREAMS;
        let mut event = Event::new(
            1_795_000_000_000_000_000 + i as i64 * 1000,
            line.clone(),
            labels[s].clone(),
        );
        event
            .metadata
            .push((trace_id.clone(), field(&line, "trace_id")));
        event
            .metadata
            .push((span_id.clone(), field(&line, "span_id")));
        bytes += event_size(&event);
        line_bytes += line.len();
        entries[s].push(event);
        i += 1;
    }
    let streams = labels
        .into_iter()
        .zip(entries)
        .map(|(l, e)| Stream::new(l, e))
        .collect();
    (streams, i, line_bytes)
}

fn bench_encode(c: &mut Criterion) {
    let (streams, lines, line_bytes) = batch();
    eprintln!(
        "loki_encode: {lines} lines, {line_bytes} line bytes ({} bytes/line), {STREAMS} streams",
        line_bytes / lines
    );
    let mut group = c.benchmark_group("loki_encode");
    group.throughput(Throughput::Bytes(line_bytes as u64));

    group.bench_function("protobuf_snappy", |b| {
        let mut enc = ProtobufEncoder::new();
        b.iter(|| black_box(enc.encode(black_box(&streams)).map(|body| body.len())));
    });
    group.bench_function("protobuf_only", |b| {
        let mut enc = ProtobufEncoder::new();
        b.iter(|| black_box(enc.encode_uncompressed(black_box(&streams)).len()));
    });
    group.bench_function("json_gzip", |b| {
        let mut enc = JsonEncoder::new(true);
        b.iter(|| black_box(enc.encode(black_box(&streams)).map(|body| body.len())));
    });
    group.bench_function("json", |b| {
        let mut enc = JsonEncoder::new(false);
        b.iter(|| black_box(enc.encode_uncompressed(black_box(&streams)).len()));
    });
    group.finish();

    // Criterion measures wall time, which a busy machine inflates; thread CPU time per line
    // is the number to hold against the agent's lines-per-CPU-second budget.
    let mut enc = ProtobufEncoder::new();
    let per_line = |f: &mut dyn FnMut()| {
        let rounds = 200;
        let start = thread_cpu_ns();
        for _ in 0..rounds {
            f();
        }
        (thread_cpu_ns() - start) as f64 / (rounds * lines) as f64
    };
    let snappy_ns = per_line(&mut || {
        black_box(
            enc.encode(black_box(&streams))
                .map(|b| b.len())
                .unwrap_or(0),
        );
    });
    let proto_ns = per_line(&mut || {
        black_box(enc.encode_uncompressed(black_box(&streams)).len());
    });
    eprintln!(
        "loki_encode: CPU per line: protobuf+snappy {snappy_ns:.0} ns, protobuf alone {proto_ns:.0} ns"
    );

    let raw = enc.encode_uncompressed(&streams).len();
    let snappy = enc.encode(&streams).map_or(0, |b| b.len());
    let gzip = JsonEncoder::new(true)
        .encode(&streams)
        .map_or(0, |b| b.len());
    eprintln!("loki_encode: protobuf {raw} B, +snappy {snappy} B, json+gzip {gzip} B");
}

/// CPU time consumed by this thread, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
