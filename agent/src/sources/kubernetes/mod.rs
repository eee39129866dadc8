//! The `kubernetes_logs` source: every pod's logs on this node, with pod metadata.
//!
//! It is the file source over the kubelet's `/var/log/pods` tree (CRI framing, partial lines
//! joined, rotation followed, checkpoints) plus a [`PodCache`] that a watch of this node's pods
//! keeps up to date ([`watch`]). The cache is the file server's [`Enricher`]: it skips excluded
//! namespaces and pods, lets a new pod's files wait a bounded time for its metadata, and gives
//! each file its pod's mapped labels and metadata. Path labels (`namespace`, `pod`,
//! `container`, `stream`) never depend on the API.
//!
//! [`Enricher`]: crate::sources::file::Enricher

pub mod pods;
pub mod watch;

use std::sync::Arc;

use logship_config::schema::KubernetesLogsSourceConfig;

pub use pods::PodCache;

use super::file::{CheckpointDoc, FileSource, FileSourceError};
use super::harness::Source;
use crate::checkpoints::Checkpointing;
use crate::context::ComponentContext;
use crate::pipeline::Fanout;

/// A configured `kubernetes_logs` source, ready to run.
pub struct KubernetesLogsSource {
    files: FileSource,
    cache: Arc<PodCache>,
    watch: Option<watch::WatchSettings>,
    ctx: ComponentContext,
}

impl KubernetesLogsSource {
    /// Checks the config and loads the checkpoint.
    pub fn new(
        config: &KubernetesLogsSourceConfig,
        ctx: ComponentContext,
    ) -> Result<Self, FileSourceError> {
        let cache = Arc::new(PodCache::new(config));
        let files =
            FileSource::new(&config.file_config(), ctx.clone())?.with_enricher(cache.clone());
        let watch = match (&config.node_name, config.metadata) {
            (Some(node), true) => Some(watch::WatchSettings {
                node_name: node.clone(),
                kubeconfig: config.kubeconfig.clone(),
            }),
            _ => None,
        };
        Ok(Self {
            files,
            cache,
            watch,
            ctx,
        })
    }
}

impl Source for KubernetesLogsSource {
    type Checkpoint = CheckpointDoc;
    type Error = FileSourceError;

    fn checkpointing(&self) -> Option<Checkpointing<CheckpointDoc>> {
        self.files.checkpointing()
    }

    /// Watches pods (if configured) and tails their files until `ctx.shutdown`.
    async fn read(self, out: Fanout) -> Result<(), FileSourceError> {
        let watch = self.watch.map(|settings| {
            tokio::spawn(watch::run(self.cache.clone(), settings, self.ctx.clone()))
        });
        let result = self.files.read(out).await;
        if let Some(task) = watch {
            task.abort();
        }
        result
    }
}
