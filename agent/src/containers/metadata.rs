//! What a container is called and how that becomes Loki labels and structured metadata.
//!
//! Both ways of reading container logs (the Docker API and `decoder = "docker"` over
//! `/var/lib/docker/containers`) describe a container with the same [`ContainerInfo`] and turn
//! it into labels with the same [`LabelPlan`], so the two paths ship identical streams.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::pipeline::{LabelSet, Metadata, MetadataName};

/// Docker Compose's label naming the service of a container.
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
/// Docker Compose's label naming the project of a container.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// The output stream a line came from. TTY containers have a single stream, which Docker's
/// json-file driver records as `stdout`; it is reported as [`LogStream::Stdout`] so that the
/// API path and the json-file path agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    /// Standard output (and the single stream of a TTY container).
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// `stdout` or `stderr`, the value of the `stream` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }

    /// 0 for stdout, 1 for stderr: an index into per-stream arrays.
    pub fn index(self) -> usize {
        match self {
            LogStream::Stdout => 0,
            LogStream::Stderr => 1,
        }
    }

    /// Parses `stdout` / `stderr` (as written in json-file logs).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            _ => None,
        }
    }
}

/// The facts about one container that labels can be made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The full 64-hex-digit id.
    pub id: String,
    /// The name without Docker's leading slash.
    pub name: String,
    /// The image as the container was created from it (`Config.Image`, e.g. `nginx:1.27`).
    pub image: String,
    /// The container's labels (`Config.Labels`).
    pub labels: BTreeMap<String, String>,
    /// True when the container has a TTY: its output is one unmultiplexed stream.
    pub tty: bool,
}

impl ContainerInfo {
    /// Builds the info from raw values, stripping the leading slash Docker puts on names.
    pub fn new(
        id: impl Into<String>,
        name: &str,
        image: impl Into<String>,
        labels: BTreeMap<String, String>,
        tty: bool,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.strip_prefix('/').unwrap_or(name).to_owned(),
            image: image.into(),
            labels,
            tty,
        }
    }

    /// From `docker inspect` output; `None` when Docker left out the id.
    pub fn from_inspect(resp: &bollard::models::ContainerInspectResponse) -> Option<Self> {
        let id = resp.id.as_deref()?;
        let config = resp.config.as_ref();
        let labels = config
            .and_then(|c| c.labels.as_ref())
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Some(Self::new(
            id,
            resp.name.as_deref().unwrap_or(id),
            config.and_then(|c| c.image.clone()).unwrap_or_default(),
            labels,
            config.and_then(|c| c.tty).unwrap_or(false),
        ))
    }

    /// The value of `attr` for lines of `stream`, or `None` when the container lacks it.
    pub fn attribute(&self, attr: &Attribute, stream: LogStream) -> Option<&str> {
        let value = match attr {
            Attribute::Container => self.name.as_str(),
            Attribute::ContainerId => self.id.as_str(),
            Attribute::Image => self.image.as_str(),
            Attribute::Stream => stream.as_str(),
            Attribute::ComposeService => self.labels.get(COMPOSE_SERVICE_LABEL)?.as_str(),
            Attribute::ComposeProject => self.labels.get(COMPOSE_PROJECT_LABEL)?.as_str(),
            Attribute::Label(key) => self.labels.get(key)?.as_str(),
        };
        (!value.is_empty()).then_some(value)
    }
}

/// A container attribute that the config can map to a label or metadata name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// The name without the leading slash.
    Container,
    /// The full id.
    ContainerId,
    /// The image the container was created from.
    Image,
    /// `stdout` or `stderr`.
    Stream,
    /// The `com.docker.compose.service` label.
    ComposeService,
    /// The `com.docker.compose.project` label.
    ComposeProject,
    /// Any container label, written `label.<key>`.
    Label(String),
}

/// A name in `labels` / `structured_metadata` that is not a container attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown container attribute {0:?}; expected container, container_id, image, stream, \
     compose_service, compose_project or label.<key>"
)]
pub struct UnknownAttribute(pub String);

impl std::str::FromStr for Attribute {
    type Err = UnknownAttribute;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "container" | "container_name" => Attribute::Container,
            "container_id" => Attribute::ContainerId,
            "image" => Attribute::Image,
            "stream" => Attribute::Stream,
            "compose_service" => Attribute::ComposeService,
            "compose_project" => Attribute::ComposeProject,
            other => match other.strip_prefix("label.") {
                Some(key) if !key.is_empty() => Attribute::Label(key.to_owned()),
                _ => return Err(UnknownAttribute(other.to_owned())),
            },
        })
    }
}

/// The labels and metadata every line of one (container, stream) carries, built once when a
/// container is attached and shared by all its events.
#[derive(Clone, Debug)]
pub struct StreamLabels {
    /// Interned stream labels.
    pub labels: LabelSet,
    /// Structured metadata pairs (cloned per event: reference counts only).
    pub metadata: Metadata,
}

/// How container attributes become labels and structured metadata: the `labels`,
/// `structured_metadata` and `static_labels` of a docker source.
#[derive(Clone)]
pub struct LabelPlan {
    labels: Vec<(Arc<str>, Attribute)>,
    metadata: Vec<(MetadataName, Attribute)>,
    static_labels: Vec<(Arc<str>, Arc<str>)>,
}

