//! The vocabulary every component shares: what moves through the pipeline and how its
//! delivery is acknowledged. Sources, transforms and sinks all sit above this module; nothing
//! here knows about any of them.
//!
//! - [`Event`]: one log line (the exact bytes), its timestamp, its [`LabelSet`] and its
//!   structured [`Metadata`].
//! - [`Chunk`]: a `Vec<Event>` plus one [`AckToken`]; the unit every channel carries.
//! - [`AckLedger`]: a reader's ordered record of chunks in flight; its committed cursor is the
//!   only thing a checkpoint may store. [`LedgerWatch`] wakes the checkpoint writer.
//! - [`Fanout`]: a component's output, one bounded channel per reader; its `send` waiting is
//!   the backpressure.

mod acks;
mod chunk;
mod event;
mod fanout;
mod labels;
mod metadata_name;
pub mod tap;

pub use acks::{AckLedger, AckToken, LedgerWatch};
pub use chunk::Chunk;
pub use event::{Event, Metadata};
pub use fanout::{Closed, Fanout, FanoutTargets};
pub use labels::LabelSet;
pub use metadata_name::MetadataName;
