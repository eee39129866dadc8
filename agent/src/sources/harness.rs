//! The source harness: everything a source does besides reading.
//!
//! A [`Source`] only reads and emits chunks, each with a token from its ledgers. [`run`] owns
//! the rest of its life, the same way for every source:
//!
//! 1. **Checkpoint writer.** When the source has a position to keep
//!    ([`Source::checkpointing`]), a writer stores it soon after acknowledgements arrive
//!    (see [`crate::checkpoints`] for the cadence).
//! 2. **Shutdown order.** `ctx.shutdown` stops reading; the source returns and its output
//!    closes, so the transforms and sinks downstream drain; the writer waits until the
//!    source's chunks have settled (or `ctx.drained` says the sinks are gone) and writes the
//!    final checkpoint; only then does [`run`] return. A source cannot get this order wrong,
//!    because it never sees the writer.
//! 3. **Failure.** A read that returns an error, or panics, is logged, counted in
//!    `logship_component_errors_total{component}`, and raised in `/ready` (503 naming the
//!    source and the reason). [`run`] reports it as [`SourceExit::Failed`]; the agent exits
//!    non-zero once every source has ended and one of them failed.
//!
//! A new source is a reader plus a checkpoint type:
//!
//! ```
//! use logship_agent::checkpoints::Checkpointing;
//! use logship_agent::context::ComponentContext;
//! use logship_agent::pipeline::{AckToken, Chunk, Event, Fanout, LabelSet};
//! use logship_agent::sources::harness::{self, Source, SourceExit};
//!
//! /// Emits one line and ends.
//! struct Hello;
//!
//! impl Source for Hello {
//!     type Checkpoint = ();
//!     type Error = std::io::Error;
//!
//!     fn checkpointing(&self) -> Option<Checkpointing<()>> {
//!         None // nothing to resume from
//!     }
//!
//!     async fn read(self, mut out: Fanout) -> Result<(), std::io::Error> {
//!         let event = Event::new(0, "hello".into(), LabelSet::new([("job", "demo")]));
//!         let chunk = Chunk { events: vec![event], ack: AckToken::untracked() };
//!         out.send(chunk).await.map_err(std::io::Error::other)
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let ctx = ComponentContext::for_test("hello", std::env::temp_dir());
//! let exit = harness::run(Hello, ctx, Fanout::new(Vec::new())).await;
//! assert_eq!(exit, SourceExit::Finished);
//! # });
//! ```

use std::future::Future;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::checkpoints::{self, Cadence, Checkpointing};
use crate::context::ComponentContext;
use crate::error_chain::error_chain;
use crate::pipeline::Fanout;

/// A component that reads log lines and emits chunks.
///
/// `read` runs until `ctx.shutdown` (the context it was built with) is cancelled, or its input
/// ends (stdin closed), sending chunks through `out`; waiting in `out.send` is the
/// backpressure. Returning drops `out`, which lets the pipeline downstream drain.
pub trait Source: Send + 'static {
    /// What the source checkpoints; `()` for a source with nothing to resume from.
    type Checkpoint: Serialize + PartialEq + Send + 'static;
    /// Why reading stopped before it was asked to.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The file and snapshot of the source's acknowledged position, or `None`.
    fn checkpointing(&self) -> Option<Checkpointing<Self::Checkpoint>>;

    /// Reads until shutdown or the end of the input.
    fn read(self, out: Fanout) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// How a source's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceExit {
    /// Asked to stop, or its input ended.
    Finished,
    /// It stopped on its own with this error (or panicked).
    Failed(String),
}

/// Runs `source` under `ctx` with its output `out`, in the order the module docs describe.
/// Returns once reading has stopped and the final checkpoint is written.
pub async fn run<S: Source>(source: S, ctx: ComponentContext, out: Fanout) -> SourceExit {
    let reading_done = CancellationToken::new();
    let writer = source.checkpointing().map(|checkpointing| {
        tokio::spawn(checkpoints::run_writer(
            checkpointing,
            Cadence::default(),
            ctx.acks.clone(),
            reading_done.clone(),
            ctx.drained.clone(),
            ctx.metrics.clone(),
        ))
    });
    // Its own task, so that a panic is caught and reported like an error.
    let exit = match tokio::spawn(source.read(out)).await {
        Ok(Ok(())) => SourceExit::Finished,
        Ok(Err(e)) => SourceExit::Failed(error_chain(&e)),
        Err(e) if e.is_panic() => SourceExit::Failed(format!("panicked: {}", panic_text(e))),
        Err(e) => SourceExit::Failed(e.to_string()),
    };
    if let SourceExit::Failed(reason) = &exit {
        report_failure(&ctx, reason);
    }
    reading_done.cancel();
    if let Some(writer) = writer
        && let Err(e) = writer.await
    {
        tracing::error!(component = %ctx.id, error = %e, "checkpoint writer failed");
    }
    exit
}

