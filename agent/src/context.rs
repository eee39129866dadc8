//! What every component is given when it is built.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

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
}

impl ComponentContext {
    /// A context for tests and examples: fresh metrics, a ready health, and `data_dir`.
    pub fn for_test(id: &str, data_dir: impl Into<PathBuf>) -> Self {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(metrics.ready.clone()));
        Self {
            id: Arc::from(id),
            metrics,
            health,
            shutdown: CancellationToken::new(),
            drained: CancellationToken::new(),
            data_dir: data_dir.into(),
        }
    }
}
