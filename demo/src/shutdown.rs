//! Graceful shutdown: SIGTERM or Ctrl-C flips one flag every task watches, so the API stops
//! accepting, the relay and worker finish what they hold, and spans are flushed before exit.

use tokio::sync::watch;

/// A cloneable handle that resolves once shutdown has begun.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The side that starts the shutdown.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A new trigger and its handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Begins the shutdown.
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    /// Begins the shutdown on SIGTERM or SIGINT.
    pub async fn on_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        self.trigger();
    }
}

impl Shutdown {
    /// Resolves once shutdown has begun (at once if it already has).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger is gone, which only happens at exit: treat it as shutdown.
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Whether shutdown has begun.
    pub fn is_down(&self) -> bool {
        *self.rx.borrow()
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_resolves_after_trigger_and_stays_resolved() {
        let (t, s) = channel();
        assert!(!s.is_down());
        t.trigger();
        s.wait().await;
        s.clone().wait().await;
        assert!(s.is_down());
    }
}
