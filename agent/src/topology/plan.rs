//! What a config change does to each component: the difference between two configs.

use logship_config::{ComponentKind, LoadedConfig};

/// The components of a new config, sorted by what happens to them. Every list is in the new
/// (or, for `remove`, the old) config's topological order: sources first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Same kind and same settings as before, and running: left alone. Only where their
    /// output goes may change.
    pub keep: Vec<String>,
    /// Not in the old config (or nothing was running).
    pub add: Vec<String>,
    /// In both, but changed (settings, kind or `data_dir`), or a source that has ended: the old
    /// one drains and stops, then the new one starts from the old one's checkpoint.
    pub replace: Vec<String>,
    /// Only in the old config: drained and stopped.
    pub remove: Vec<String>,
}

impl Plan {
    /// The plan that turns `old` (`None`: nothing runs yet) into `new`. `is_running` says
    /// whether a source of the old config is still running; one that has ended (failed, or
    /// its input closed) is started again even if its settings are the same.
    pub fn new(
        old: Option<&LoadedConfig>,
        new: &LoadedConfig,
        is_running: impl Fn(&str) -> bool,
    ) -> Self {
        let mut plan = Plan::default();
        for c in new.graph.topological_order() {
            let id = c.id;
            match old {
                Some(old) if old.graph.kind_of(&id).is_some() => {
                    if unchanged(old, new, c.kind, &id)
                        && (c.kind != ComponentKind::Source || is_running(&id))
                    {
                        plan.keep.push(id);
                    } else {
                        plan.replace.push(id);
                    }
                }
                _ => plan.add.push(id),
            }
        }
        if let Some(old) = old {
            plan.remove = old
                .graph
                .topological_order()
                .into_iter()
                .map(|c| c.id)
                .filter(|id| new.graph.kind_of(id).is_none())
                .collect();
        }
        plan
    }

    /// True when the new config changes no component.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.replace.is_empty() && self.remove.is_empty()
    }

    /// Whether `id` is started by this plan (added or replaced).
    pub fn starts(&self, id: &str) -> bool {
        self.add.iter().chain(&self.replace).any(|s| s == id)
    }
}

impl std::fmt::Display for Plan {
    /// `kept [a, b]; replaced [c]; added []; removed [d]`, for the log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kept [{}]; replaced [{}]; added [{}]; removed [{}]",
            self.keep.join(", "),
            self.replace.join(", "),
            self.add.join(", "),
            self.remove.join(", ")
        )
    }
}

/// Same kind and settings in both configs, with its state in the same place. What a
/// transform or sink reads from does not count: the topology rewires that while it runs.
fn unchanged(old: &LoadedConfig, new: &LoadedConfig, kind: ComponentKind, id: &str) -> bool {
    let (o, n) = (&old.config, &new.config);
    if old.graph.kind_of(id) != Some(kind) || o.data_dir != n.data_dir {
        return false;
    }
    match kind {
        ComponentKind::Source => o.sources.get(id) == n.sources.get(id),
        ComponentKind::Transform => match (o.transforms.get(id), n.transforms.get(id)) {
            (Some(a), Some(b)) => a.same_settings(b),
            _ => false,
        },
        ComponentKind::Sink => match (o.sinks.get(id), n.sinks.get(id)) {
            (Some(a), Some(b)) => a.same_settings(b),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> LoadedConfig {
        logship_config::load_str(toml, "test.toml", &|_| None).unwrap()
    }

    const BASE: &str = r#"
data_dir = "/tmp/x"
[sources.app]
type = "file"
include = ["/var/log/app.log"]
[transforms.parse]
type = "json"
inputs = ["app"]
[sinks.loki]
type = "loki"
inputs = ["parse"]
endpoint = "http://127.0.0.1:3100"
"#;

    #[test]
    fn a_changed_sink_is_replaced_and_the_rest_kept() {
        let new = load(&BASE.replace("3100", "3101"));
        let plan = Plan::new(Some(&load(BASE)), &new, |_| true);
        assert_eq!(plan.keep, ["app", "parse"]);
        assert_eq!(plan.replace, ["loki"]);
        assert!(plan.add.is_empty() && plan.remove.is_empty());
    }

    #[test]
    fn added_and_removed_components_and_an_ended_source() {
        let new = load(&format!(
            "{}\n[sinks.console]\ntype = \"console\"\ninputs = [\"app\"]\n",
            BASE.replace("[sinks.loki]", "[sinks.other]")
        ));
        let plan = Plan::new(Some(&load(BASE)), &new, |id| id != "app");
        assert_eq!(plan.keep, ["parse"], "a new reader does not change `parse`");
        assert_eq!(plan.replace, ["app"], "an ended source starts again");
        assert_eq!(plan.add.len(), 2, "{plan}");
        assert!(plan.starts("console") && plan.starts("other"));
        assert_eq!(plan.remove, ["loki"]);
    }

    #[test]
    fn a_sink_that_reads_from_elsewhere_is_kept() {
        let new = load(&format!(
            "{}\n[sources.more]\ntype = \"file\"\ninclude = [\"/b.log\"]\n",
            BASE.replace(r#"inputs = ["parse"]"#, r#"inputs = ["parse", "more"]"#)
        ));
        let plan = Plan::new(Some(&load(BASE)), &new, |_| true);
        assert_eq!(plan.keep, ["app", "parse", "loki"]);
        assert_eq!(plan.add, ["more"]);
    }

    #[test]
    fn a_new_data_dir_replaces_everything() {
        let new = load(&BASE.replace("/tmp/x", "/tmp/y"));
        let plan = Plan::new(Some(&load(BASE)), &new, |_| true);
        assert!(plan.keep.is_empty());
        assert_eq!(plan.replace.len(), 3);
    }

    #[test]
    fn nothing_running_adds_everything() {
        let plan = Plan::new(None, &load(BASE), |_| false);
        assert_eq!(plan.add, ["app", "parse", "loki"]);
        assert!(!plan.is_empty());
        assert!(Plan::new(Some(&load(BASE)), &load(BASE), |_| true).is_empty());
    }
}
