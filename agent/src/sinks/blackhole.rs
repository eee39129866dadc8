//! The blackhole sink: counts what it receives and settles it as delivered. For benchmarks
//! (the pipeline's cost without Loki's) and for pipelines under construction.

use logship_config::schema::BlackholeSinkConfig;
use tokio::sync::mpsc;

use crate::context::ComponentContext;
use crate::pipeline::Chunk;
use crate::telemetry::ComponentMetrics;

/// Discards every event and acknowledges every chunk at once.
pub struct BlackholeSink {
    metrics: ComponentMetrics,
}

impl std::fmt::Debug for BlackholeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlackholeSink").finish_non_exhaustive()
    }
}

impl BlackholeSink {
    /// A blackhole counting under `ctx.id`. The config has nothing but `inputs`.
    pub fn new(_config: &BlackholeSinkConfig, ctx: ComponentContext) -> Self {
        Self {
            metrics: ctx.metrics.component(&ctx.id),
        }
    }

    /// Consumes `input` until it closes.
    pub async fn run(self, mut input: mpsc::Receiver<Chunk>) {
        while let Some(chunk) = input.recv().await {
            let events = chunk.events.len() as u64;
            let bytes = chunk.line_bytes() as u64;
            let m = &self.metrics;
            m.received_events.inc_by(events);
            m.received_bytes.inc_by(bytes);
            m.sent_events.inc_by(events);
            m.sent_bytes.inc_by(bytes);
            chunk.ack.delivered();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::AckLedger;
    use crate::pipeline::{Event, LabelSet};
    use bytes::Bytes;

    #[tokio::test]
    async fn counts_and_settles() {
        let ctx = ComponentContext::for_test("bh", std::env::temp_dir());
        let sink = BlackholeSink::new(
            &BlackholeSinkConfig {
                inputs: vec!["x".into()],
            },
            ctx.clone(),
        );
        let (tx, rx) = mpsc::channel(2);
        let run = tokio::spawn(sink.run(rx));
        let ledger = AckLedger::new(0u64);
        let events = vec![
            Event::new(0, Bytes::from_static(b"abc"), LabelSet::empty()),
            Event::new(0, Bytes::from_static(b"de"), LabelSet::empty()),
        ];
        tx.send(Chunk {
            events,
            ack: ledger.token(5),
        })
        .await
        .unwrap();
        drop(tx);
        run.await.unwrap();
        assert_eq!(ledger.committed(), 5);
        assert_eq!(ctx.metrics.sent_events.with_label_values(&["bh"]).get(), 2);
        assert_eq!(ctx.metrics.sent_bytes.with_label_values(&["bh"]).get(), 5);
    }
}
