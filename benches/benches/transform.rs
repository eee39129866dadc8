//! Criterion benchmark of the `json` transform as the agent runs it: a chunk of 1,000 W1
//! lines (the e2e bench's workload) through `ExtractTransform::apply`, which scans each line,
//! interns its label set (`service`, `level`) in the label cache, attaches `trace_id` as
//! metadata and parses `time`. Reports lines per second.
//!
//! Run with `cargo bench -p logship-benches --bench transform`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logship_agent::pipeline::{AckToken, Chunk, Event, LabelSet};
use logship_agent::{ComponentContext, transforms};
use logship_benches::workload;

const CONFIG: &str = r#"
[sources.app]
type = "stdin"
[transforms.parse]
type = "json"
inputs = ["app"]
labels = { service = "service", level = "level" }
structured_metadata = { trace_id = "trace_id" }
timestamp = "time"
[sinks.out]
type = "blackhole"
inputs = ["parse"]
"#;

fn chunk(lines: &[Bytes], base: &LabelSet) -> Chunk {
    Chunk {
        events: lines
            .iter()
            .map(|l| Event::new(0, l.clone(), base.clone()))
            .collect(),
        ack: AckToken::untracked(),
    }
}

fn bench_transform(c: &mut Criterion) {
    let loaded = logship_config::load_str(CONFIG, "bench.toml", &|_| None).expect("bench config");
    let config = &loaded.config.transforms["parse"];
    let ctx = ComponentContext::for_test("parse", std::env::temp_dir());
    let mut transform = transforms::build(config, &ctx).expect("bench transform");
    let mut rng = 1u64;
    let lines: Vec<Bytes> = (0..1000)
        .map(|i| {
            let mut s = String::new();
            workload::json_line(i, &mut rng, &mut s);
            Bytes::from(s.trim_end().to_owned())
        })
        .collect();
    let base = LabelSet::new([("job", "app")]);
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("json_apply_1000_w1_lines", |b| {
        b.iter_batched(
            || chunk(&lines, &base),
            |mut chunk| {
                transform.apply(&mut chunk);
                black_box(chunk)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_transform);
criterion_main!(benches);
