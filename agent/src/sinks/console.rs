//! The console sink: prints events to standard output, for trying a pipeline out.
//!
//! `format = "text"` prints `<RFC 3339 time> {labels} line`, then ` | name=value ...` when the
//! event has structured metadata; the line is written as its raw bytes. `format = "json"` prints
//! one object per event: `{"timestamp":…,"labels":{…},"metadata":{…},"line":…}` (invalid UTF-8
//! replaced, as JSON requires).
//!
//! A chunk is formatted into one reused buffer and written with a single locked write and a
//! flush, so lines of concurrent writers never interleave within a chunk. Writing runs on a
//! blocking thread: a terminal or pipe that stalls must not stall the async runtime. A chunk is
//! settled once it is written; if standard output fails (closed pipe) its token is dropped
//! unsettled, and the sink keeps draining its input so the pipeline can stop.

use std::io::Write;

use logship_config::schema::{ConsoleFormat, ConsoleSinkConfig};
use logship_parsers::timestamp::format_rfc3339_nanos;
use tokio::sync::mpsc;

use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Event};
use crate::sinks::loki::encode_json::{
    label_pairs, metadata_pairs, write_json_object, write_json_string,
};
use crate::telemetry::ComponentMetrics;

/// Prints events to standard output (or, for tests, any writer).
pub struct ConsoleSink {
    id: std::sync::Arc<str>,
    format: ConsoleFormat,
    metrics: ComponentMetrics,
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for ConsoleSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSink")
            .field("id", &self.id)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl ConsoleSink {
    /// A console sink printing to standard output.
    pub fn new(config: &ConsoleSinkConfig, ctx: ComponentContext) -> Self {
        Self {
            metrics: ctx.metrics.component(&ctx.id),
            id: ctx.id,
            format: config.format,
            out: Box::new(std::io::stdout()),
        }
    }

    /// Prints to `out` instead of standard output.
    pub fn with_writer(mut self, out: impl Write + Send + 'static) -> Self {
        self.out = Box::new(out);
        self
    }

    /// Prints chunks from `input` until it closes.
    pub async fn run(mut self, mut input: mpsc::Receiver<Chunk>) {
        let printer = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut time = String::with_capacity(32);
            let mut failed = false;
            while let Some(chunk) = input.blocking_recv() {
                let events = chunk.events.len() as u64;
                let bytes = chunk.line_bytes() as u64;
                self.metrics.received_events.inc_by(events);
                self.metrics.received_bytes.inc_by(bytes);
                buf.clear();
                for event in &chunk.events {
                    format_event(self.format, event, &mut buf, &mut time);
                }
                let written = self.out.write_all(&buf).and_then(|()| self.out.flush());
                match written {
                    Ok(()) => {
                        self.metrics.sent_events.inc_by(events);
                        self.metrics.sent_bytes.inc_by(bytes);
                        chunk.ack.delivered();
                    }
                    Err(e) => {
                        if !failed {
                            tracing::error!(component = %self.id, error = %e, "cannot write to standard output");
                            failed = true;
                        }
                        drop(chunk);
                    }
                }
            }
        });
        if let Err(e) = printer.await {
            tracing::error!(error = %e, "the console sink's writer failed");
        }
    }
}

/// Appends one event in `format`, with its newline. `time` is scratch space.
pub fn format_event(format: ConsoleFormat, event: &Event, out: &mut Vec<u8>, time: &mut String) {
    time.clear();
    format_rfc3339_nanos(event.timestamp_ns, time);
    match format {
        ConsoleFormat::Text => {
            out.extend_from_slice(time.as_bytes());
            out.push(b' ');
            out.extend_from_slice(event.labels.selector().as_bytes());
            out.push(b' ');
            out.extend_from_slice(&event.line);
            for (i, (name, value)) in event.metadata.iter().enumerate() {
                out.extend_from_slice(if i == 0 { b" | " } else { b" " });
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
                out.extend_from_slice(value);
            }
        }
        ConsoleFormat::Json => {
            out.extend_from_slice(b"{\"timestamp\":");
            write_json_string(out, time.as_bytes());
            out.extend_from_slice(b",\"labels\":");
            write_json_object(out, label_pairs(&event.labels));
            out.extend_from_slice(b",\"metadata\":");
            write_json_object(out, metadata_pairs(&event.metadata));
            out.extend_from_slice(b",\"line\":");
            write_json_string(out, &event.line);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::AckLedger;
    use crate::pipeline::{LabelSet, MetadataName};
    use bytes::Bytes;
    use std::sync::{Arc, Mutex};

    fn event() -> Event {
        let mut e = Event::new(
            1_718_020_800_123_456_789,
            Bytes::from_static(b"{\"msg\":\"hi\"}"),
            LabelSet::new([("service", "api"), ("level", "info")]),
        );
        e.metadata
            .push((MetadataName::from("trace_id"), Bytes::from_static(b"4bf9")));
        e.metadata
            .push((MetadataName::from("span_id"), Bytes::from_static(b"00f0")));
        e
    }

    #[test]
    fn text_format() {
        let mut out = Vec::new();
        format_event(ConsoleFormat::Text, &event(), &mut out, &mut String::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2024-06-10T12:00:00.123456789Z {level=\"info\", service=\"api\"} {\"msg\":\"hi\"} | trace_id=4bf9 span_id=00f0\n"
        );
    }

    #[test]
    fn json_format_is_one_valid_object_per_line() {
        let mut out = Vec::new();
        let mut e = event();
        e.line = Bytes::from_static(b"bad \xff utf-8");
        format_event(ConsoleFormat::Json, &e, &mut out, &mut String::new());
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "timestamp": "2024-06-10T12:00:00.123456789Z",
                "labels": {"level": "info", "service": "api"},
                "metadata": {"trace_id": "4bf9", "span_id": "00f0"},
                "line": "bad \u{FFFD} utf-8",
            })
        );
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn sink(out: impl Write + Send + 'static) -> ConsoleSink {
        ConsoleSink::new(
            &ConsoleSinkConfig {
                inputs: vec!["x".into()],
                format: ConsoleFormat::Text,
            },
            ComponentContext::for_test("console", std::env::temp_dir()),
        )
        .with_writer(out)
    }

    #[tokio::test]
    async fn prints_and_settles() {
        let out = Shared::default();
        let (tx, rx) = mpsc::channel(1);
        let run = tokio::spawn(sink(out.clone()).run(rx));
        let ledger = AckLedger::new(0u64);
        tx.send(Chunk {
            events: vec![event(), event()],
            ack: ledger.token(3),
        })
        .await
        .unwrap();
        drop(tx);
        run.await.unwrap();
        assert_eq!(ledger.committed(), 3);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }

    #[tokio::test]
    async fn a_failing_output_leaves_chunks_unsettled() {
        let (tx, rx) = mpsc::channel(1);
        let run = tokio::spawn(sink(Broken).run(rx));
        let ledger = AckLedger::new(0u64);
        tx.send(Chunk {
            events: vec![event()],
            ack: ledger.token(3),
        })
        .await
        .unwrap();
        drop(tx);
        run.await.unwrap();
        assert_eq!(ledger.committed(), 0);
        assert!(ledger.has_failed());
    }
}
