//! A component's output: one bounded channel per downstream component, and its tap point.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Chunk;
use super::tap::TapPoint;

/// Sends each chunk to every downstream component. A full downstream channel makes `send`
/// wait, which is how backpressure reaches the sources. While the component is tapped, the
/// chunk's events are also offered to the watchers (never waiting for them).
pub struct Fanout {
    outputs: Vec<mpsc::Sender<Chunk>>,
    tap: Option<Arc<TapPoint>>,
}

/// Every downstream component has gone away; nothing can be delivered any more.
#[derive(Debug, thiserror::Error)]
#[error("every downstream component has stopped")]
pub struct Closed;

impl Fanout {
    /// A fanout over these senders.
    pub fn new(outputs: Vec<mpsc::Sender<Chunk>>) -> Self {
        Self { outputs, tap: None }
    }

    /// The same fanout, also offering what it sends to `tap`'s watchers.
    pub fn with_tap(mut self, tap: Arc<TapPoint>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Sends `chunk` to every output (cloning events and tokens for all but the last).
    /// Outputs that have closed are skipped; fails only when none is left.
    pub async fn send(&mut self, chunk: Chunk) -> Result<(), Closed> {
        if let Some(tap) = &self.tap
            && tap.is_watched()
        {
            tap.offer(&chunk.events);
        }
        let n = self.outputs.len();
        if n == 0 {
            // A component nobody reads from: its data is settled as delivered to nobody.
            chunk.ack.delivered();
            return Ok(());
        }
        let mut chunk = Some(chunk);
        let mut delivered = 0;
        for (i, tx) in self.outputs.iter().enumerate() {
            let Some(c) = chunk.take() else { break };
            let this = if i + 1 == n {
                c
            } else {
                let copy = Chunk {
                    events: c.events.clone(),
                    ack: c.ack.clone(),
                };
                chunk = Some(c);
                copy
            };
            if tx.send(this).await.is_ok() {
                delivered += 1;
            }
        }
        if delivered == 0 { Err(Closed) } else { Ok(()) }
    }
}
