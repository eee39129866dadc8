//! Wires configured components together with bounded channels, runs them, and stops them in
//! order: sources first, then (once their channels drain) transforms and sinks, and only then
//! the sources' final checkpoint writes.
//!
//! [`start`] builds everything from a loaded config (all or nothing) and spawns it;
//! [`run_until`] waits for a stop signal or for every source to end, shuts down in order, and
//! says whether any source failed.

mod build;

pub use build::{BuildError, start};

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};

use crate::context::ComponentContext;
use crate::sources::SourceExit;

/// How long sinks may take to flush after the sources stopped before the agent exits anyway
/// (what they did not deliver is not checkpointed and is read again next time).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// How long the sources' final checkpoint writes may take once the sinks are done.
const FINAL_CHECKPOINT_GRACE: Duration = Duration::from_secs(5);

/// The running pipeline's tasks, grouped so they can be stopped in order.
pub struct Running {
    base: ComponentContext,
    sources: JoinSet<(String, SourceExit)>,
    transforms: JoinSet<()>,
    sinks: JoinSet<()>,
    /// Which component each transform and sink task runs, to name it if it panics.
    names: HashMap<Id, String>,
}

/// How the pipeline's run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Sources that stopped with an error: `(id, reason)`.
    pub failed_sources: Vec<(String, String)>,
}

impl RunOutcome {
    /// True when every source ended as asked (or its input ended).
    pub fn is_success(&self) -> bool {
        self.failed_sources.is_empty()
    }
}

impl Running {
    fn new(base: ComponentContext) -> Self {
        Self {
            base,
            sources: JoinSet::new(),
            transforms: JoinSet::new(),
            sinks: JoinSet::new(),
            names: HashMap::new(),
        }
    }

    fn spawn_source(
        &mut self,
        id: String,
        task: impl Future<Output = SourceExit> + Send + 'static,
    ) {
        self.sources.spawn(async move { (id, task.await) });
    }

    fn spawn_transform(&mut self, id: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.transforms.spawn(task);
        self.names.insert(handle.id(), id);
    }

    fn spawn_sink(&mut self, id: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.sinks.spawn(task);
        self.names.insert(handle.id(), id);
    }

    /// Records how a source ended.
    fn source_ended(
        &self,
        joined: Result<(String, SourceExit), JoinError>,
        outcome: &mut RunOutcome,
    ) {
        match joined {
            Ok((_, SourceExit::Finished)) => {}
            Ok((id, SourceExit::Failed(reason))) => outcome.failed_sources.push((id, reason)),
            // The harness catches the source's own panics; this is the harness itself.
            Err(e) => outcome
                .failed_sources
                .push(("(unknown source)".to_owned(), e.to_string())),
        }
    }

    /// Reports a transform or sink task that panicked.
    fn task_ended(&self, joined: Result<(), JoinError>) {
        if let Err(e) = joined
            && e.is_panic()
        {
            let id = self.names.get(&e.id()).map_or("(unknown)", String::as_str);
            tracing::error!(component = %id, error = %e, "component task panicked; its chunks are re-read after a restart");
            self.base
                .metrics
                .component_errors
                .with_label_values(&[id])
                .inc();
            self.base
                .health
                .set_problem(id, format!("task panicked: {e}"));
        }
    }
}

/// Runs until `stop` resolves or every source has ended on its own (stdin closed, or failed),
/// then shuts down in order. Returns what `stop` resolved to, or `None` when the sources
/// ended first.
pub async fn run_until<T>(
    mut running: Running,
    stop: impl Future<Output = T>,
) -> (RunOutcome, Option<T>) {
    let mut outcome = RunOutcome::default();
    let mut stopped_by = None;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            why = &mut stop => {
                tracing::info!("stopping the pipeline: flushing sinks");
                stopped_by = Some(why);
                break;
            }
            joined = running.sources.join_next() => match joined {
                Some(joined) => running.source_ended(joined, &mut outcome),
                None => {
                    tracing::info!("every source has ended; flushing sinks");
                    break;
                }
            },
        }
    }
    running.base.shutdown.cancel();
    let mut transforms = std::mem::take(&mut running.transforms);
    let mut sinks = std::mem::take(&mut running.sinks);
    let drain = async {
        while let Some(joined) = transforms.join_next().await {
            running.task_ended(joined);
        }
        while let Some(joined) = sinks.join_next().await {
            running.task_ended(joined);
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "sinks did not finish within {SHUTDOWN_GRACE:?}; undelivered lines will be read again at the next start"
        );
        sinks.abort_all();
        transforms.abort_all();
    }
    running.base.drained.cancel();
    let finals = async {
        while let Some(joined) = running.sources.join_next().await {
            running.source_ended(joined, &mut outcome);
        }
    };
    if tokio::time::timeout(FINAL_CHECKPOINT_GRACE, finals)
        .await
        .is_err()
    {
        tracing::warn!("final checkpoint writes did not finish; the next start re-sends a little");
        running.sources.abort_all();
    }
    (outcome, stopped_by)
}
