//! Which containers exist and which of them to follow: the container list at (re)connect,
//! the events stream after it, and the include/exclude filters.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::Docker;
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum, EventMessage};
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures::{Stream, StreamExt};
use logship_config::schema::DockerSourceConfig;

use super::self_id::SelfId;
use crate::containers::ContainerInfo;

/// A container label condition from `include_labels`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelCond {
    /// `key`: the label is present.
    Present(String),
    /// `key=value`: the label has this value.
    Equals(String, String),
}

/// Decides which containers are followed.
#[derive(Debug, Clone)]
pub struct ContainerFilter {
    include_names: Vec<String>,
    exclude_names: Vec<String>,
    labels: Vec<LabelCond>,
    images: Vec<String>,
    self_id: Option<SelfId>,
}

impl ContainerFilter {
    /// The filter a config describes; `self_id` is the agent's own container, if it runs in one.
    pub fn new(config: &DockerSourceConfig, self_id: Option<SelfId>) -> Self {
        let labels = config
            .include_labels
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => LabelCond::Equals(k.trim().to_owned(), v.trim().to_owned()),
                None => LabelCond::Present(l.trim().to_owned()),
            })
            .collect();
        Self {
            include_names: config.include_containers.clone(),
            exclude_names: config.exclude_containers.clone(),
            labels,
            images: config.include_images.clone(),
            self_id,
        }
    }

    /// Why `info` is not followed, or `None` when it is.
    pub fn rejects(&self, info: &ContainerInfo) -> Option<&'static str> {
        let name = info.name.as_str();
        if self.self_id.as_ref().is_some_and(|s| s.matches(&info.id)) {
            return Some("it is the agent's own container");
        }
        if self
            .exclude_names
            .iter()
            .any(|p| name.starts_with(p.as_str()))
        {
            return Some("exclude_containers");
        }
        if !self.include_names.is_empty()
            && !self
                .include_names
                .iter()
                .any(|p| name.starts_with(p.as_str()))
        {
            return Some("include_containers");
        }
        if !self.images.is_empty()
            && !self
                .images
                .iter()
                .any(|p| info.image.starts_with(p.as_str()))
        {
            return Some("include_images");
        }
        let label_ok = |c: &LabelCond| match c {
            LabelCond::Present(k) => info.labels.contains_key(k),
            LabelCond::Equals(k, v) => info.labels.get(k) == Some(v),
        };
        if !self.labels.iter().all(label_ok) {
            return Some("include_labels");
        }
        None
    }
}

/// A container as the list shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Full id.
    pub id: String,
    /// Enough to filter on (no TTY flag: that needs an inspect).
    pub info: ContainerInfo,
    /// True while it runs (or is paused or restarting: its log may still grow).
    pub running: bool,
}

impl Listed {
    fn from_summary(s: ContainerSummary) -> Option<Self> {
        let id = s.id?;
        let name = s
            .names
            .as_ref()
            .and_then(|n| n.first())
            .cloned()
            .unwrap_or_else(|| id.clone());
        let running = matches!(
            s.state,
            Some(
                ContainerSummaryStateEnum::RUNNING
                    | ContainerSummaryStateEnum::PAUSED
                    | ContainerSummaryStateEnum::RESTARTING
            )
        );
        let labels = s.labels.unwrap_or_default().into_iter().collect();
        let info = ContainerInfo::new(
            id.clone(),
            &name,
            s.image.unwrap_or_default(),
            labels,
            false,
        );
        Some(Self { id, info, running })
    }
}

/// Every container, running or not.
pub async fn list_all(docker: &Docker) -> Result<Vec<Listed>, bollard::errors::Error> {
    let opts = ListContainersOptionsBuilder::new().all(true).build();
    let list = docker.list_containers(Some(opts)).await?;
    Ok(list.into_iter().filter_map(Listed::from_summary).collect())
}

/// A container lifecycle event that matters to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerEvent {
    /// The container (re)started: follow it.
    Start(String),
    /// The container stopped; its log stream ends by itself.
    Die(String),
    /// The container was removed: its log is gone, and so may be its checkpoint.
    Destroy(String),
    /// The container got a new name (without the slash).
    Rename(String, String),
}

