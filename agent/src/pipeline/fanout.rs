//! A component's output: one bounded channel per downstream component, and its tap point.
//!
//! Where a fanout sends can change while it runs: a config reload that adds, removes or
//! replaces a downstream component gives the running component new targets through its
//! [`FanoutTargets`], without stopping it.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::Chunk;
use super::tap::TapPoint;

/// The downstream channels a fanout sends to.
type Outputs = Arc<[mpsc::Sender<Chunk>]>;

/// Sends each chunk to every downstream component. A full downstream channel makes `send`
/// wait, which is how backpressure reaches the sources. While the component is tapped, the
/// chunk's events are also offered to the watchers (never waiting for them).
pub struct Fanout {
    /// The current targets. Read once per chunk and held only while that chunk is sent, so
    /// that a replaced target's channel closes as soon as no send to it is under way (even
    /// while this component is idle) and the replaced component can drain and end.
    outputs: watch::Receiver<Outputs>,
    tap: Option<Arc<TapPoint>>,
}

/// Replaces the targets of one running [`Fanout`] (see [`Fanout::retargetable`]). Dropping
/// it leaves the fanout with the targets it has.
pub struct FanoutTargets {
    tx: watch::Sender<Outputs>,
}

impl FanoutTargets {
    /// From the next chunk on, the fanout sends to `outputs`. A send already under way
    /// finishes with the old targets.
    pub fn set(&self, outputs: Vec<mpsc::Sender<Chunk>>) {
        self.tx.send_replace(outputs.into());
    }
}

/// Every downstream component has gone away; nothing can be delivered any more.
#[derive(Debug, thiserror::Error)]
#[error("every downstream component has stopped")]
pub struct Closed;

impl Fanout {
    /// A fanout over these senders, for good.
    pub fn new(outputs: Vec<mpsc::Sender<Chunk>>) -> Self {
        Self::retargetable(outputs).0
    }

    /// A fanout over these senders, and the handle that can replace them while it runs.
    pub fn retargetable(outputs: Vec<mpsc::Sender<Chunk>>) -> (Self, FanoutTargets) {
        let (tx, rx) = watch::channel(outputs.into());
        let fanout = Self {
            outputs: rx,
            tap: None,
        };
        (fanout, FanoutTargets { tx })
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
        // Clone the Arc and release the watch's lock before waiting on any channel.
        let outputs = Outputs::clone(&self.outputs.borrow());
        let n = outputs.len();
        if n == 0 {
            // A component nobody reads from: its data is settled as delivered to nobody.
            chunk.ack.delivered();
            return Ok(());
        }
        let mut chunk = Some(chunk);
        let mut delivered = 0;
        for (i, tx) in outputs.iter().enumerate() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{AckToken, Event, LabelSet};

    fn chunk(line: &'static str) -> Chunk {
        Chunk {
            events: vec![Event::new(
                0,
                bytes::Bytes::from_static(line.as_bytes()),
                LabelSet::new([("job", "t")]),
            )],
            ack: AckToken::untracked(),
        }
    }

    #[tokio::test]
    async fn retargeting_moves_later_chunks_and_closes_the_old_channel_while_idle() {
        let (old_tx, mut old_rx) = mpsc::channel(4);
        let (new_tx, mut new_rx) = mpsc::channel(4);
        let (mut fanout, targets) = Fanout::retargetable(vec![old_tx]);
        fanout.send(chunk("a")).await.unwrap();
        targets.set(vec![new_tx]);
        // The fanout is idle and still alive, yet the old channel has closed after its chunk.
        assert_eq!(old_rx.recv().await.unwrap().events[0].line[..], b"a"[..]);
        assert!(old_rx.recv().await.is_none());
        fanout.send(chunk("b")).await.unwrap();
        assert_eq!(new_rx.recv().await.unwrap().events[0].line[..], b"b"[..]);
        // Dropping the handle keeps the fanout's last targets.
        drop(targets);
        fanout.send(chunk("c")).await.unwrap();
        assert_eq!(new_rx.recv().await.unwrap().events[0].line[..], b"c"[..]);
        drop(fanout);
        assert!(new_rx.recv().await.is_none());
    }
}
