//! The pod-metadata cache: what the API watch has said about this node's pods, turned into
//! the labels and metadata of their log files, and the file server's [`Enricher`].
//!
//! Files are matched to pods by the UID in their directory name
//! (`<namespace>_<pod>_<uid>/<container>/<n>.log`), so a pod recreated under the same name
//! is a different pod. Deleted pods stay for [`DELETED_KEPT`], long enough for the kubelet's
//! last lines of them to be read with their labels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use logship_config::schema::KubernetesLogsSourceConfig;
use logship_parsers::cri::parse_cri_path;

use crate::pipeline::{Metadata, MetadataName};
use crate::sources::file::{Admission, Enricher, Extras};

/// How long a deleted pod's metadata is kept.
pub const DELETED_KEPT: Duration = Duration::from_secs(600);

/// Where the watch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiState {
    /// No answer yet: a new pod's files wait (bounded) for it.
    Starting,
    /// Listed and watching: a pod not in the cache is new; its files wait (bounded).
    Synced,
    /// The last call failed: files are read at once with their path labels.
    Failing,
    /// `metadata = false`: no API at all.
    Off,
}

/// Which pod labels and annotations become what.
struct Mapping {
    labels_from_labels: Vec<(String, String)>,
    labels_from_annotations: Vec<(String, String)>,
    metadata_from_labels: Vec<(MetadataName, String)>,
    metadata_from_annotations: Vec<(MetadataName, String)>,
    exclude_annotation: String,
}

struct Entry {
    extras: Arc<Extras>,
    excluded: bool,
    deleted_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    pods: HashMap<String, Entry>,
    /// UIDs seen since the last `Init` (a re-list), to find pods deleted meanwhile.
    relisting: Option<HashSet<String>>,
}

/// This node's pods as the watch last described them. Shared by the watch task (writer) and
/// the file server (reader, through [`Enricher`]).
pub struct PodCache {
    mapping: Mapping,
    include_namespaces: HashSet<String>,
    exclude_namespaces: HashSet<String>,
    wait: Duration,
    api: RwLock<ApiState>,
    state: RwLock<State>,
    generation: AtomicU64,
}