impl ContainerEvent {
    /// The event a Docker message stands for, if any.
    pub fn from_message(m: &EventMessage) -> Option<Self> {
        let actor = m.actor.as_ref()?;
        let id = actor.id.clone()?;
        let action = m.action.as_deref()?;
        // Health checks show up as `exec_start: ...`, `health_status: ...`: not ours.
        Some(match action {
            "start" => ContainerEvent::Start(id),
            "die" => ContainerEvent::Die(id),
            "destroy" => ContainerEvent::Destroy(id),
            "rename" => {
                let name = actor.attributes.as_ref()?.get("name")?;
                ContainerEvent::Rename(id, name.trim_start_matches('/').to_owned())
            }
            _ => return None,
        })
    }
}

/// A boxed stream of daemon events.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<EventMessage, bollard::errors::Error>> + Send>>;

/// Container start/die/destroy/rename events from `since_unix_secs` on (the events API
/// replays events since then, so nothing between the list and the subscription is missed).
pub fn container_events(docker: &Docker, since_unix_secs: i64) -> EventStream {
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([
        ("type", vec!["container"]),
        ("event", vec!["start", "die", "destroy", "rename"]),
    ]);
    let opts = EventsOptionsBuilder::new()
        .since(&since_unix_secs.to_string())
        .filters(&filters)
        .build();
    docker.events(Some(opts)).boxed()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bollard::models::EventActor;

    use super::*;

    fn config(lists: &[(&str, &[&str])]) -> DockerSourceConfig {
        let doc: serde_json::Map<String, serde_json::Value> = lists
            .iter()
            .map(|(k, vs)| (k.to_string(), serde_json::json!(vs)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(doc)).unwrap()
    }

    fn info(name: &str, image: &str, labels: &[(&str, &str)]) -> ContainerInfo {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ContainerInfo::new("0123456789ab0000", name, image, labels, false)
    }

    #[test]
    fn empty_filter_follows_everything_but_itself() {
        let f = ContainerFilter::new(&config(&[]), Some(SelfId::Prefix("0123456789ab".into())));
        assert_eq!(
            f.rejects(&info("/x", "i", &[])),
            Some("it is the agent's own container")
        );
        let f = ContainerFilter::new(&config(&[]), None);
        assert_eq!(f.rejects(&info("/x", "i", &[])), None);
    }

    #[test]
    fn include_exclude_labels_images() {
        let f = ContainerFilter::new(
            &config(&[
                ("include_containers", &["order-"]),
                ("exclude_containers", &["order-debug"]),
                ("include_labels", &["logging=enabled", "team"]),
                ("include_images", &["shop/"]),
            ]),
            None,
        );
        let ok = info(
            "/order-api",
            "shop/api:1",
            &[("logging", "enabled"), ("team", "x")],
        );
        assert_eq!(f.rejects(&ok), None);
        let mut c = ok.clone();
        c.name = "order-debug-1".into();
        assert_eq!(f.rejects(&c), Some("exclude_containers"));
        c.name = "payment".into();
        assert_eq!(f.rejects(&c), Some("include_containers"));
        let mut c = ok.clone();
        c.image = "other/api".into();
        assert_eq!(f.rejects(&c), Some("include_images"));
        let mut c = ok.clone();
        c.labels.insert("logging".into(), "disabled".into());
        assert_eq!(f.rejects(&c), Some("include_labels"));
        let mut c = ok;
        c.labels.remove("team");
        assert_eq!(f.rejects(&c), Some("include_labels"));
    }

    #[test]
    fn events_are_classified() {
        let msg = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        assert_eq!(
            ContainerEvent::from_message(&msg("start", &[])),
            Some(ContainerEvent::Start("abc".into()))
        );
        assert_eq!(
            ContainerEvent::from_message(&msg("rename", &[("name", "/new")])),
            Some(ContainerEvent::Rename("abc".into(), "new".into()))
        );
        assert_eq!(
            ContainerEvent::from_message(&msg("exec_start: sh", &[])),
            None
        );
    }
}
