//! The file source: tails files matched by globs, follows rotation, and checkpoints only what
//! the sinks acknowledged.
//!
//! One thread per source (the *file server*) owns every open file. It learns of changes from
//! inotify, reads only files that changed, and hands chunks to the pipeline; sending blocks
//! when the pipeline is full, which stops reading: that is the backpressure. A quiet file
//! costs a descriptor and a few hundred bytes, no buffer. The pieces:
//!
//! - [`discovery`]: the include/exclude globs (the same [`FileGlob`] `validate` checks) and
//!   the walk that finds matching files;
//! - [`watcher`]: the inotify watch that records which paths changed;
//! - [`fingerprint`]: what a file's start looks like (first-line hash, head signature);
//! - [`registry`]: the known content streams and which one a found file is (identity is
//!   device + inode; the fingerprint only recognises copytruncate copies and inode reuse);
//! - [`server`]: the loop: events, timers, safety looks and rescans decide which files to
//!   poll; `open_files_limit`; [`open`]: opening a found file; [`labels`]: its labels;
//! - [`tailer`]: one open file: reading, truncation, rotation and deletion;
//! - [`enrich`]: the hook through which a source adds what it knows about a file beyond its
//!   path (the `kubernetes_logs` source: the pod's metadata);
//! - [`assemble`]: docker/CRI framing, partial lines, multiline records → events;
//! - the checkpoint: `<data_dir>/<id>/checkpoints.json`, each stream's acknowledged offset.
//!
//! [`FileGlob`]: logship_config::globs::FileGlob

mod assemble;
mod discovery;
mod enrich;
mod fingerprint;
mod labels;
mod open;
mod registry;
mod server;
mod tailer;
mod watcher;

use std::sync::{Arc, Mutex};

use logship_config::schema::FileSourceConfig;
use serde::{Deserialize, Serialize};

pub use discovery::GlobError;
pub use enrich::{Admission, Enricher, Extras};

use super::harness::Source;
use crate::checkpoints::{CheckpointError, CheckpointFile, Checkpointing, Snapshot, load_or_reset};
use crate::context::ComponentContext;
use crate::pipeline::Fanout;
use registry::{Registry, StoredStream};

/// The file source could not start.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    /// An include or exclude glob does not parse.
    #[error(transparent)]
    Glob(#[from] GlobError),
    /// The multiline start pattern does not compile.
    #[error("invalid multiline start_pattern: {0}")]
    Multiline(#[from] regex::Error),
    /// The state directory cannot be created or the checkpoint cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The state directory cannot be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The reading thread could not be started or died.
    #[error("file server thread failed: {0}")]
    Thread(String),
}

/// The checkpoint file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointDoc {
    version: u32,
    streams: Vec<StoredStream>,
}

/// A configured file source, ready to run.
pub struct FileSource {
    config: FileSourceConfig,
    ctx: ComponentContext,
    registry: Arc<Mutex<Registry>>,
    checkpoint: CheckpointFile,
    enricher: Option<Arc<dyn Enricher>>,
}

impl FileSource {
    /// Checks the config and loads the checkpoint.
    pub fn new(config: &FileSourceConfig, ctx: ComponentContext) -> Result<Self, FileSourceError> {
        discovery::Globs::new(&config.include, &config.exclude)?;
        if let Some(m) = &config.multiline {
            assemble::MultilineSpec::new(m)?;
        }
        std::fs::create_dir_all(&ctx.data_dir).map_err(|source| FileSourceError::DataDir {
            path: ctx.data_dir.clone(),
            source,
        })?;
        let checkpoint = CheckpointFile::new(&ctx.data_dir, "checkpoints.json");
        let stored = load_or_reset::<CheckpointDoc>(&checkpoint)?
            .map(|doc| doc.streams)
            .unwrap_or_default();
        Ok(Self {
            config: config.clone(),
            registry: Arc::new(Mutex::new(Registry::from_checkpoint(
                stored,
                ctx.acks.clone(),
            ))),
            ctx,
            checkpoint,
            enricher: None,
        })
    }

    /// Adds an [`Enricher`]: it decides which files are read and adds labels and metadata.
    pub fn with_enricher(mut self, enricher: Arc<dyn Enricher>) -> Self {
        self.enricher = Some(enricher);
        self
    }
}

impl Source for FileSource {
    type Checkpoint = CheckpointDoc;
    type Error = FileSourceError;

    fn checkpointing(&self) -> Option<Checkpointing<CheckpointDoc>> {
        let registry = self.registry.clone();
        let lag = self
            .ctx
            .metrics
            .checkpoint_lag_bytes
            .with_label_values(&[&self.ctx.id]);
        Some(Checkpointing {
            file: self.checkpoint.clone(),
            snapshot: Box::new(move || {
                let now = registry
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .snapshot();
                lag.set(i64::try_from(now.lag_bytes).unwrap_or(i64::MAX));
                Snapshot {
                    value: CheckpointDoc {
                        version: 1,
                        streams: now.streams,
                    },
                    in_flight: now.in_flight,
                }
            }),
        })
    }

    /// Tails files until `ctx.shutdown` is cancelled.
    async fn read(self, out: Fanout) -> Result<(), FileSourceError> {
        let server = server::FileServer::new(
            &self.config,
            self.ctx.clone(),
            self.registry,
            self.enricher,
            out,
        )?;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name(format!("file-{}", self.ctx.id))
            .spawn(move || {
                server.run(&handle);
                let _ = done_tx.send(());
            })
            .map_err(|e| FileSourceError::Thread(e.to_string()))?;
        done_rx
            .await
            .map_err(|_| FileSourceError::Thread("the file server thread panicked".into()))
    }
}
