//! The unit of data: an [`Event`] is one log line with its labels and structured metadata.

use bytes::Bytes;
use smallvec::SmallVec;

use super::{LabelSet, MetadataName};

/// One log line on its way to a sink.
///
/// The line is the exact bytes the service wrote (a slice of the block it was read in, not a
/// copy). Labels are interned and shared by every event of the same stream.
#[derive(Clone, Debug)]
pub struct Event {
    /// Unix time in nanoseconds: from the line itself when a transform found it, otherwise
    /// the time the line was read.
    pub timestamp_ns: i64,
    /// The original line, without its newline.
    pub line: Bytes,
    /// The stream labels (source labels plus extracted ones).
    pub labels: LabelSet,
    /// Loki structured metadata, such as `trace_id`.
    pub metadata: Metadata,
}

/// Structured metadata pairs: a name and a value. Values are usually slices of the line itself,
/// so attaching them allocates nothing.
pub type Metadata = SmallVec<[(MetadataName, Bytes); 2]>;

impl Event {
    /// An event with the given line and labels, stamped with `timestamp_ns`.
    pub fn new(timestamp_ns: i64, line: Bytes, labels: LabelSet) -> Self {
        Self {
            timestamp_ns,
            line,
            labels,
            metadata: Metadata::new(),
        }
    }
}
