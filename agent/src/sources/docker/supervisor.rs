//! The daemon connection and the set of followed containers.
//!
//! A *session* is one connection to the daemon: subscribe to container events, list every
//! container, follow the ones that match (and drain stopped ones that have unread lines past
//! their checkpoint), then react to events and to followers finishing. When the events
//! stream breaks or the daemon stops answering pings the session ends: every follower is
//! stopped (each reports where it got to), the agent says so, waits with backoff and starts a
//! new session, which resumes every container from where its follower stopped. Nothing is
//! ever given up on silently.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use futures::StreamExt;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::assembler::MultilineSpec;
use super::checkpoint::{DockerCursor, LedgerRegistry};
use super::client;
use super::discovery::{self, ContainerEvent, ContainerFilter};
use super::follower::{self, FollowEnd, FollowIo, FollowOutcome, FollowSpec};
use crate::backoff::Backoff;
use crate::containers::{ContainerInfo, LabelPlan};
use crate::context::ComponentContext;
use crate::pipeline::Chunk;

/// How often the daemon is pinged while a session is up.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// A ping slower than this counts as a lost daemon.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that lasted this long resets the reconnect backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);
/// Pause before following a container again whose log ended while it still runs.
const REFOLLOW_DELAY: Duration = Duration::from_millis(200);

/// Everything the supervisor needs, fixed at build time.
pub struct SupervisorConfig {
    /// The daemon's address.
    pub host: String,
    /// Which containers to follow.
    pub filter: ContainerFilter,
    /// How attributes become labels.
    pub plan: LabelPlan,
    /// Longest line shipped.
    pub max_line_bytes: usize,
    /// Optional multi-line joining and its timeout.
    pub multiline: Option<(MultilineSpec, Duration)>,
}

/// The metric handles of this source, resolved once.
#[derive(Clone)]
struct SourceMetrics {
    watched: IntGauge,
    reconnects: IntCounter,
    api_errors: IntCounter,
    truncated: IntCounter,
    received_events: IntCounter,
    received_bytes: IntCounter,
}

/// One known container.
struct Tracked {
    info: Arc<ContainerInfo>,
    /// Where the last follower stopped: the next one resumes here (not at the committed
    /// cursor, which would resend what is in flight).
    read: DockerCursor,
    /// Set while a follower runs; cancelling it stops that follower.
    active: Option<CancellationToken>,
    /// Follow again as soon as the running follower stops (it was stopped for a rename).
    refollow: bool,
    /// The container was removed; forget it once its follower is done.
    destroyed: bool,
    /// Waits between retries after the logs API failed for this container.
    retry: Backoff,
    /// Its log cannot be read (a logging driver without read support): do not try again.
    unreadable: bool,
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    Lost(String),
}

/// Runs sessions until shutdown.
pub struct Supervisor {
    ctx: ComponentContext,
    cfg: SupervisorConfig,
    ledgers: LedgerRegistry,
    tx: mpsc::Sender<Chunk>,
    metrics: SourceMetrics,
    containers: HashMap<String, Tracked>,
    followers: JoinSet<FollowOutcome>,
    session_cancel: CancellationToken,
}

impl Supervisor {
    /// A supervisor sending chunks into `tx`, with the containers of a loaded checkpoint.
    pub fn new(
        ctx: ComponentContext,
        cfg: SupervisorConfig,
        ledgers: LedgerRegistry,
        tx: mpsc::Sender<Chunk>,
    ) -> Self {
        let id = ctx.id.to_string();
        let m = &ctx.metrics;
        let comp = m.component(&id);
        let metrics = SourceMetrics {
            watched: m.containers_watched.with_label_values(&[&id]),
            reconnects: m.docker_reconnects.with_label_values(&[&id]),
            api_errors: m.docker_api_errors.with_label_values(&[&id]),
            truncated: m.truncated_lines.with_label_values(&[&id]),
            received_events: comp.received_events,
            received_bytes: comp.received_bytes,
        };
        Self {
            ctx,
            cfg,
            ledgers,
            tx,
            metrics,
            containers: HashMap::new(),
            followers: JoinSet::new(),
            session_cancel: CancellationToken::new(),
        }
    }

