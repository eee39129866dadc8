//! The `docker` source: follows container output through the Docker API.
//!
//! Every running container that passes the filters, and every one that starts later, is
//! followed with the logs API (`follow`, `timestamps`, stdout and stderr, TTY aware). Lines
//! are labelled from the container's attributes ([`metadata`]), Docker's 16 KiB pieces are
//! joined ([`assembler`]), and each container's position (a timestamp with nanosecond
//! precision plus how many lines at exactly that timestamp, per stream — [`checkpoint`]) is
//! checkpointed to `<data_dir>/containers.json` only once Loki acknowledged the lines. After
//! a restart of the agent, a restart of the container or a restart of dockerd, reading
//! resumes from there: nothing lost, nothing shipped twice but what was in flight.
//!
//! Layout: [`client`] connects; [`discovery`] lists, watches events and filters;
//! [`supervisor`] owns the connection and the followed containers (reconnecting with
//! backoff); [`follower`] reads one container into chunks; [`frame`] splits one API item;
//! [`self_id`] recognises the agent's own container. What a container is called and how that
//! becomes labels lives in [`crate::containers`], shared with the file source's
//! `decoder = "docker"`.
//!
//! TTY containers have one stream; its lines carry `stream="stdout"`, as Docker's json-file
//! driver records them, so the API path and the file path agree.

mod assembler;
mod checkpoint;
mod client;
mod discovery;
mod follower;
mod frame;
mod logs_stream;
mod self_id;
mod supervisor;

#[cfg(test)]
mod live_tests;

use std::time::Duration;

use logship_config::schema::DockerSourceConfig;
use tokio::sync::mpsc;

use self::assembler::MultilineSpec;
use self::checkpoint::{CHECKPOINT_FILE, CheckpointDoc, LedgerRegistry};
use self::discovery::ContainerFilter;
use self::supervisor::{Supervisor, SupervisorConfig};
use super::harness::Source;
use crate::checkpoints::{CheckpointError, CheckpointFile, Checkpointing, Snapshot, load_or_reset};
use crate::containers::{LabelPlan, UnknownAttribute};
use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Fanout};

pub use self::checkpoint::CheckpointDoc as DockerCheckpoint;

/// Chunks between the followers and the source's output. Small: a full downstream should
/// stop the followers quickly, not fill a buffer.
const CHANNEL_CAPACITY: usize = 4;

/// A docker source could not be built, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DockerSourceError {
    /// `docker_host` (or `DOCKER_HOST`) uses a scheme this agent cannot speak.
    #[error(
        "docker_host {0:?} is not supported: use unix:///path/to/docker.sock, tcp://host:port or http://host:port"
    )]
    UnsupportedHost(String),
    /// `labels` or `structured_metadata` names something that is not a container attribute.
    #[error("docker source labels/structured_metadata: {0}")]
    Attribute(#[from] UnknownAttribute),
    /// An `include_labels` entry has no key.
    #[error("include_labels entry {0:?} has an empty label key")]
    EmptyLabelFilter(String),
    /// `multiline.start_pattern` is not a valid regex.
    #[error("multiline.start_pattern {0:?} is not a valid regex: {1}")]
    Multiline(String, String),
    /// The checkpoint file could not be read.
    #[error("docker source checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The task that follows containers died.
    #[error("the container supervisor failed: {0}")]
    Supervisor(String),
}

/// The `docker` source, built and ready to run.
pub struct DockerSource {
    ctx: ComponentContext,
    cfg: SupervisorConfig,
    checkpoint: CheckpointFile,
    ledgers: LedgerRegistry,
}

impl std::fmt::Debug for DockerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerSource")
            .field("id", &self.ctx.id)
            .field("host", &self.cfg.host)
            .finish_non_exhaustive()
    }
}

impl DockerSource {
    /// Checks the config and loads the checkpoint; connects only in [`DockerSource::run`].
    pub fn new(
        config: &DockerSourceConfig,
        ctx: ComponentContext,
    ) -> Result<Self, DockerSourceError> {
        let env_host = std::env::var("DOCKER_HOST").ok();
        let host = client::resolve_host(config.docker_host.as_deref(), env_host.as_deref());
        if !client::supported_host(&host) {
            return Err(DockerSourceError::UnsupportedHost(host));
        }
        if let Some(bad) = config
            .include_labels
            .iter()
            .find(|l| l.split('=').next().is_none_or(|k| k.trim().is_empty()))
        {
            return Err(DockerSourceError::EmptyLabelFilter(bad.clone()));
        }
        let plan = LabelPlan::new(
            &config.labels,
            &config.structured_metadata,
            &config.static_labels,
        )?;
        let multiline = match &config.multiline {
            None => None,
            Some(m) => {
                let start = regex::bytes::Regex::new(&m.start_pattern).map_err(|e| {
                    DockerSourceError::Multiline(m.start_pattern.clone(), e.to_string())
                })?;
                let spec = MultilineSpec {
                    start,
                    max_lines: m.max_lines,
                };
                Some((spec, Duration::from_millis(m.timeout_ms.max(1))))
            }
        };
        let checkpoint = CheckpointFile::new(&ctx.data_dir, CHECKPOINT_FILE);
        let doc: CheckpointDoc = load_or_reset(&checkpoint)?.unwrap_or_default();
        let self_id = self_id::detect();
        if let Some(s) = &self_id {
            tracing::info!(component = %ctx.id, own_container = ?s, "running in a container; it is never followed");
        }
        Ok(Self {
            cfg: SupervisorConfig {
                host,
                filter: ContainerFilter::new(config, self_id),
                plan,
                max_line_bytes: config.max_line_bytes,
                multiline,
            },
            checkpoint,
            ledgers: LedgerRegistry::from_doc(&doc, ctx.acks.clone()),
            ctx,
        })
    }
}

impl Source for DockerSource {
    type Checkpoint = CheckpointDoc;
    type Error = DockerSourceError;

    fn checkpointing(&self) -> Option<Checkpointing<CheckpointDoc>> {
        let registry = self.ledgers.clone();
        Some(Checkpointing {
            file: self.checkpoint.clone(),
            snapshot: Box::new(move || Snapshot {
                value: registry.snapshot(),
                in_flight: registry.in_flight(),
            }),
        })
    }

    /// Runs until `ctx.shutdown` is cancelled; emits chunks via `out.send(chunk).await`
    /// (that await is the backpressure). A missing or restarting daemon is retried with
    /// backoff, never returned as an error.
    async fn read(self, mut out: Fanout) -> Result<(), Self::Error> {
        let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CAPACITY);
        let comp = self.ctx.metrics.component(&self.ctx.id);
        // The supervisor stops on shutdown, or when nobody downstream is left.
        let mut sup_ctx = self.ctx.clone();
        sup_ctx.shutdown = self.ctx.shutdown.child_token();
        let stop = sup_ctx.shutdown.clone();
        let supervisor = Supervisor::new(sup_ctx, self.cfg, self.ledgers, tx);
        let task = tokio::spawn(supervisor.run());
        while let Some(chunk) = rx.recv().await {
            let (n, bytes) = (chunk.events.len() as u64, chunk.line_bytes() as u64);
            if out.send(chunk).await.is_err() {
                tracing::warn!(component = %self.ctx.id, "every downstream component stopped; the docker source stops reading");
                stop.cancel();
                break;
            }
            comp.sent_events.inc_by(n);
            comp.sent_bytes.inc_by(bytes);
        }
        // Followers may still be flushing; let them finish into the void.
        drop(rx);
        task.await
            .map_err(|e| DockerSourceError::Supervisor(e.to_string()))
    }
}
