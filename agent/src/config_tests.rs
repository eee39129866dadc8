//! `logship test`: runs a config's `[[tests]]` blocks, as `vector test` does.
//!
//! Each test gives its input lines to the transforms they name, passes what those emit on to
//! the transforms that read from them (as the running pipeline would), and checks what the
//! named transforms emitted: every event of an `extract_from` transform must match its
//! conditions (and there must be one), and a `no_outputs_from` transform must emit nothing.
//! Transforms are the real ones, built from the config; nothing is read or sent.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use bytes::Bytes;
use logship_config::schema::{ConfigTest, TestOutput};
use logship_config::{ComponentKind, LoadedConfig};
use logship_parsers::timestamp::{format_rfc3339_nanos, parse_timestamp};

use crate::context::ComponentContext;
use crate::pipeline::{AckLedger, Chunk, Event, LabelSet};
use crate::transforms;

/// The outcome of one test.
#[derive(Debug)]
pub struct TestResult {
    /// The test's `name`.
    pub name: String,
    /// Why it failed, one line per unmet condition; empty when it passed.
    pub failures: Vec<String>,
}

impl TestResult {
    /// True when every condition held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A test could not be run (a transform failed to build).
#[derive(Debug, thiserror::Error)]
#[error("test `{test}`: transform `{id}` cannot be built: {reason}")]
pub struct TestRunError {
    test: String,
    id: String,
    reason: String,
}

/// Runs every test of `loaded`, in order.
pub fn run_all(loaded: &LoadedConfig) -> Result<Vec<TestResult>, TestRunError> {
    loaded
        .config
        .tests
        .iter()
        .map(|test| run_one(loaded, test))
        .collect()
}

/// The time an input line is "read" at, so outputs without a timestamp of their own are
/// predictable: 2000-01-01T00:00:00Z.
const READ_TIME_NS: i64 = 946_684_800_000_000_000;

fn run_one(loaded: &LoadedConfig, test: &ConfigTest) -> Result<TestResult, TestRunError> {
    let dir = std::env::temp_dir();
    let mut built: HashMap<&str, transforms::ExtractTransform> = HashMap::new();
    let mut emitted: HashMap<String, Vec<Event>> = HashMap::new();
    let mut queue: Vec<(String, Event)> = test
        .inputs
        .iter()
        .map(|input| {
            let labels = LabelSet::new(input.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let event = Event::new(READ_TIME_NS, Bytes::from(input.value.clone()), labels);
            (input.insert_at.clone(), event)
        })
        .collect();
    queue.reverse();
    while let Some((id, event)) = queue.pop() {
        let Some((key, config)) = loaded.config.transforms.get_key_value(id.as_str()) else {
            continue;
        };
        let transform = match built.entry(key.as_str()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ctx = ComponentContext::for_test(key, &dir);
                let t = transforms::build(config, &ctx).map_err(|err| TestRunError {
                    test: test.name.clone(),
                    id: key.clone(),
                    reason: err.to_string(),
                })?;
                e.insert(t)
            }
        };
        let ledger = AckLedger::new(0u64);
        let mut chunk = Chunk {
            events: vec![event],
            ack: ledger.token(1),
        };
        transform.apply(&mut chunk);
        let Chunk { events, ack } = chunk;
        ack.delivered();
        for event in events {
            for reader in loaded.graph.outputs_of(&id) {
                if loaded.graph.kind_of(reader) == Some(ComponentKind::Transform) {
                    queue.push((reader.clone(), event.clone()));
                }
            }
            emitted.entry(id.clone()).or_default().push(event);
        }
    }

    let mut failures = Vec::new();
    for expected in &test.outputs {
        let events = emitted
            .get(&expected.extract_from)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if events.is_empty() {
            failures.push(format!(
                "`{}` emitted nothing; expected a line matching {}",
                expected.extract_from,
                describe(expected)
            ));
        }
        for event in events {
            for problem in mismatches(expected, event) {
                failures.push(format!(
                    "`{}` emitted {}\n      {problem}",
                    expected.extract_from,
                    show(event)
                ));
            }
        }
    }
    for id in &test.no_outputs_from {
        for event in emitted.get(id).map(Vec::as_slice).unwrap_or_default() {
            failures.push(format!(
                "`{id}` must emit nothing, but emitted {}",
                show(event)
            ));
        }
    }
    Ok(TestResult {
        name: test.name.clone(),
        failures,
    })
}

/// The conditions of `expected` that `event` does not meet, each as "expected X, got Y".
fn mismatches(expected: &TestOutput, event: &Event) -> Vec<String> {
    let mut out = Vec::new();
    for (name, want) in &expected.labels {
        let got = event.labels.get(name);
        if got != Some(want.as_str()) {
            out.push(format!(
                "label {name}: expected {want:?}, got {}",
                got.map_or("no such label".to_owned(), |g| format!("{g:?}"))
            ));
        }
    }
    let metadata: BTreeMap<&str, String> = event
        .metadata
        .iter()
        .map(|(k, v)| (&**k, String::from_utf8_lossy(v).into_owned()))
        .collect();
    for (name, want) in &expected.structured_metadata {
        let got = metadata.get(name.as_str());
        if got != Some(want) {
            out.push(format!(
                "structured_metadata {name}: expected {want:?}, got {}",
                got.map_or("none".to_owned(), |g| format!("{g:?}"))
            ));
        }
    }
    if let Some(want) = &expected.timestamp {
        match parse_timestamp(want.as_bytes()) {
            Some(ns) if ns == event.timestamp_ns => {}
            Some(_) => out.push(format!(
                "timestamp: expected {want}, got {}",
                rfc3339(event.timestamp_ns)
            )),
            None => out.push(format!(
                "timestamp: expected {want:?}, which is not RFC 3339"
            )),
        }
    }
    if let Some(want) = &expected.line
        && want.as_bytes() != &event.line[..]
    {
        out.push(format!(
            "line: expected {want:?}, got {:?}",
            String::from_utf8_lossy(&event.line)
        ));
    }
    out
}

fn rfc3339(ns: i64) -> String {
    let mut s = String::new();
    format_rfc3339_nanos(ns, &mut s);
    s
}

/// An event as one JSON object: timestamp, labels, structured metadata, line.
fn show(event: &Event) -> String {
    let labels: BTreeMap<&str, &str> = event
        .labels
        .pairs()
        .iter()
        .map(|(k, v)| (&**k, &**v))
        .collect();
    let metadata: BTreeMap<&str, String> = event
        .metadata
        .iter()
        .map(|(k, v)| (&**k, String::from_utf8_lossy(v).into_owned()))
        .collect();
    serde_json::json!({
        "timestamp": rfc3339(event.timestamp_ns),
        "labels": labels,
        "structured_metadata": metadata,
        "line": String::from_utf8_lossy(&event.line),
    })
    .to_string()
}

/// The conditions of an output, for a message.
fn describe(expected: &TestOutput) -> String {
    let mut s = String::new();
    for (k, v) in &expected.labels {
        let _ = write!(s, "label {k}={v:?} ");
    }
    for (k, v) in &expected.structured_metadata {
        let _ = write!(s, "metadata {k}={v:?} ");
    }
    if let Some(t) = &expected.timestamp {
        let _ = write!(s, "timestamp {t} ");
    }
    if let Some(l) = &expected.line {
        let _ = write!(s, "line {l:?}");
    }
    if s.is_empty() {
        s.push_str("anything");
    }
    s.trim_end().to_owned()
}
