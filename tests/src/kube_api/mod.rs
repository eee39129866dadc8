//! A Kubernetes API server for the `kubernetes_logs` tests, speaking the real protocol for
//! the one resource the agent uses: pods.
//!
//! - HTTPS (the throw-away test CA in `agent/src/sinks/loki/testdata`), HTTP/1.1, bearer
//!   tokens: a wrong or missing token is `401 Unauthorized`, [`KubeApi::set_forbidden`] makes
//!   every call `403 Forbidden` with the text a real server gives a service account without
//!   a role.
//! - `GET /api/v1/pods` lists (a `PodList` with `metadata.resourceVersion`, items filtered by
//!   `fieldSelector=spec.nodeName=...`); with `watch=true` it streams `ADDED`, `MODIFIED`,
//!   `DELETED` and (when asked) `BOOKMARK` events after the given `resourceVersion`, one
//!   JSON object per line, until `timeoutSeconds`. A `resourceVersion` older than the kept
//!   history gets the `ERROR` event with a `410 Expired` status that forces a client to re-list
//!   ([`KubeApi::compact`]).
//! - [`KubeApi::stop`]/[`KubeApi::start`]: refused connections, as when the API is down.
//! - [`KubeApi::kubeconfig`] writes a kubeconfig for it; [`KubeApi::requests`] tells what was
//!   asked.

mod serve;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The bearer token the server accepts.
pub const TOKEN: &str = "test-token-5f2c9e0b7a4d41c3";

/// One pod as the tests describe it.
#[derive(Debug, Clone)]
pub struct TestPod {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`: the last part of its log directory's name.
    pub uid: String,
    /// `spec.nodeName`.
    pub node: String,
    /// `metadata.labels`.
    pub labels: Vec<(String, String)>,
    /// `metadata.annotations`.
    pub annotations: Vec<(String, String)>,
}

impl TestPod {
    /// A pod with no labels or annotations.
    pub fn new(namespace: &str, name: &str, uid: &str, node: &str) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            node: node.into(),
            labels: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// With a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// With an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.into(), value.into()));
        self
    }

    /// `<pods_dir>/<namespace>_<name>_<uid>`: where the kubelet writes its logs.
    pub fn log_dir(&self, pods_dir: &Path) -> PathBuf {
        pods_dir.join(format!("{}_{}_{}", self.namespace, self.name, self.uid))
    }

    /// The pod as the API serves it, at `resource_version`.
    fn to_json(&self, resource_version: u64) -> Value {
        let map = |kv: &[(String, String)]| {
            Value::Object(
                kv.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        json!({
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "resourceVersion": resource_version.to_string(),
                "creationTimestamp": "2026-11-30T10:00:00Z",
                "labels": map(&self.labels),
                "annotations": map(&self.annotations),
            },
            "spec": {
                "nodeName": self.node,
                "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            },
            "status": {"phase": "Running"},
        })
    }
}

/// One change, as a watch streams it.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub resource_version: u64,
    pub kind: &'static str,
    pub node: String,
    pub object: Value,
}

pub(crate) struct State {
    pub resource_version: u64,
    pub pods: Vec<(TestPod, u64)>,
    /// Changes after `compacted_at`, in order.
    pub history: Vec<Change>,
    /// Watches from a resourceVersion before this get `410 Expired`.
    pub compacted_at: u64,
    pub forbidden: bool,
    pub requests: Vec<String>,
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub changes: broadcast::Sender<Change>,
    /// Every open watch ends when this fires (a dropped connection).
    pub end_watches: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server. Dropping it stops it.
pub struct KubeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    listener: Mutex<Option<serve::Listener>>,
    rt: tokio::runtime::Runtime,
}

impl KubeApi {
    /// Starts a server on a free port on 127.0.0.1.
    pub fn start_new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kube-api")
            .enable_all()
            .build()?;
        let (changes, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                resource_version: 100,
                pods: Vec::new(),
                history: Vec::new(),
                compacted_at: 100,
                forbidden: false,
                requests: Vec::new(),
            }),
            changes,
            end_watches: tokio::sync::watch::channel(0).0,
        });
        let (listener, addr) = serve::listen(
            &rt,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            shared.clone(),
        )?;
        Ok(Self {
            shared,
            addr,
            listener: Mutex::new(Some(listener)),
            rt,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Closes the listener and every connection: clients get "connection refused".
    pub fn stop(&self) {
        let l = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(l) = l {
            l.stop();
        }
    }

    /// Listens again on the same port. No-op when running.
    pub fn start(&self) -> std::io::Result<()> {
        let mut guard = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let (l, _) = serve::listen(&self.rt, self.addr, self.shared.clone())?;
            *guard = Some(l);
        }
        Ok(())
    }

    /// Writes a kubeconfig that reaches this server with [`TOKEN`] into `dir`; returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let ca = serve::fixture("ca.pem");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: logship\n  user:\n    token: {TOKEN}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: logship\ncurrent-context: test\n",
            self.url(),
            ca.display()
        );
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Adds a pod (an `ADDED` event).
    pub fn add_pod(&self, pod: TestPod) {
        self.change("ADDED", pod);
    }

    /// Replaces a pod's labels and annotations (a `MODIFIED` event).
    pub fn modify_pod(&self, pod: TestPod) {
        self.change("MODIFIED", pod);
    }

    /// Deletes a pod (a `DELETED` event).
    pub fn delete_pod(&self, uid: &str) {
        let pod = self
            .shared
            .lock()
            .pods
            .iter()
            .find(|(p, _)| p.uid == uid)
            .map(|(p, _)| p.clone());
        if let Some(pod) = pod {
            self.change("DELETED", pod);
        }
    }

    fn change(&self, kind: &'static str, pod: TestPod) {
        let mut s = self.shared.lock();
        s.resource_version += 1;
        let rv = s.resource_version;
        s.pods.retain(|(p, _)| p.uid != pod.uid);
        if kind != "DELETED" {
            s.pods.push((pod.clone(), rv));
        }
        let mut object = pod.to_json(rv);
        object["kind"] = json!("Pod");
        object["apiVersion"] = json!("v1");
        let change = Change {
            resource_version: rv,
            kind,
            node: pod.node.clone(),
            object,
        };
        s.history.push(change.clone());
        // Sent under the lock, so a watch that subscribes under it misses nothing.
        let _ = self.shared.changes.send(change);
    }

    /// Makes every call answer `403 Forbidden` (a missing role), or not.
    pub fn set_forbidden(&self, forbidden: bool) {
        self.shared.lock().forbidden = forbidden;
    }

    /// Forgets the history and ends every watch: a client's next watch from its last
    /// resourceVersion gets `410 Expired` and must list again.
    pub fn compact(&self) {
        {
            let mut s = self.shared.lock();
            // Other objects changed meanwhile and the store compacted past every watcher.
            s.resource_version += 1;
            s.compacted_at = s.resource_version;
            s.history.clear();
        }
        self.end_watches();
    }

    /// Ends every open watch (as a dropped connection does); history is kept.
    pub fn end_watches(&self) {
        self.shared.end_watches.send_modify(|n| *n += 1);
    }

    /// Every request so far: `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.stop();
    }
}
