//! What the running agent waits for: a request to stop, or a config worth reloading.
//!
//! [`Triggers`] listens for SIGTERM and SIGINT (stop), SIGHUP (reload) and, with
//! `--watch-config`, changes to the config files (reload). [`Triggers::next`] turns them into
//! one [`Next`]: a reload request re-reads and validates the files first, so a config with a
//! mistake is reported (file, line and column), counted in
//! `logship_config_reloads_total{result="error"}`, and never stops the running pipeline; an
//! unchanged config is a no-op (`result="unchanged"`). Only a valid, changed config comes
//! back as [`Next::Reload`]. Signals that arrive while a reload is under way are kept by the
//! signal streams and looked at afterwards, so a burst of SIGHUPs costs at most one more
//! read of the files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use logship_config::LoadedConfig;
use notify::{RecursiveMode, Watcher};
use prometheus::IntCounterVec;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

/// What to do after the current pipeline.
pub enum Next {
    /// SIGTERM or SIGINT: flush and exit.
    Stop,
    /// A valid config that differs from the running one.
    Reload(Box<LoadedConfig>),
}

/// Edits within this long of each other are one change (editors write a file in steps).
const WATCH_SETTLE: Duration = Duration::from_millis(300);

/// The agent's stop and reload triggers. Create it before the pipeline starts: from then on
/// SIGHUP no longer ends the process.
pub struct Triggers {
    paths: Vec<PathBuf>,
    term: Signal,
    hup: Signal,
    watched: Option<mpsc::Receiver<()>>,
    /// Kept alive for as long as the files are watched.
    _watcher: Option<notify::RecommendedWatcher>,
    reloads: IntCounterVec,
}

impl Triggers {
    /// Installs the signal handlers and, when `watch` is set, watches `paths`.
    pub fn new(paths: &[PathBuf], watch: bool, reloads: IntCounterVec) -> std::io::Result<Self> {
        let (watcher, watched) = if watch {
            let (watcher, rx) = watch_files(paths)?;
            (Some(watcher), Some(rx))
        } else {
            (None, None)
        };
        Ok(Self {
            paths: paths.to_vec(),
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            watched,
            _watcher: watcher,
            reloads,
        })
    }

    /// Waits for a stop request or for a valid, changed config. `running` is the config the
    /// pipeline runs now.
    pub async fn next(&mut self, running: &LoadedConfig) -> Next {
        loop {
            let why = tokio::select! {
                _ = self.term.recv() => return Next::Stop,
                _ = tokio::signal::ctrl_c() => return Next::Stop,
                _ = self.hup.recv() => "SIGHUP",
                Some(()) = recv_settled(&mut self.watched) => "a config file changed",
            };
            match logship_config::load_files(&self.paths) {
                Err(e) => {
                    self.reloads.with_label_values(&["error"]).inc();
                    tracing::error!(
                        trigger = why,
                        "the new config is not valid; the running pipeline goes on unchanged:\n{:?}",
                        miette::Report::new(e)
                    );
                }
                Ok(loaded) if loaded.config.same_pipeline(&running.config) => {
                    self.reloads.with_label_values(&["unchanged"]).inc();
                    tracing::info!(trigger = why, "config unchanged; nothing to reload");
                }
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        tracing::warn!("{w}");
                    }
                    tracing::info!(trigger = why, "reloading the config");
                    return Next::Reload(Box::new(loaded));
                }
            }
        }
    }
}

/// The next settled change of the watched files; never, when nothing is watched.
async fn recv_settled(watched: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    let Some(rx) = watched else {
        return std::future::pending().await;
    };
    rx.recv().await?;
    // Let the editor finish, and fold the events it caused into this one.
    tokio::time::sleep(WATCH_SETTLE).await;
    while rx.try_recv().is_ok() {}
    Some(())
}

/// Watches the directories of `paths` (editors replace a file by renaming a new one over it,
/// which a watch on the file itself would miss) and sends `()` for events that touch one of
/// the files.
fn watch_files(
    paths: &[PathBuf],
) -> std::io::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(16);
    let names: Vec<PathBuf> = paths.iter().map(|p| absolute(p)).collect();
    let wanted = names.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let touches = match &event {
            Ok(e) => e.paths.iter().any(|p| wanted.iter().any(|w| w == p)),
            // Lost events: look anyway.
            Err(_) => true,
        };
        if touches {
            let _ = tx.try_send(());
        }
    })
    .map_err(std::io::Error::other)?;
    let mut dirs: Vec<&Path> = names.iter().filter_map(|p| p.parent()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(std::io::Error::other)?;
    }
    Ok((watcher, rx))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
