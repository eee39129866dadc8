//! The stdin source: lines piped into the agent (a sidecar's `app | logship`).
//!
//! There is nothing to resume from, so its chunks carry untracked tokens. When standard
//! input closes the source finishes, and once every source has finished the agent flushes its
//! sinks and exits. An input that cannot be read (a read error, not the end) is a failure:
//! the harness reports it and the agent exits non-zero once everything is flushed.

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use logship_config::schema::StdinSourceConfig;
use logship_parsers::lines::LineSplitter;
use logship_parsers::multiline::MultilineAggregator;

use super::harness::Source;
use crate::checkpoints::Checkpointing;
use crate::context::ComponentContext;
use crate::pipeline::{AckToken, Chunk, Event, Fanout, LabelSet};

/// The stdin source could not start.
#[derive(Debug, thiserror::Error)]
pub enum StdinSourceError {
    /// The multiline start pattern does not compile.
    #[error("invalid multiline start_pattern: {0}")]
    Multiline(#[from] regex::Error),
    /// The reading thread could not be started.
    #[error("stdin reader thread failed: {0}")]
    Thread(String),
    /// Standard input could not be read.
    #[error("reading standard input failed: {0}")]
    Read(#[source] std::io::Error),
}

/// Reads standard input until it closes.
pub struct StdinSource {
    config: StdinSourceConfig,
    ctx: ComponentContext,
    labels: LabelSet,
}

impl StdinSource {
    /// Checks the config.
    pub fn new(
        config: &StdinSourceConfig,
        ctx: ComponentContext,
    ) -> Result<Self, StdinSourceError> {
        if let Some(m) = &config.multiline {
            regex::bytes::Regex::new(&m.start_pattern)?;
        }
        Ok(Self {
            labels: LabelSet::new(config.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            config: config.clone(),
            ctx,
        })
    }
}

impl Source for StdinSource {
    type Checkpoint = ();
    type Error = StdinSourceError;

    fn checkpointing(&self) -> Option<Checkpointing<()>> {
        None
    }

    /// Reads until end of input or shutdown.
    async fn read(self, mut out: Fanout) -> Result<(), StdinSourceError> {
        // Blocking reads of a pipe live on their own thread, feeding a small bounded channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Event>, std::io::Error>>(4);
        let max = self.config.max_line_bytes;
        let labels = self.labels.clone();
        let mut multiline = match &self.config.multiline {
            Some(m) => Some(MultilineAggregator::new(
                regex::bytes::Regex::new(&m.start_pattern)?,
                m.max_lines,
                max,
            )),
            None => None,
        };
        let truncated = self
            .ctx
            .metrics
            .truncated_lines
            .with_label_values(&[&self.ctx.id]);
        std::thread::Builder::new()
            .name(format!("stdin-{}", self.ctx.id))
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                let mut splitter = LineSplitter::new(max);
                let mut buf = BytesMut::with_capacity(128 * 1024);
                loop {
                    let len = buf.len();
                    buf.resize(len + 64 * 1024, 0);
                    // A read error ends the input like its end does, then is reported.
                    let (n, failure) = match stdin.read(&mut buf[len..]) {
                        Ok(n) => (n, None),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                            buf.truncate(len);
                            continue;
                        }
                        Err(e) => (0, Some(e)),
                    };
                    buf.truncate(len + n);
                    let now = now_ns();
                    let mut events = Vec::new();
                    let mut push = |line: bytes::Bytes, was_truncated: bool| {
                        if was_truncated {
                            truncated.inc();
                        }
                        match &mut multiline {
                            Some(m) => {
                                if let Some(r) = m.push(line, 0) {
                                    events.push(Event::new(now, r.line, labels.clone()));
                                }
                            }
                            None => events.push(Event::new(now, line, labels.clone())),
                        }
                    };
                    if n == 0 {
                        splitter.finish(&mut buf, |l| push(l.line, l.truncated));
                        if let Some(r) = multiline.as_mut().and_then(|m| m.flush()) {
                            events.push(Event::new(now, r.line, labels.clone()));
                        }
                        let _ = tx.blocking_send(Ok(events));
                        if let Some(e) = failure {
                            let _ = tx.blocking_send(Err(e));
                        }
                        return;
                    }
                    splitter.split(&mut buf, |l| push(l.line, l.truncated));
                    if !events.is_empty() && tx.blocking_send(Ok(events)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| StdinSourceError::Thread(e.to_string()))?;
        let metrics = self.ctx.metrics.component(&self.ctx.id);
        loop {
            let events = tokio::select! {
                e = rx.recv() => e,
                _ = self.ctx.shutdown.cancelled() => None,
            };
            let events = match events {
                None => break,
                Some(Ok(events)) => events,
                Some(Err(e)) => return Err(StdinSourceError::Read(e)),
            };
            let bytes: usize = events.iter().map(|e| e.line.len()).sum();
            metrics.received_events.inc_by(events.len() as u64);
            metrics.received_bytes.inc_by(bytes as u64);
            metrics.sent_events.inc_by(events.len() as u64);
            metrics.sent_bytes.inc_by(bytes as u64);
            let chunk = Chunk {
                events,
                ack: AckToken::untracked(),
            };
            if out.send(chunk).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