    /// Connects, follows, reconnects; returns after shutdown once every follower stopped.
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut had_session = false;
        let shutdown = self.ctx.shutdown.clone();
        let component = self.ctx.id.to_string();
        while !shutdown.is_cancelled() {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = client::connect(&self.cfg.host) => r,
            };
            let docker = match connected {
                Ok(d) => d,
                Err(e) => {
                    self.metrics.api_errors.inc();
                    let wait = backoff.next_delay();
                    let reason =
                        format!("cannot reach the Docker daemon at {}: {e}", self.cfg.host);
                    tracing::warn!(component = %component, retry_in_ms = wait.as_millis() as u64, "{reason}");
                    self.ctx.health.set_problem(&component, reason);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            };
            if had_session {
                self.metrics.reconnects.inc();
                tracing::info!(component = %component, host = %self.cfg.host, "reconnected to the Docker daemon; resuming every container from where it stopped");
            } else {
                tracing::info!(component = %component, host = %self.cfg.host, "connected to the Docker daemon");
            }
            had_session = true;
            self.ctx.health.clear_problem(&component);
            let started = tokio::time::Instant::now();
            self.session_cancel = CancellationToken::new();
            let end = self.session(&docker).await;
            self.stop_followers().await;
            match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Lost(reason) => {
                    if started.elapsed() >= STABLE_SESSION {
                        backoff.reset();
                    }
                    let wait = backoff.next_delay();
                    let reason = format!("lost the Docker daemon at {}: {reason}", self.cfg.host);
                    tracing::warn!(component = %component, retry_in_ms = wait.as_millis() as u64, "{reason}; reconnecting");
                    self.ctx.health.set_problem(&component, reason);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        self.stop_followers().await;
        self.ctx.health.clear_problem(&component);
    }

    /// One connection's worth of following.
    async fn session(&mut self, docker: &Docker) -> SessionEnd {
        let shutdown = self.ctx.shutdown.clone();
        // Subscribe first (replaying a little history), then list: a container that starts
        // between the two is seen by one or the other.
        let since = unix_now_secs() - 2;
        let mut events = discovery::container_events(docker, since);
        if let Err(reason) = self.reconcile(docker).await {
            return SessionEnd::Lost(reason);
        }
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return SessionEnd::Shutdown,
                ev = events.next() => match ev {
                    Some(Ok(msg)) => {
                        if let Some(ev) = ContainerEvent::from_message(&msg) {
                            self.on_event(docker, ev).await;
                        }
                    }
                    Some(Err(e)) => {
                        self.metrics.api_errors.inc();
                        return SessionEnd::Lost(format!("events stream failed: {e}"));
                    }
                    None => return SessionEnd::Lost("events stream ended".to_owned()),
                },
                Some(done) = self.followers.join_next() => {
                    match done {
                        Ok(outcome) => self.on_follower_end(docker, outcome, true).await,
                        Err(e) => tracing::error!(error = %e, "a container follower task failed"),
                    }
                }
                _ = ping.tick() => {
                    match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            self.metrics.api_errors.inc();
                            return SessionEnd::Lost(format!("ping failed: {e}"));
                        }
                        Err(_) => {
                            self.metrics.api_errors.inc();
                            return SessionEnd::Lost("ping timed out".to_owned());
                        }
                    }
                }
            }
        }
    }

    /// Lists every container: follows the matching running ones, drains stopped ones known
    /// from a checkpoint, forgets checkpoints of containers that no longer exist.
    async fn reconcile(&mut self, docker: &Docker) -> Result<(), String> {
        let listed = discovery::list_all(docker).await.map_err(|e| {
            self.metrics.api_errors.inc();
            format!("listing containers failed: {e}")
        })?;
        let present: HashSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
        for id in self.ledgers.ids() {
            if !present.contains(id.as_str()) {
                tracing::debug!(container_id = %id, "container no longer exists; dropping its checkpoint");
                self.ledgers.remove(&id);
                self.containers.remove(&id);
            }
        }
        let known: HashSet<String> = self.ledgers.ids().into_iter().collect();
        for l in &listed {
            if self.cfg.filter.rejects(&l.info).is_some() {
                continue;
            }
            if l.running || known.contains(&l.id) {
                self.follow(docker, &l.id, Duration::ZERO).await;
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, docker: &Docker, ev: ContainerEvent) {
        match ev {
            ContainerEvent::Start(id) => self.follow(docker, &id, Duration::ZERO).await,
            ContainerEvent::Die(id) => {
                tracing::debug!(container_id = %id, "container stopped; reading its log to the end");
            }
            ContainerEvent::Destroy(id) => {
                let Some(t) = self.containers.get_mut(&id) else {
                    self.ledgers.remove(&id);
                    return;
                };
                t.destroyed = true;
                if t.active.is_none() {
                    self.forget(&id);
                }
            }
            ContainerEvent::Rename(id, name) => {
                let Some(t) = self.containers.get_mut(&id) else {
                    // Maybe the new name matches the filter.
                    self.follow(docker, &id, Duration::ZERO).await;
                    return;
                };
                if t.info.name == name {
                    return;
                }
                tracing::info!(container_id = %id, old = %t.info.name, new = %name, "container renamed; relabelling its lines");
                match &t.active {
                    Some(cancel) => {
                        t.refollow = true;
                        cancel.cancel();
                    }
                    None => {
                        let mut info = (*t.info).clone();
                        info.name = name;
                        t.info = Arc::new(info);
                    }
                }
            }
        }
    }

    /// Starts a follower for `id` unless one runs: inspects it (name, labels, TTY), checks
    /// the filter, and resumes where the last reader stopped.
    async fn follow(&mut self, docker: &Docker, id: &str, delay: Duration) {
        if let Some(t) = self.containers.get(id)
            && (t.active.is_some() || t.unreadable)
        {
            return;
        }
        let inspected = match docker.inspect_container(id, None).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => {
                self.forget(id);
                return;
            }
            Err(e) => {
                self.metrics.api_errors.inc();
                tracing::warn!(container_id = %id, error = %e, "inspecting container failed; it is retried at the next event or reconnect");
                return;
            }
        };
        let Some(info) = ContainerInfo::from_inspect(&inspected) else {
            return;
        };
        if let Some(why) = self.cfg.filter.rejects(&info) {
            tracing::debug!(container = %info.name, reason = why, "not following container");
            if self.containers.get(id).is_some_and(|t| t.active.is_none()) {
                self.containers.remove(id);
            }
            return;
        }
        let ledgers = &self.ledgers;
        let t = self
            .containers
            .entry(id.to_owned())
            .or_insert_with(|| Tracked {
                info: Arc::new(info.clone()),
                read: ledgers.committed(id).unwrap_or_default(),
                active: None,
                refollow: false,
                destroyed: false,
                retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
                unreadable: false,
            });
        t.info = Arc::new(info);
        let cancel = self.session_cancel.child_token();
        t.active = Some(cancel.clone());
        t.refollow = false;
        let spec = FollowSpec {
            host: self.cfg.host.clone(),
            id: id.to_owned(),
            labels: self.cfg.plan.both_streams(&t.info),
            // The idle stream of a one-stream container would otherwise keep `since` at 0
            // and make every re-follow read the whole log again (see `STREAM_SKEW_NS`).
            start: t.read.with_skew_floor(),
            ledger: self.ledgers.ledger(id, &t.info.name),
            max_line_bytes: self.cfg.max_line_bytes,
            delay,
            multiline: self.cfg.multiline.clone(),
        };
        let comp = self.ctx.id.to_string();
        let io = FollowIo {
            tx: self.tx.clone(),
            cancel,
            lines: self
                .ctx
                .metrics
                .container_lines
                .with_label_values(&[comp.as_str(), t.info.name.as_str()]),
            received_events: self.metrics.received_events.clone(),
            received_bytes: self.metrics.received_bytes.clone(),
            truncated: self.metrics.truncated.clone(),
        };
        tracing::info!(container = %t.info.name, container_id = %id, since = spec.start.since_secs(), "following container");
        self.followers
            .spawn(follower::run(docker.clone(), spec, io));
        self.update_watched();
    }

    async fn on_follower_end(&mut self, docker: &Docker, outcome: FollowOutcome, alive: bool) {
        let FollowOutcome { id, end, cursor } = outcome;
        let Some(t) = self.containers.get_mut(&id) else {
            return;
        };
        t.read = cursor;
        t.active = None;
        let refollow = std::mem::take(&mut t.refollow);
        let destroyed = t.destroyed;
        let name = t.info.name.clone();
        self.update_watched();
        match end {
            FollowEnd::Closed => {}
            FollowEnd::Cancelled => {
                if alive && refollow {
                    self.follow(docker, &id, Duration::ZERO).await;
                }
            }
            FollowEnd::Eof => {
                if let Some(t) = self.containers.get_mut(&id) {
                    t.retry.reset();
                }
                if destroyed {
                    self.forget(&id);
                    return;
                }
                if !alive {
                    return;
                }
                match docker.inspect_container(&id, None).await {
                    Ok(r) if r.state.as_ref().and_then(|s| s.running).unwrap_or(false) => {
                        // Restarted while we were finishing the previous run's log.
                        self.follow(docker, &id, REFOLLOW_DELAY).await;
                    }
                    Ok(_) => {
                        tracing::info!(container = %name, "container stopped; its log was read to the end");
                    }
                    Err(e) if is_not_found(&e) => self.forget(&id),
                    Err(e) => {
                        self.metrics.api_errors.inc();
                        tracing::warn!(container = %name, error = %e, "inspecting a stopped container failed");
                    }
                }
            }
            FollowEnd::Failed(e) => {
                self.metrics.api_errors.inc();
                if is_not_found(&e) {
                    self.forget(&id);
                } else if is_unreadable(&e) {
                    if let Some(t) = self.containers.get_mut(&id) {
                        t.unreadable = true;
                    }
                    tracing::warn!(container = %name, error = %e, "the container's logging driver cannot be read through the API; not following it");
                } else if alive {
                    let wait = self
                        .containers
                        .get_mut(&id)
                        .map(|t| t.retry.next_delay())
                        .unwrap_or(Duration::from_secs(1));
                    tracing::warn!(container = %name, error = %e, retry_in_ms = wait.as_millis() as u64, "reading container logs failed; retrying");
                    self.follow(docker, &id, wait).await;
                }
            }
        }
    }

    /// Stops every follower and records where each got to.
    async fn stop_followers(&mut self) {
        self.session_cancel.cancel();
        while let Some(done) = self.followers.join_next().await {
            if let Ok(outcome) = done
                && let Some(t) = self.containers.get_mut(&outcome.id)
            {
                t.read = outcome.cursor;
                t.active = None;
                t.refollow = false;
            }
        }
        self.update_watched();
    }

    /// Drops a removed container and its checkpoint: its log is gone with it.
    fn forget(&mut self, id: &str) {
        self.containers.remove(id);
        self.ledgers.remove(id);
    }

    fn update_watched(&self) {
        let n = self
            .containers
            .values()
            .filter(|t| t.active.is_some())
            .count();
        self.metrics.watched.set(n as i64);
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Docker answers 501 when the logging driver has no read support (`none`, `syslog`, ...).
fn is_unreadable(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 501 || message.contains("does not support reading"),
        _ => false,
    }
}

fn unix_now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