impl fmt::Debug for LabelPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelPlan")
            .field("labels", &self.labels)
            .field("metadata", &self.metadata)
            .field("static_labels", &self.static_labels)
            .finish()
    }
}

/// The config's `name → attribute` pairs, each name made by `name`.
fn attributes<N>(
    map: &BTreeMap<String, String>,
    name: impl Fn(&str) -> N,
) -> Result<Vec<(N, Attribute)>, UnknownAttribute> {
    map.iter()
        .map(|(n, attr)| Ok((name(n), attr.parse()?)))
        .collect()
}

impl LabelPlan {
    /// A plan from the config's maps (Loki name → attribute name).
    pub fn new(
        labels: &BTreeMap<String, String>,
        structured_metadata: &BTreeMap<String, String>,
        static_labels: &BTreeMap<String, String>,
    ) -> Result<Self, UnknownAttribute> {
        Ok(Self {
            labels: attributes(labels, |n| Arc::<str>::from(n))?,
            metadata: attributes(structured_metadata, MetadataName::interned)?,
            static_labels: static_labels
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str())))
                .collect(),
        })
    }

    /// The default plan of a docker source: labels `container`, `stream`, `compose_service`
    /// and `compose_project`; no metadata. The `decoder = "docker"` file path uses this too.
    pub fn default_docker() -> Self {
        let attrs = [
            ("container", Attribute::Container),
            ("stream", Attribute::Stream),
            ("compose_service", Attribute::ComposeService),
            ("compose_project", Attribute::ComposeProject),
        ];
        Self {
            labels: attrs
                .into_iter()
                .map(|(name, attr)| (Arc::from(name), attr))
                .collect(),
            metadata: Vec::new(),
            static_labels: Vec::new(),
        }
    }

    /// Labels and metadata for lines of `stream` from `info`. Attributes the container lacks
    /// add nothing; static labels lose to attribute labels of the same name.
    pub fn stream_labels(&self, info: &ContainerInfo, stream: LogStream) -> StreamLabels {
        let dynamic = self.labels.iter().filter_map(|(name, attr)| {
            info.attribute(attr, stream)
                .map(|v| (name.clone(), Arc::<str>::from(v)))
        });
        let labels = LabelSet::new(self.static_labels.iter().cloned().chain(dynamic));
        let metadata = self
            .metadata
            .iter()
            .filter_map(|(name, attr)| {
                info.attribute(attr, stream)
                    .map(|v| (name.clone(), Bytes::copy_from_slice(v.as_bytes())))
            })
            .collect();
        StreamLabels { labels, metadata }
    }

    /// Both streams' labels, indexed by [`LogStream::index`].
    pub fn both_streams(&self, info: &ContainerInfo) -> [StreamLabels; 2] {
        [
            self.stream_labels(info, LogStream::Stdout),
            self.stream_labels(info, LogStream::Stderr),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ContainerInfo {
        let labels = [
            (COMPOSE_SERVICE_LABEL, "api"),
            (COMPOSE_PROJECT_LABEL, "shop"),
            ("team", "orders"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        ContainerInfo::new("abc123", "/order-api-1", "shop/api:1", labels, false)
    }

    #[test]
    fn default_plan_gives_the_documented_labels() {
        let s = LabelPlan::default_docker().stream_labels(&info(), LogStream::Stderr);
        assert_eq!(
            s.labels.selector(),
            r#"{compose_project="shop", compose_service="api", container="order-api-1", stream="stderr"}"#
        );
        assert!(s.metadata.is_empty());
    }

    #[test]
    fn missing_attributes_add_no_label() {
        let bare = ContainerInfo::new("abc", "/x", "img", BTreeMap::new(), false);
        let s = LabelPlan::default_docker().stream_labels(&bare, LogStream::Stdout);
        assert_eq!(s.labels.selector(), r#"{container="x", stream="stdout"}"#);
    }

    #[test]
    fn config_renames_drops_and_adds_metadata() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let plan = LabelPlan::new(
            &m(&[("ctr", "container"), ("team", "label.team")]),
            &m(&[("container_id", "container_id"), ("image", "image")]),
            &m(&[("env", "prod"), ("ctr", "overridden")]),
        )
        .unwrap();
        let s = plan.stream_labels(&info(), LogStream::Stdout);
        assert_eq!(
            s.labels.selector(),
            r#"{ctr="order-api-1", env="prod", team="orders"}"#
        );
        let md: Vec<(String, String)> = s
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        assert_eq!(
            md,
            vec![
                ("container_id".to_owned(), "abc123".to_owned()),
                ("image".to_owned(), "shop/api:1".to_owned())
            ]
        );
    }

    #[test]
    fn unknown_attribute_is_an_error() {
        let m: BTreeMap<String, String> = [("x".to_owned(), "nope".to_owned())].into();
        assert_eq!(
            LabelPlan::new(&m, &BTreeMap::new(), &BTreeMap::new()).unwrap_err(),
            UnknownAttribute("nope".to_owned())
        );
        assert!("label.".parse::<Attribute>().is_err());
        assert_eq!(
            "label.a.b".parse::<Attribute>().unwrap(),
            Attribute::Label("a.b".to_owned())
        );
    }
}
