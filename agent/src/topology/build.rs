//! Turning a config into running components connected by bounded channels.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use logship_config::schema::{Config, SinkConfig, SourceConfig};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Fanout;
use crate::context::ComponentContext;
use crate::event::Chunk;
use crate::sinks;
use crate::sources;
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

/// A component's task, ready to spawn.
type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Wraps a source's run so that its error is logged (the source's task ends; the others go on).
fn report_failure<E: std::fmt::Display>(
    id: &str,
    run: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> Task {
    let id = id.to_owned();
    Box::pin(async move {
        if let Err(e) = run.await {
            tracing::error!(component = %id, error = %e, "source failed");
        }
    })
}

/// The running pipeline's tasks, grouped so they can be stopped in order.
pub struct Running {
    /// Source tasks: they end on shutdown or when their input ends.
    pub sources: JoinSet<()>,
    /// Transform tasks: they end when their inputs close.
    pub transforms: JoinSet<()>,
    /// Sink tasks: they end once their inputs close and their data is flushed.
    pub sinks: JoinSet<()>,
}

/// Builds every component of `config` and starts it. `base` supplies the shared services;
/// each component gets its own id and state directory under `config.data_dir`.
pub fn start(config: &Config, base: &ComponentContext) -> Result<Running, BuildError> {
    let ctx_for = |id: &str| ComponentContext {
        id: Arc::from(id),
        data_dir: Path::new(&config.data_dir).join(id),
        ..base.clone()
    };

    // One input channel per transform and sink; producers get the senders of their readers.
    let mut receivers: HashMap<&str, mpsc::Receiver<Chunk>> = HashMap::new();
    let mut senders: HashMap<&str, Vec<mpsc::Sender<Chunk>>> = HashMap::new();
    let consumers = config
        .transforms
        .iter()
        .map(|(id, t)| (id.as_str(), t.inputs()))
        .chain(config.sinks.iter().map(|(id, s)| (id.as_str(), s.inputs())));
    for (id, inputs) in consumers {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        receivers.insert(id, rx);
        for input in inputs {
            senders.entry(input.as_str()).or_default().push(tx.clone());
        }
    }
    let mut fanout = |id: &str| Fanout::new(senders.remove(id).unwrap_or_default());

    let mut running = Running {
        sources: JoinSet::new(),
        transforms: JoinSet::new(),
        sinks: JoinSet::new(),
    };

    // Build everything first so that a bad component stops start-up before anything runs.
    let mut sink_tasks = Vec::new();
    for (id, sink) in &config.sinks {
        let ctx = ctx_for(id);
        let rx = receivers
            .remove(id.as_str())
            .ok_or_else(|| err(id, "no input channel"))?;
        let task: Task = match sink {
            SinkConfig::Loki(c) => {
                let s = sinks::LokiSink::new(c, ctx).map_err(|e| err(id, e))?;
                Box::pin(s.run(rx))
            }
            SinkConfig::Console(c) => Box::pin(sinks::ConsoleSink::new(c, ctx).run(rx)),
            SinkConfig::Blackhole(c) => Box::pin(sinks::BlackholeSink::new(c, ctx).run(rx)),
        };
        sink_tasks.push(task);
    }
    let mut transform_tasks = Vec::new();
    for (id, t) in &config.transforms {
        let ctx = ctx_for(id);
        let rx = receivers
            .remove(id.as_str())
            .ok_or_else(|| err(id, "no input channel"))?;
        let tr = transforms::build(t, &ctx).map_err(|e| err(id, e))?;
        transform_tasks.push(tr.run(rx, fanout(id)));
    }
    let mut source_tasks: Vec<Task> = Vec::new();
    for (id, s) in &config.sources {
        let ctx = ctx_for(id);
        let out = fanout(id);
        let task: Task = match s {
            SourceConfig::File(c) => {
                let src = sources::file::FileSource::new(c, ctx).map_err(|e| err(id, e))?;
                report_failure(id, src.run(out))
            }
            SourceConfig::Stdin(c) => {
                let src = sources::stdin::StdinSource::new(c, ctx).map_err(|e| err(id, e))?;
                report_failure(id, src.run(out))
            }
            SourceConfig::Docker(c) => {
                let src = sources::docker::DockerSource::new(c, ctx).map_err(|e| err(id, e))?;
                report_failure(id, src.run(out))
            }
        };
        source_tasks.push(task);
    }
    // Senders left over belong to producers that do not exist (the config rejects that) or
    // were cloned into fanouts; drop them so channels close when their producers stop.
    drop(senders);

    for t in sink_tasks {
        running.sinks.spawn(t);
    }
    for t in transform_tasks {
        running.transforms.spawn(t);
    }
    for t in source_tasks {
        running.sources.spawn(t);
    }
    Ok(running)
}
