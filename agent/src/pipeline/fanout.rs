//! A component's output: one bounded channel per downstream component.

use tokio::sync::mpsc;

use super::Chunk;

/// Sends each chunk to every downstream component. A full downstream channel makes `send`
/// wait, which is how backpressure reaches the sources.
pub struct Fanout {
    outputs: Vec<mpsc::Sender<Chunk>>,
}

/// Every downstream component has gone away; nothing can be delivered any more.
#[derive(Debug, thiserror::Error)]
#[error("every downstream component has stopped")]
pub struct Closed;

impl Fanout {
    /// A fanout over these senders.
    pub fn new(outputs: Vec<mpsc::Sender<Chunk>>) -> Self {
        Self { outputs }
    }

    /// Sends `chunk` to every output (cloning events and tokens for all but the last).
    /// Outputs that have closed are skipped; fails only when none is left.
    pub async fn send(&mut self, chunk: Chunk) -> Result<(), Closed> {
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
