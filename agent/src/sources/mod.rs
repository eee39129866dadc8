//! Sources: components that read log lines and emit chunks.
//!
//! Every source has the same shape: `new(config, ctx)` checks the config and loads its
//! checkpoint, and it implements [`Source`]: `read(out)` reads until `ctx.shutdown` is
//! cancelled (or its input ends), sending chunks through its
//! [`Fanout`](crate::pipeline::Fanout). A source that can resume gives each chunk a token
//! from an [`AckLedger`](crate::pipeline::AckLedger) and says, through
//! [`Source::checkpointing`], how to snapshot the ledgers' committed cursors. The
//! [`harness`] runs every source the same way: checkpoint writer, shutdown order, failures.
//! [`build`] turns a source's config into its running harness.

pub mod docker;
pub mod file;
pub mod harness;
pub mod kubernetes;
pub mod stdin;

pub use docker::{DockerSource, DockerSourceError};
pub use file::{FileSource, FileSourceError};
pub use harness::{Source, SourceExit};
pub use kubernetes::KubernetesLogsSource;
pub use stdin::{StdinSource, StdinSourceError};

use std::future::Future;
use std::pin::Pin;

use logship_config::schema::SourceConfig;

use crate::context::ComponentContext;
use crate::pipeline::Fanout;

/// A source's run under its harness, ready to spawn.
pub type SourceTask = Pin<Box<dyn Future<Output = SourceExit> + Send>>;

/// A source could not be built; nothing has started.
#[derive(Debug, thiserror::Error)]
pub enum SourceBuildError {
    /// See [`FileSourceError`].
    #[error(transparent)]
    File(#[from] FileSourceError),
    /// See [`StdinSourceError`].
    #[error(transparent)]
    Stdin(#[from] StdinSourceError),
    /// See [`DockerSourceError`].
    #[error(transparent)]
    Docker(#[from] DockerSourceError),
}

/// Builds the source `config` describes and wraps it in its harness, sending into `out`.
pub fn build(
    config: &SourceConfig,
    ctx: ComponentContext,
    out: Fanout,
) -> Result<SourceTask, SourceBuildError> {
    Ok(match config {
        SourceConfig::File(c) => {
            let source = FileSource::new(c, ctx.clone())?;
            Box::pin(harness::run(source, ctx, out))
        }
        SourceConfig::Stdin(c) => {
            let source = StdinSource::new(c, ctx.clone())?;
            Box::pin(harness::run(source, ctx, out))
        }
        SourceConfig::Docker(c) => {
            let source = DockerSource::new(c, ctx.clone())?;
            Box::pin(harness::run(source, ctx, out))
        }
        SourceConfig::KubernetesLogs(c) => {
            let source = KubernetesLogsSource::new(c, ctx.clone())?;
            Box::pin(harness::run(source, ctx, out))
        }
    })
}
