//! Sinks: components that deliver chunks and settle their acknowledgements.
//!
//! Every sink has the same shape: `new(config, ctx)` builds it (the Loki sink can fail, with a
//! typed error), and `run(self, input)` consumes its bounded input channel until it closes,
//! settling each chunk's token once the chunk is safe. [`build`] does both from a config.

pub mod blackhole;
pub mod console;
pub mod loki;

pub use blackhole::BlackholeSink;
pub use console::ConsoleSink;
pub use loki::{LokiSink, LokiSinkError};

use std::future::Future;
use std::pin::Pin;

use logship_config::schema::SinkConfig;
use tokio::sync::mpsc;

use crate::context::ComponentContext;
use crate::pipeline::Chunk;

/// A sink's run, ready to spawn: it ends once its input has closed and everything it took
/// is answered for.
pub type SinkTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Builds the sink `config` describes, reading from `input`.
pub fn build(
    config: &SinkConfig,
    ctx: ComponentContext,
    input: mpsc::Receiver<Chunk>,
) -> Result<SinkTask, LokiSinkError> {
    Ok(match config {
        SinkConfig::Loki(c) => Box::pin(LokiSink::new(c, ctx)?.run(input)),
        SinkConfig::Console(c) => Box::pin(ConsoleSink::new(c, ctx).run(input)),
        SinkConfig::Blackhole(c) => Box::pin(BlackholeSink::new(c, ctx).run(input)),
    })
}