impl PodCache {
    /// An empty cache for a source configured by `config`.
    pub fn new(config: &KubernetesLogsSourceConfig) -> Self {
        let pairs = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        let meta_pairs = |m: &BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| (MetadataName::interned(k), v.clone()))
                .collect::<Vec<_>>()
        };
        Self {
            mapping: Mapping {
                labels_from_labels: pairs(&config.pod_labels),
                labels_from_annotations: pairs(&config.pod_annotations),
                metadata_from_labels: meta_pairs(&config.pod_labels_as_metadata),
                metadata_from_annotations: meta_pairs(&config.pod_annotations_as_metadata),
                exclude_annotation: config.exclude_annotation.clone(),
            },
            include_namespaces: config.include_namespaces.iter().cloned().collect(),
            exclude_namespaces: config.exclude_namespaces.iter().cloned().collect(),
            wait: Duration::from_secs(config.metadata_wait_secs),
            api: RwLock::new(if config.metadata {
                ApiState::Starting
            } else {
                ApiState::Off
            }),
            state: RwLock::new(State::default()),
            generation: AtomicU64::new(0),
        }
    }

    /// Where the watch stands.
    pub fn api_state(&self) -> ApiState {
        *self.api.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records where the watch stands.
    pub fn set_api_state(&self, state: ApiState) {
        *self.api.write().unwrap_or_else(|e| e.into_inner()) = state;
    }

    /// Pods in the cache, deleted ones included.
    pub fn len(&self) -> usize {
        self.read().pods.len()
    }

    /// Whether the cache holds no pod.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A re-list begins: pods not listed again by [`PodCache::relist_done`] were deleted.
    pub fn relist_started(&self) {
        self.write().relisting = Some(HashSet::new());
    }

    /// The re-list is complete: the cache is in sync with the API.
    pub fn relist_done(&self) {
        let now = Instant::now();
        let mut state = self.write();
        if let Some(listed) = state.relisting.take() {
            for (uid, entry) in &mut state.pods {
                if !listed.contains(uid) && entry.deleted_at.is_none() {
                    entry.deleted_at = Some(now);
                }
            }
        }
        drop(state);
        self.set_api_state(ApiState::Synced);
        self.bump();
    }

    /// A pod was listed, added or modified.
    pub fn apply(&self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let (extras, excluded) = self.describe(pod);
        let mut state = self.write();
        if let Some(listed) = &mut state.relisting {
            listed.insert(uid.clone());
        }
        let changed = match state.pods.get(&uid) {
            Some(old) => {
                *old.extras != extras || old.excluded != excluded || old.deleted_at.is_some()
            }
            None => true,
        };
        if changed {
            state.pods.insert(
                uid,
                Entry {
                    extras: Arc::new(extras),
                    excluded,
                    deleted_at: None,
                },
            );
            drop(state);
            self.bump();
        }
    }

    /// A pod was deleted: kept for [`DELETED_KEPT`] for its files' last lines.
    pub fn delete(&self, pod: &Pod) {
        if let Some(uid) = &pod.metadata.uid
            && let Some(entry) = self.write().pods.get_mut(uid)
        {
            entry.deleted_at.get_or_insert_with(Instant::now);
        }
    }

    /// Forgets pods deleted longer than [`DELETED_KEPT`] ago.
    pub fn expire(&self) {
        self.write()
            .pods
            .retain(|_, e| e.deleted_at.is_none_or(|t| t.elapsed() < DELETED_KEPT));
    }

    /// The labels and metadata a pod's lines get, and whether it is excluded.
    fn describe(&self, pod: &Pod) -> (Extras, bool) {
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
        let m = &self.mapping;
        let mut extras = Extras::default();
        // Loki treats an empty label value as no label; skip it rather than send it.
        let pick = |from: &BTreeMap<String, String>, key: &str| {
            from.get(key).filter(|v| !v.is_empty()).cloned()
        };
        for (name, key) in &m.labels_from_labels {
            if let Some(v) = pick(labels, key) {
                extras.labels.push((name.clone(), v));
            }
        }
        for (name, key) in &m.labels_from_annotations {
            if let Some(v) = pick(annotations, key) {
                extras.labels.push((name.clone(), v));
            }
        }
        let mut metadata = Metadata::new();
        for (name, key) in &m.metadata_from_labels {
            if let Some(v) = pick(labels, key) {
                metadata.push((name.clone(), Bytes::from(v)));
            }
        }
        for (name, key) in &m.metadata_from_annotations {
            if let Some(v) = pick(annotations, key) {
                metadata.push((name.clone(), Bytes::from(v)));
            }
        }
        extras.metadata = metadata;
        let excluded = annotations
            .get(&m.exclude_annotation)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        (extras, excluded)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn namespace_allowed(&self, namespace: &str) -> bool {
        !self.exclude_namespaces.contains(namespace)
            && (self.include_namespaces.is_empty() || self.include_namespaces.contains(namespace))
    }
}

impl Enricher for PodCache {
    fn admit(&self, path: &Path, waited: Duration) -> Admission {
        let text = path.to_string_lossy();
        let Some(p) = parse_cri_path(&text) else {
            return Admission::Read; // not shaped like a pod log; read it with what it has
        };
        if !self.namespace_allowed(p.namespace) {
            return Admission::Skip;
        }
        if let Some(entry) = self.read().pods.get(p.pod_uid) {
            return if entry.excluded {
                Admission::Skip
            } else {
                Admission::Read
            };
        }
        match self.api_state() {
            ApiState::Off | ApiState::Failing => Admission::Read,
            ApiState::Starting | ApiState::Synced if waited >= self.wait => Admission::Read,
            ApiState::Starting | ApiState::Synced => Admission::Wait,
        }
    }

    fn extras(&self, path: &Path) -> Option<Arc<Extras>> {
        let text = path.to_string_lossy();
        let p = parse_cri_path(&text)?;
        self.read().pods.get(p.pod_uid).map(|e| e.extras.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn config(toml_extra: &str) -> KubernetesLogsSourceConfig {
        let text = format!("node_name = \"n1\"\n{toml_extra}");
        toml::from_str(&text).expect("test config parses")
    }

    fn pod(uid: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Pod {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        Pod {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                labels: map(labels),
                annotations: map(annotations),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    const PATH: &str = "/var/log/pods/shop_web-1_u1/app/0.log";

    #[test]
    fn mapped_labels_and_metadata_come_from_the_pod() {
        let cache = PodCache::new(&config(
            "pod_labels = { app = \"app.kubernetes.io/name\" }\npod_annotations_as_metadata = { owner = \"team\" }",
        ));
        cache.apply(&pod(
            "u1",
            &[("app.kubernetes.io/name", "web"), ("other", "x")],
            &[("team", "payments")],
        ));
        let extras = cache.extras(Path::new(PATH)).expect("known pod");
        assert_eq!(extras.labels, vec![("app".to_owned(), "web".to_owned())]);
        assert_eq!(
            extras.metadata.as_slice(),
            &[(MetadataName::from("owner"), Bytes::from("payments"))]
        );
        assert_eq!(
            cache.admit(Path::new(PATH), Duration::ZERO),
            Admission::Read
        );
    }

    #[test]
    fn unknown_pods_wait_a_bounded_time_unless_the_api_fails() {
        let cache = PodCache::new(&config("metadata_wait_secs = 3"));
        let path = Path::new(PATH);
        assert_eq!(cache.admit(path, Duration::ZERO), Admission::Wait);
        assert_eq!(cache.admit(path, Duration::from_secs(3)), Admission::Read);
        cache.set_api_state(ApiState::Failing);
        assert_eq!(cache.admit(path, Duration::ZERO), Admission::Read);
    }

    #[test]
    fn exclusion_and_namespaces_skip() {
        let cache = PodCache::new(&config("exclude_namespaces = [\"kube-system\"]"));
        cache.apply(&pod("u1", &[], &[("logship.io/exclude", "true")]));
        assert_eq!(
            cache.admit(Path::new(PATH), Duration::ZERO),
            Admission::Skip
        );
        let system = Path::new("/var/log/pods/kube-system_dns_u2/dns/0.log");
        assert_eq!(cache.admit(system, Duration::ZERO), Admission::Skip);
    }

    #[test]
    fn a_relist_marks_missing_pods_deleted_and_changes_bump_the_generation() {
        let cache = PodCache::new(&config("pod_labels = { app = \"app\" }"));
        cache.apply(&pod("u1", &[("app", "a")], &[]));
        let g = cache.generation();
        cache.apply(&pod("u1", &[("app", "a")], &[]));
        assert_eq!(cache.generation(), g, "an unchanged pod changes nothing");
        cache.apply(&pod("u1", &[("app", "b")], &[]));
        assert!(cache.generation() > g);
        cache.relist_started();
        cache.relist_done();
        let state = cache.read();
        assert!(state.pods["u1"].deleted_at.is_some());
    }
}
