//! What every component is given when it is built.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::pipeline::LedgerWatch;
use crate::pipeline::tap::TapHub;
use crate::telemetry::{Health, Metrics};

/// The shared services a component needs: its id, telemetry, readiness, the shutdown signal
/// and where it may keep state.
#[derive(Clone)]
pub struct ComponentContext {
    /// The component's id from the config (`[sources.<id>]`).
    pub id: Arc<str>,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
    /// The agent's readiness.
    pub health: Arc<Health>,
    /// Cancelled when the agent is asked to stop. Sources stop reading; sinks flush and return
    /// once their input closes.
    pub shutdown: CancellationToken,
    /// Cancelled once every sink has returned after a shutdown, i.e. every acknowledgement
    /// that will ever come has come. Checkpoint writers make their final write on it.
    pub drained: CancellationToken,
    /// The component's own state directory, `<data_dir>/<id>` (not yet created).
    pub data_dir: PathBuf,
    /// A source's ledgers report settlements here; its checkpoint writer listens.
    pub acks: LedgerWatch,
    /// Where every component's output can be watched (`logship tap`).
    pub tap: Arc<TapHub>,
}

impl ComponentContext {
    /// A context for tests and examples: fresh metrics, a ready health, and `data_dir`.
    pub fn for_test(id: &str, data_dir: impl Into<PathBuf>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(metrics.ready.clone()));
        let id: Arc<str> = Arc::from(id);
        Self {
            acks: metrics.ledger_watch(&id),
            id,
            metrics,
            health,
            shutdown: CancellationToken::new(),
            drained: CancellationToken::new(),
            data_dir: data_dir.into(),
            tap: Arc::new(TapHub::new()),
        }
    }

    /// The context of component `id`: the shared services of `self`, its own state directory
    /// under `data_dir`, and its own acknowledgement watch. `shutdown` and `drained` are
    /// children of this context's, so the component can be stopped alone (a reload).
    pub fn for_component(&self, id: &str, data_dir: &std::path::Path) -> Self {
        let id: Arc<str> = Arc::from(id);
        Self {
            acks: self.metrics.ledger_watch(&id),
            data_dir: data_dir.join(&*id),
            shutdown: self.shutdown.child_token(),
            id,
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            drained: self.drained.child_token(),
            tap: self.tap.clone(),
        }
    }
}
