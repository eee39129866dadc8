//! Wires configured components together with bounded channels, runs them, changes them while
//! they run, and stops them in order.
//!
//! - [`start`] builds every component of a loaded config (all or nothing) and spawns it.
//! - [`Running::run_until`] waits for a stop or reload request, or for every source to end.
//! - [`Running::reload`] applies a new config by difference (see [`Plan`]): unchanged
//!   components keep running with their state (open files, positions, caches, batches);
//!   changed, added and removed ones are started or drained in order.
//! - [`Running::shut_down`] stops everything in order: sources first, then (once their
//!   channels drain) transforms and sinks, and only then the sources' final checkpoint writes.
//!
//! # How a running pipeline changes
//!
//! The topology keeps, for each running transform and sink, a sender of its input channel,
//! and for each source and transform, the [`FanoutTargets`] of its output. A component is
//! retired by dropping both: once every fanout that sent to it has been pointed elsewhere and
//! has finished the send under way, its channel closes, it drains what is buffered exactly as
//! at shutdown, and its task ends. Nothing it held is lost: a retired sink goes on delivering
//! (and retrying) until it has answered for every chunk.
//!
//! A source is retired through its own stop token. The new instance of a changed source
//! starts only once the old one has ended, i.e. once everything it read was delivered and its
//! final checkpoint written, so it reads on from exactly where the old one stopped: nothing
//! lost, nothing sent twice. While Loki is down that takes until Loki is back; meanwhile the
//! lines wait on disk, where they would wait anyway, and the rest of the pipeline runs on.

mod build;
mod plan;
mod reload;

pub use build::{BuildError, start};
pub use plan::Plan;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use logship_config::LoadedConfig;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::context::ComponentContext;
use crate::pipeline::{Chunk, FanoutTargets};
use crate::sources::{SourceExit, SourceTask};

/// How long sinks may take to flush after the sources stopped before the agent exits anyway
/// (what they did not deliver is not checkpointed and is read again next time).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// How long the sources' final checkpoint writes may take once the sinks are done.
const FINAL_CHECKPOINT_GRACE: Duration = Duration::from_secs(5);

/// The running pipeline: its tasks, grouped so they can be stopped in order, and the handles
/// that let a reload change it.
pub struct Running {
    base: ComponentContext,
    /// A sender of the input channel of each running transform and sink, for the fanouts a
    /// reload builds. Dropped when the component is retired or the pipeline stops.
    inputs: HashMap<String, mpsc::Sender<Chunk>>,
    /// Where each running source and transform sends.
    outputs: HashMap<String, FanoutTargets>,
    /// The running instance of each source.
    sources: HashMap<String, SourceHandle>,
    source_tasks: JoinSet<(String, SourceExit)>,
    transforms: JoinSet<()>,
    sinks: JoinSet<()>,
    /// Which component each task runs, to name it when it ends.
    names: HashMap<Id, String>,
    /// The config running now.
    config: LoadedConfig,
    /// Replaced sources whose new instance waits for the old one to end.
    pending: HashSet<String>,
    /// One task per pending source: it ends, giving the id, when the old instance has.
    successors: JoinSet<String>,
    outcome: RunOutcome,
}

/// What stops one running source instance, and says when it has.
struct SourceHandle {
    task: Id,
    /// Stops its reading.
    shutdown: CancellationToken,
    /// Cancelled when its task has ended (final checkpoint written).
    done: CancellationToken,
}

/// How the pipeline's run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Sources that stopped with an error and were not started again: `(id, reason)`.
    pub failed_sources: Vec<(String, String)>,
}

impl RunOutcome {
    /// True when every source ended as asked (or its input ended).
    pub fn is_success(&self) -> bool {
        self.failed_sources.is_empty()
    }
}

impl Running {
    fn new(base: ComponentContext, config: LoadedConfig) -> Self {
        Self {
            base,
            config,
            pending: HashSet::new(),
            successors: JoinSet::new(),
            inputs: HashMap::new(),
            outputs: HashMap::new(),
            sources: HashMap::new(),
            source_tasks: JoinSet::new(),
            transforms: JoinSet::new(),
            sinks: JoinSet::new(),
            names: HashMap::new(),
            outcome: RunOutcome::default(),
        }
    }

    /// Whether source `id` has a running instance.
    fn source_is_running(&self, id: &str) -> bool {
        self.sources.contains_key(id)
    }

    /// Spawns a built source whose context is `ctx`.
    fn spawn_source(&mut self, id: String, ctx: &ComponentContext, task: SourceTask) {
        let done = CancellationToken::new();
        let guard = done.clone().drop_guard();
        let name = id.clone();
        let handle = self.source_tasks.spawn(async move {
            let exit = task.await;
            drop(guard);
            (name, exit)
        });
        self.names.insert(handle.id(), id.clone());
        let source = SourceHandle {
            task: handle.id(),
            shutdown: ctx.shutdown.clone(),
            done,
        };
        self.sources.insert(id, source);
    }

