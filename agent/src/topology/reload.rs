//! Applying a new config to a running pipeline by difference.

use std::collections::HashMap;

use logship_config::{ComponentKind, LoadedConfig};

use super::{BuildError, Plan, Running};

impl Running {
    /// Turns the running pipeline into that of `new`, changing only what differs (see
    /// [`Plan`] and the [module docs](super)). Every new or changed component is built before
    /// anything changes, so an error (a TLS file that cannot be read, say) leaves the pipeline
    /// exactly as it was. Returns the plan it applied. It does not wait for anything to drain.
    ///
    /// In order: replaced and removed sources are told to stop; new sinks and transforms
    /// start; every kept fanout is pointed at the new graph, which retires replaced and removed
    /// transforms and sinks (they drain and end on their own); new sources start, and the new
    /// instance of a replaced source as soon as its old one has ended (from the run loop).
    pub fn reload(&mut self, new: &LoadedConfig) -> Result<Plan, BuildError> {
        let plan = Plan::new(Some(&self.config), new, |id| self.source_is_running(id));
        let built = self.build(&plan, new)?;
        self.config = new.clone();

        let mut start_now = Vec::new();
        for id in plan.replace.iter().chain(&plan.remove) {
            self.inputs.remove(id);
            self.outputs.remove(id);
            self.base.health.clear_problem(id);
            let replaced_source =
                plan.replace.contains(id) && new.graph.kind_of(id) == Some(ComponentKind::Source);
            if let Some(old) = self.sources.remove(id) {
                old.shutdown.cancel();
                if replaced_source && self.pending.insert(id.clone()) {
                    let (id, done) = (id.clone(), old.done.clone());
                    self.successors.spawn(async move {
                        done.cancelled().await;
                        id
                    });
                }
            } else if replaced_source && !self.pending.contains(id) {
                // Nothing runs under this id (it had ended): nothing to wait for.
                start_now.push(id.clone());
            }
        }
        self.spawn(built);
        // Point every kept component at its readers in the new graph (new channels for the
        // replaced ones): the old channels close once their last send is done.
        for id in &plan.keep {
            if let Some(targets) = self.outputs.get(id) {
                targets.set(self.targets_of(new, id, &HashMap::new()));
            }
        }
        for id in start_now {
            self.start_successor(&id);
        }
        Ok(plan)
    }

    /// Starts the current config's source `id`, whose old instance has ended. Nothing, if a
    /// later reload removed it, or the pipeline is stopping.
    pub(super) fn start_successor(&mut self, id: &str) {
        self.pending.remove(id);
        if self.base.shutdown.is_cancelled()
            || self.source_is_running(id)
            || self.config.graph.kind_of(id) != Some(ComponentKind::Source)
        {
            return;
        }
        if let Some(i) = self
            .outcome
            .failed_sources
            .iter()
            .position(|(f, _)| f == id)
        {
            let (_, reason) = self.outcome.failed_sources.remove(i);
            tracing::warn!(component = %id, error = %reason, "source had failed; the reload starts it again");
        }
        match self.build_source(&self.config, id, &HashMap::new()) {
            Ok(source) => {
                tracing::info!(component = %id, "the changed source starts where the old one stopped");
                self.spawn_built_source(id.to_owned(), source);
            }
            Err(e) => {
                // It passed the check at the reload; its checkpoint changed since.
                tracing::error!(component = %id, error = %e, "cannot start the changed source");
                self.base
                    .metrics
                    .component_errors
                    .with_label_values(&[id])
                    .inc();
                self.base
                    .health
                    .set_problem(id, format!("source not started: {e}"));
                self.outcome
                    .failed_sources
                    .push((id.to_owned(), e.to_string()));
            }
        }
    }
}
