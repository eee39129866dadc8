//! The pod watch: list then watch this node's pods through the Kubernetes API (kube-rs's
//! `watcher`, which resumes from the last `resourceVersion`, re-lists on `410 Gone` and asks
//! for bookmarks) and keep the [`PodCache`] up to date.
//!
//! The API is a helper, never a gate: when it cannot be reached, refuses us (401, 403 for a
//! missing role) or fails, the cache says [`ApiState::Failing`] so files are read at once with
//! their path labels; the reason is logged once (again only when it changes) and counted in
//! `logship_kubernetes_api_errors_total{reason}`; the watch retries with backoff and the
//! labels arrive when it answers.

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use prometheus::IntGauge;

use super::pods::{ApiState, PodCache};
use crate::backoff::Backoff;
use crate::context::ComponentContext;
use crate::error_chain::error_chain;

/// Where the API is and whose pods to watch.
pub struct WatchSettings {
    /// Only pods scheduled on this node.
    pub node_name: String,
    /// A kubeconfig file; `None` for the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
}

/// Why the API could not be used, as counted.
#[derive(Debug)]
struct Failure {
    reason: &'static str,
    detail: String,
}

/// Runs the watch until `ctx.shutdown`.
pub async fn run(cache: Arc<PodCache>, settings: WatchSettings, ctx: ComponentContext) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    let mut health = ApiHealth::default();
    let pods_gauge = ctx
        .metrics
        .kubernetes_pods_cached
        .with_label_values(&[&ctx.id]);
    loop {
        let client = match client(&settings).await {
            Ok(c) => c,
            Err(failure) => {
                health.failed(failure, &cache, &ctx);
                if sleep_or_shutdown(&ctx, backoff.next_delay()).await {
                    return;
                }
                continue;
            }
        };
        let api: Api<Pod> = Api::all(client);
        let config =
            watcher::Config::default().fields(&format!("spec.nodeName={}", settings.node_name));
        let mut stream = pin!(watcher::watcher(api, config));
        loop {
            let next = tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                None => break, // the watcher never ends; if it did, build a new one
                Some(Ok(event)) => {
                    if apply(&cache, event) {
                        backoff.reset();
                        health.answered(&cache, &ctx);
                    }
                    cache.expire();
                    set_gauge(&pods_gauge, &cache);
                }
                Some(Err(e)) => {
                    health.failed(classify(&e), &cache, &ctx);
                    if sleep_or_shutdown(&ctx, backoff.next_delay()).await {
                        return;
                    }
                }
            }
        }
    }
}

/// What has been said about the API: a failure is logged when its reason differs from the
/// last one, and a recovery once.
#[derive(Default)]
struct ApiHealth {
    last_failure: Option<&'static str>,
}

impl ApiHealth {
    fn failed(&mut self, failure: Failure, cache: &PodCache, ctx: &ComponentContext) {
        cache.set_api_state(ApiState::Failing);
        ctx.metrics
            .kubernetes_api_errors
            .with_label_values(&[&ctx.id, failure.reason])
            .inc();
        if self.last_failure != Some(failure.reason) {
            tracing::warn!(component = %ctx.id, reason = failure.reason, error = %failure.detail, "cannot watch pods through the Kubernetes API; lines ship with their path labels (namespace, pod, container) until it answers");
        }
        self.last_failure = Some(failure.reason);
    }

    fn answered(&mut self, cache: &PodCache, ctx: &ComponentContext) {
        if self.last_failure.take().is_some() {
            tracing::info!(component = %ctx.id, pods = cache.len(), "watching pods through the Kubernetes API again; new lines get their pods' labels");
        }
    }
}

/// Applies one watch event; true when it completed a (re-)list, i.e. the cache is in sync.
fn apply(cache: &PodCache, event: Event<Pod>) -> bool {
    match event {
        Event::Init => {
            cache.relist_started();
            false
        }
        Event::InitApply(pod) => {
            cache.apply(&pod);
            false
        }
        Event::InitDone => {
            cache.relist_done();
            true
        }
        Event::Apply(pod) => {
            cache.apply(&pod);
            cache.set_api_state(ApiState::Synced);
            true
        }
        Event::Delete(pod) => {
            cache.delete(&pod);
            cache.set_api_state(ApiState::Synced);
            true
        }
    }
}

fn set_gauge(gauge: &IntGauge, cache: &PodCache) {
    gauge.set(i64::try_from(cache.len()).unwrap_or(i64::MAX));
}

/// A client for the configured API: the kubeconfig's current context, or the in-cluster
/// service account.
async fn client(settings: &WatchSettings) -> Result<Client, Failure> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| Failure {
                reason: "config",
                detail: format!("kubeconfig {}: {}", path.display(), error_chain(&e)),
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Failure {
                    reason: "config",
                    detail: format!("kubeconfig {}: {}", path.display(), error_chain(&e)),
                })?
        }
        None => kube::Config::incluster().map_err(|e| Failure {
            reason: "config",
            detail: format!(
                "not in a cluster (no service account; set `kubeconfig` outside one): {}",
                error_chain(&e)
            ),
        })?,
    };
    Client::try_from(config).map_err(|e| Failure {
        reason: "config",
        detail: error_chain(&e),
    })
}

/// The counted reason of a watch error, and its text: the API's own status message when it
/// answered, the connection error otherwise.
fn classify(error: &watcher::Error) -> Failure {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s))
        | watcher::Error::WatchError(s) => Some(s),
        _ => None,
    };
    let Some(status) = status else {
        let reason = if matches!(error, watcher::Error::NoResourceVersion) {
            "other"
        } else {
            "unreachable"
        };
        return Failure {
            reason,
            detail: error_chain(error),
        };
    };
    let reason = match status.code {
        401 => "unauthorized",
        403 => "forbidden",
        410 => "gone",
        _ => "other",
    };
    let mut detail = format!("{} {}: {}", status.code, status.reason, status.message);
    if reason == "forbidden" {
        detail.push_str(" (the service account needs get, list and watch on pods: see deploy/kubernetes/clusterrole.yaml)");
    }
    Failure { reason, detail }
}

/// Sleeps `delay`; true if shutdown came first.
async fn sleep_or_shutdown(ctx: &ComponentContext, delay: Duration) -> bool {
    tokio::select! {
        _ = ctx.shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}
