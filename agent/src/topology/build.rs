//! Turning a config into running components connected by bounded channels.

use std::collections::HashMap;

use logship_config::{ComponentKind, LoadedConfig};
use tokio::sync::mpsc;

use super::Running;
use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Fanout};
use crate::sinks::{self, SinkTask};
use crate::sources::{self, SourceTask};
use crate::transforms;

/// Chunks a component's input channel holds. With ~1000 lines per chunk this keeps a few
/// thousand lines between two components: enough to keep both busy, little enough that a
/// stalled sink stops its sources within a second and memory stays flat.
const CHANNEL_CHUNKS: usize = 4;

/// A component failed to build; nothing has started.
#[derive(Debug, thiserror::Error)]
#[error("component {id:?}: {message}")]
pub struct BuildError {
    /// The component's id.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

fn err(id: &str, e: impl std::fmt::Display) -> BuildError {
    BuildError {
        id: id.to_owned(),
        message: e.to_string(),
    }
}

/// Builds every component of `loaded` and starts it, wiring each component's output to the
/// readers its [`Graph`](logship_config::Graph) names. `base` supplies the shared services;
/// each component gets its own id, acknowledgement watch and state directory under
/// `data_dir`. All or nothing: a component that fails to build stops start-up before anything
/// runs.
pub fn start(loaded: &LoadedConfig, base: &ComponentContext) -> Result<Running, BuildError> {
    let config = &loaded.config;
    let graph = &loaded.graph;
    let order = graph.topological_order();

    // One input channel per transform and sink.
    let mut senders: HashMap<&str, mpsc::Sender<Chunk>> = HashMap::new();
    let mut receivers: HashMap<&str, mpsc::Receiver<Chunk>> = HashMap::new();
    for c in order.iter().filter(|c| c.kind != ComponentKind::Source) {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        senders.insert(&c.id, tx);
        receivers.insert(&c.id, rx);
    }
    let fanout = |id: &str| {
        Fanout::new(
            graph
                .outputs_of(id)
                .iter()
                .filter_map(|reader| senders.get(reader.as_str()).cloned())
                .collect(),
        )
        .with_tap(base.tap.point(id))
    };
    let ctx_for = |id: &str| base.for_component(id, &config.data_dir);

    let mut sinks: Vec<(String, SinkTask)> = Vec::new();
    let mut transforms = Vec::new();
    let mut sources: Vec<(String, SourceTask)> = Vec::new();
    for c in &order {
        let id = c.id.as_str();
        match c.kind {
            ComponentKind::Source => {
                let source = config
                    .sources
                    .get(id)
                    .ok_or_else(|| err(id, "not in the config"))?;
                let task =
                    sources::build(source, ctx_for(id), fanout(id)).map_err(|e| err(id, e))?;
                sources.push((id.to_owned(), task));
            }
            ComponentKind::Transform => {
                let t = config
                    .transforms
                    .get(id)
                    .ok_or_else(|| err(id, "not in the config"))?;
                let rx = receivers
                    .remove(id)
                    .ok_or_else(|| err(id, "no input channel"))?;
                let transform = transforms::build(t, &ctx_for(id)).map_err(|e| err(id, e))?;
                transforms.push((id.to_owned(), transform.run(rx, fanout(id))));
            }
            ComponentKind::Sink => {
                let s = config
                    .sinks
                    .get(id)
                    .ok_or_else(|| err(id, "not in the config"))?;
                let rx = receivers
                    .remove(id)
                    .ok_or_else(|| err(id, "no input channel"))?;
                let task = sinks::build(s, ctx_for(id), rx).map_err(|e| err(id, e))?;
                sinks.push((id.to_owned(), task));
            }
        }
    }
    // Only the fanouts hold senders now, so a channel closes when its producers stop.
    drop(senders);

    let mut running = Running::new(base.clone());
    for (id, task) in sinks {
        running.spawn_sink(id, task);
    }
    for (id, task) in transforms {
        running.spawn_transform(id, task);
    }
    for (id, task) in sources {
        running.spawn_source(id, task);
    }
    Ok(running)
}