    fn spawn_transform(&mut self, id: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.transforms.spawn(task);
        self.names.insert(handle.id(), id);
    }

    fn spawn_sink(&mut self, id: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.sinks.spawn(task);
        self.names.insert(handle.id(), id);
    }

    /// Records how a source task ended, and forgets it if it is the running instance.
    fn source_ended(&mut self, joined: Result<(Id, (String, SourceExit)), JoinError>) {
        let (task, exit) = match joined {
            Ok((task, (_, exit))) => (task, exit),
            // The harness catches the source's own panics; this is the harness itself.
            Err(e) => (e.id(), SourceExit::Failed(e.to_string())),
        };
        let id = self
            .names
            .remove(&task)
            .unwrap_or_else(|| "(unknown source)".to_owned());
        if self.sources.get(&id).is_some_and(|s| s.task == task) {
            self.sources.remove(&id);
            self.outputs.remove(&id);
        }
        if let SourceExit::Failed(reason) = exit {
            self.outcome.failed_sources.push((id, reason));
        }
    }

    /// Reports a transform or sink task that panicked, and forgets its name.
    fn task_ended(&mut self, joined: Result<Id, JoinError>) {
        let e = match joined {
            Ok(task) => {
                self.names.remove(&task);
                return;
            }
            Err(e) => e,
        };
        let id = self
            .names
            .remove(&e.id())
            .unwrap_or_else(|| "(unknown)".to_owned());
        if e.is_panic() {
            tracing::error!(component = %id, error = %e, "component task panicked; its chunks are re-read after a restart");
            self.base
                .metrics
                .component_errors
                .with_label_values(&[&id])
                .inc();
            self.base
                .health
                .set_problem(&id, format!("task panicked: {e}"));
        }
    }

    /// Runs until `stop` resolves or every source has ended on its own (stdin closed, or
    /// failed). Returns what `stop` resolved to, or `None` when the sources ended first. The
    /// pipeline keeps running either way: call [`reload`](Self::reload) and run on, or
    /// [`shut_down`](Self::shut_down).
    pub async fn run_until<T>(&mut self, stop: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                why = &mut stop => return Some(why),
                // With no source task left the sources have ended, unless a replaced one's
                // successor is about to start.
                joined = self.source_tasks.join_next_with_id(),
                    if !self.source_tasks.is_empty() || self.pending.is_empty() => match joined {
                    Some(joined) => self.source_ended(joined),
                    None => {
                        tracing::info!("every source has ended");
                        return None;
                    }
                },
                // Retired transforms and sinks end during the run; a live one only by a panic.
                Some(joined) = self.transforms.join_next_with_id(), if !self.transforms.is_empty() => {
                    self.task_ended(joined.map(|(id, ())| id));
                }
                Some(joined) = self.sinks.join_next_with_id(), if !self.sinks.is_empty() => {
                    self.task_ended(joined.map(|(id, ())| id));
                }
                Some(Ok(id)) = self.successors.join_next(), if !self.successors.is_empty() => {
                    self.start_successor(&id);
                }
            }
        }
    }

    /// Stops the pipeline in order and says whether any source failed: sources stop reading,
    /// transforms and sinks drain and flush (within [`SHUTDOWN_GRACE`]), then the sources
    /// write their final checkpoints.
    pub async fn shut_down(mut self) -> RunOutcome {
        tracing::info!("stopping the pipeline: flushing sinks");
        // Channels close as their producers stop only once the topology holds no sender.
        self.inputs.clear();
        self.outputs.clear();
        self.successors.abort_all();
        self.base.shutdown.cancel();
        let mut transforms = std::mem::take(&mut self.transforms);
        let mut sinks = std::mem::take(&mut self.sinks);
        let drain = async {
            while let Some(joined) = transforms.join_next_with_id().await {
                self.task_ended(joined.map(|(id, ())| id));
            }
            while let Some(joined) = sinks.join_next_with_id().await {
                self.task_ended(joined.map(|(id, ())| id));
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                "sinks did not finish within {SHUTDOWN_GRACE:?}; undelivered lines will be read again at the next start"
            );
            sinks.abort_all();
            transforms.abort_all();
        }
        self.base.drained.cancel();
        let mut tasks = std::mem::take(&mut self.source_tasks);
        let finals = async {
            while let Some(joined) = tasks.join_next_with_id().await {
                self.source_ended(joined);
            }
        };
        if tokio::time::timeout(FINAL_CHECKPOINT_GRACE, finals)
            .await
            .is_err()
        {
            tracing::warn!(
                "final checkpoint writes did not finish; the next start re-sends a little"
            );
            tasks.abort_all();
        }
        self.outcome
    }
}