fn report_failure(ctx: &ComponentContext, reason: &str) {
    let id = &*ctx.id;
    tracing::error!(component = %id, error = %reason, "source stopped with an error; it reads nothing more until the agent restarts");
    ctx.metrics.component_errors.with_label_values(&[id]).inc();
    ctx.health
        .set_problem(id, format!("source stopped: {reason}"));
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoints::{CheckpointFile, Snapshot};
    use crate::pipeline::{AckLedger, Chunk};
    use std::time::Duration;

    struct Failing;

    impl Source for Failing {
        type Checkpoint = ();
        type Error = std::io::Error;
        fn checkpointing(&self) -> Option<Checkpointing<()>> {
            None
        }
        async fn read(self, _out: Fanout) -> Result<(), std::io::Error> {
            Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "cannot read /nowhere",
            ))
        }
    }

    struct Panicking;

    impl Source for Panicking {
        type Checkpoint = ();
        type Error = std::io::Error;
        fn checkpointing(&self) -> Option<Checkpointing<()>> {
            None
        }
        async fn read(self, _out: Fanout) -> Result<(), std::io::Error> {
            panic!("boom")
        }
    }

    #[tokio::test]
    async fn a_failed_source_is_reported_everywhere() {
        let ctx = ComponentContext::for_test("broken", std::env::temp_dir());
        let exit = run(Failing, ctx.clone(), Fanout::new(Vec::new())).await;
        assert_eq!(exit, SourceExit::Failed("cannot read /nowhere".into()));
        assert_eq!(
            ctx.health.problems(),
            ["broken: source stopped: cannot read /nowhere"]
        );
        assert_eq!(
            ctx.metrics
                .component_errors
                .with_label_values(&["broken"])
                .get(),
            1
        );
        assert_eq!(ctx.metrics.ready.get(), 0);
    }

    #[tokio::test]
    async fn a_panic_is_a_failure() {
        let ctx = ComponentContext::for_test("p", std::env::temp_dir());
        let exit = run(Panicking, ctx.clone(), Fanout::new(Vec::new())).await;
        assert_eq!(exit, SourceExit::Failed("panicked: boom".into()));
        assert_eq!(ctx.health.problems().len(), 1);
    }

    /// Emits two chunks, one delivered downstream only after the source returned.
    struct Counting {
        ledger: AckLedger<u64>,
        file: CheckpointFile,
    }

    impl Source for Counting {
        type Checkpoint = u64;
        type Error = std::io::Error;
        fn checkpointing(&self) -> Option<Checkpointing<u64>> {
            let ledger = self.ledger.clone();
            Some(Checkpointing {
                file: self.file.clone(),
                snapshot: Box::new(move || Snapshot {
                    value: ledger.committed(),
                    in_flight: ledger.in_flight(),
                }),
            })
        }
        async fn read(self, mut out: Fanout) -> Result<(), std::io::Error> {
            for cursor in [100, 200] {
                let chunk = Chunk {
                    events: Vec::new(),
                    ack: self.ledger.token(cursor),
                };
                out.send(chunk).await.map_err(std::io::Error::other)?;
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_final_checkpoint_waits_for_the_sinks() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ComponentContext::for_test("files", dir.path());
        let file = CheckpointFile::new(dir.path(), "c.json");
        let ledger = AckLedger::watched(0u64, ctx.acks.clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let source = Counting {
            ledger: ledger.clone(),
            file: file.clone(),
        };
        let harness = tokio::spawn(run(source, ctx, Fanout::new(vec![tx])));
        // A slow sink: settles after the source has returned.
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert!(
            rx.recv().await.is_none(),
            "the output closed when reading ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!harness.is_finished(), "waits for the chunks in flight");
        first.ack.delivered();
        second.ack.delivered();
        let exit = tokio::time::timeout(Duration::from_secs(5), harness)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(exit, SourceExit::Finished);
        assert_eq!(file.load::<u64>().unwrap(), Some(200));
    }
}
