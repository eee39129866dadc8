//! Sinks: components that deliver chunks and settle their acknowledgements.
//!
//! Every sink has the same shape: `new(config, ctx)` builds it (the Loki sink can fail, with a
//! typed error), and `run(self, input)` consumes its bounded input channel until it closes,
//! settling each chunk's token once the chunk is safe.

pub mod blackhole;
pub mod console;
pub mod loki;

pub use blackhole::BlackholeSink;
pub use console::ConsoleSink;
pub use loki::{LokiSink, LokiSinkError};
