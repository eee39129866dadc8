//! A [`Chunk`]: the batch of events that moves between components with its acknowledgement.

use super::{AckToken, Event};

/// A batch of events moving through the pipeline with one acknowledgement token.
///
/// Sources emit chunks of hundreds to thousands of lines; every channel carries chunks, so the
/// per-line cost of moving data between tasks is near zero. A chunk may end up with no events
/// (a transform dropped them all); it still travels to the sinks so that its token is settled.
#[derive(Debug)]
pub struct Chunk {
    /// The lines, in the order they were read.
    pub events: Vec<Event>,
    /// Settled by the sink once every event is delivered; see [`AckLedger`](super::AckLedger).
    pub ack: AckToken,
}

impl Chunk {
    /// Total bytes of the lines in this chunk.
    pub fn line_bytes(&self) -> usize {
        self.events.iter().map(|e| e.line.len()).sum()
    }
}
