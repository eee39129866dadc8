//! Turning (part of) a config into components connected by bounded channels, ready to spawn.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use logship_config::{ComponentKind, LoadedConfig};
use tokio::sync::mpsc;

use super::{Plan, Running};
use crate::context::ComponentContext;
use crate::pipeline::{Chunk, Fanout, FanoutTargets};
use crate::sinks::{self, SinkTask};
use crate::sources::{self, SourceTask};
use crate::transforms;

/// Chunks a component's input channel holds. With ~1000 lines per chunk this keeps a few
/// thousand lines between two components: enough to keep both busy, little enough that a
/// stalled sink stops its sources within a second and memory stays flat.
const CHANNEL_CHUNKS: usize = 4;

/// A component failed to build; nothing has started (or, in a reload, changed).
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

type TransformTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A built source, ready to spawn.
pub(super) struct BuiltSource {
    pub(super) ctx: ComponentContext,
    pub(super) task: SourceTask,
    pub(super) targets: FanoutTargets,
}

/// The components a [`Plan`] starts, built and wired but not running. Dropping it starts
/// nothing.
pub(super) struct Built {
    /// The input channels of the new transforms and sinks.
    inputs: HashMap<String, mpsc::Sender<Chunk>>,
    sinks: Vec<(String, SinkTask)>,
    transforms: Vec<(String, TransformTask, FanoutTargets)>,
    /// Added sources. A replaced source is only checked here: it is built again once its old
    /// instance has written its final checkpoint.
    sources: Vec<(String, BuiltSource)>,
}

/// Builds every component of `loaded` and starts it, wiring each component's output to the
/// readers its [`Graph`](logship_config::Graph) names. `base` supplies the shared services;
/// each component gets its own id, acknowledgement watch and state directory under
/// `data_dir`. All or nothing: a component that fails to build stops start-up before anything
/// runs.
pub fn start(loaded: &LoadedConfig, base: &ComponentContext) -> Result<Running, BuildError> {
    let mut running = Running::new(base.clone(), loaded.clone());
    let plan = Plan::new(None, loaded, |_| false);
    let built = running.build(&plan, loaded)?;
    running.spawn(built);
    Ok(running)
}

impl Running {
    /// Builds every component `plan` starts (all or nothing), with outputs wired to the new
    /// channels and to the inputs of the components that keep running.
    pub(super) fn build(&self, plan: &Plan, loaded: &LoadedConfig) -> Result<Built, BuildError> {
        let config = &loaded.config;
        let mut built = Built {
            inputs: HashMap::new(),
            sinks: Vec::new(),
            transforms: Vec::new(),
            sources: Vec::new(),
        };
        // Channels first, so that every new fanout can name its readers.
        let mut receivers = HashMap::new();
        for id in plan.add.iter().chain(&plan.replace) {
            if loaded.graph.kind_of(id) != Some(ComponentKind::Source) {
                let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
                built.inputs.insert(id.clone(), tx);
                receivers.insert(id.as_str(), rx);
            }
        }
        for c in loaded.graph.topological_order() {
            let id = c.id.as_str();
            if !plan.starts(id) {
                continue;
            }
            let ctx = self.base.for_component(id, &config.data_dir);
            match c.kind {
                ComponentKind::Source if plan.add.contains(&c.id) => {
                    let source = self.build_source(loaded, id, &built.inputs)?;
                    built.sources.push((c.id.clone(), source));
                }
                ComponentKind::Source => {
                    // Catch a mistake now, while nothing has changed.
                    let source = config
                        .sources
                        .get(id)
                        .ok_or_else(|| err(id, "not in the config"))?;
                    drop(
                        sources::build(source, ctx, Fanout::new(Vec::new()))
                            .map_err(|e| err(id, e))?,
                    );
                }
                ComponentKind::Transform => {
                    let t = config
                        .transforms
                        .get(id)
                        .ok_or_else(|| err(id, "not in the config"))?;
                    let rx = receivers
                        .remove(id)
                        .ok_or_else(|| err(id, "no input channel"))?;
                    let transform = transforms::build(t, &ctx).map_err(|e| err(id, e))?;
                    let (fanout, targets) = self.fanout(loaded, id, &built.inputs);
                    let task: TransformTask = Box::pin(transform.run(rx, fanout));
                    built.transforms.push((c.id.clone(), task, targets));
                }
                ComponentKind::Sink => {
                    let s = config
                        .sinks
                        .get(id)
                        .ok_or_else(|| err(id, "not in the config"))?;
                    let rx = receivers
                        .remove(id)
                        .ok_or_else(|| err(id, "no input channel"))?;
                    let task = sinks::build(s, ctx, rx).map_err(|e| err(id, e))?;
                    built.sinks.push((c.id.clone(), task));
                }
            }
        }
        Ok(built)
    }

    /// Builds source `id` of `loaded`, sending to its readers (new channels in `fresh`, or
    /// running components).
    pub(super) fn build_source(
        &self,
        loaded: &LoadedConfig,
        id: &str,
        fresh: &HashMap<String, mpsc::Sender<Chunk>>,
    ) -> Result<BuiltSource, BuildError> {
        let source = loaded
            .config
            .sources
            .get(id)
            .ok_or_else(|| err(id, "not in the config"))?;
        let ctx = self.base.for_component(id, &loaded.config.data_dir);
        let (fanout, targets) = self.fanout(loaded, id, fresh);
        let task = sources::build(source, ctx.clone(), fanout).map_err(|e| err(id, e))?;
        Ok(BuiltSource { ctx, task, targets })
    }

    /// A fanout for `id`'s output in `loaded`, tapped.
    fn fanout(
        &self,
        loaded: &LoadedConfig,
        id: &str,
        fresh: &HashMap<String, mpsc::Sender<Chunk>>,
    ) -> (Fanout, FanoutTargets) {
        let (fanout, targets) = Fanout::retargetable(self.targets_of(loaded, id, fresh));
        (fanout.with_tap(self.base.tap.point(id)), targets)
    }

    /// The input channels of `id`'s readers in `loaded`: a new channel where `fresh` has one,
    /// else the running reader's.
    pub(super) fn targets_of(
        &self,
        loaded: &LoadedConfig,
        id: &str,
        fresh: &HashMap<String, mpsc::Sender<Chunk>>,
    ) -> Vec<mpsc::Sender<Chunk>> {
        loaded
            .graph
            .outputs_of(id)
            .iter()
            .filter_map(|reader| fresh.get(reader).or_else(|| self.inputs.get(reader)))
            .cloned()
            .collect()
    }

    /// Spawns what `built` holds: sinks first, so that nothing sends into a channel nobody
    /// will read.
    pub(super) fn spawn(&mut self, built: Built) {
        self.inputs.extend(built.inputs);
        for (id, task) in built.sinks {
            self.spawn_sink(id, task);
        }
        for (id, task, targets) in built.transforms {
            self.outputs.insert(id.clone(), targets);
            self.spawn_transform(id, task);
        }
        for (id, source) in built.sources {
            self.spawn_built_source(id, source);
        }
    }

    /// Spawns one built source.
    pub(super) fn spawn_built_source(&mut self, id: String, source: BuiltSource) {
        self.outputs.insert(id.clone(), source.targets);
        self.spawn_source(id, &source.ctx, source.task);
    }
}
