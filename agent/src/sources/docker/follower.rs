//! Following one container: its logs stream in, chunks out.
//!
//! A follower reads the logs API (`follow`, `timestamps`, stdout and stderr, `since` the
//! container's position; through [`logs_stream`], many entries per read), hands every item to an [`Assembler`], and cuts a chunk every
//! [`MAX_CHUNK_LINES`](super::assembler::MAX_CHUNK_LINES) lines or [`FLUSH_AFTER`] after the
//! first line waiting, whichever is first. Each chunk carries a token of the container's
//! ledger holding the cursor after it. Sending waits while downstream is full: that wait is
//! the backpressure, and while it lasts Docker's stream is simply not read.

use std::pin::pin;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use futures::{FutureExt, Stream, StreamExt};
use prometheus::IntCounter;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::assembler::{Assembler, MultilineSpec};
use super::checkpoint::DockerCursor;
use super::logs_stream;
use crate::containers::StreamLabels;
use crate::pipeline::AckLedger;
use crate::pipeline::Chunk;

/// Longest a read line waits for more before its chunk is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// What to follow and where to resume.
pub struct FollowSpec {
    /// The daemon's address (`unix:///var/run/docker.sock`, `tcp://host:2375`).
    pub host: String,
    /// Full container id.
    pub id: String,
    /// Labels per stream.
    pub labels: [StreamLabels; 2],
    /// Where the previous reader of this container stopped.
    pub start: DockerCursor,
    /// The container's ledger (lives as long as the container is known).
    pub ledger: AckLedger<DockerCursor>,
    /// Longest line shipped; longer ones are cut.
    pub max_line_bytes: usize,
    /// Wait this long before connecting (a retry after an error).
    pub delay: Duration,
    /// Optional multi-line joining, and how long an open record waits for its next line.
    pub multiline: Option<(MultilineSpec, Duration)>,
}

/// Where a follower sends and what it counts.
#[derive(Clone)]
pub struct FollowIo {
    /// Into the source's output.
    pub tx: mpsc::Sender<Chunk>,
    /// Stops the follower (shutdown, lost daemon, rename).
    pub cancel: CancellationToken,
    /// Lines of this container.
    pub lines: IntCounter,
    /// Lines of this source.
    pub received_events: IntCounter,
    /// Line bytes of this source.
    pub received_bytes: IntCounter,
    /// Lines cut to `max_line_bytes`.
    pub truncated: IntCounter,
}

/// Why a follower stopped.
#[derive(Debug)]
pub enum FollowEnd {
    /// The log ended: the container stopped (or was removed).
    Eof,
    /// It was told to stop.
    Cancelled,
    /// The logs API failed.
    Failed(bollard::errors::Error),
    /// Nobody downstream takes chunks any more.
    Closed,
}

/// A finished follower's report.
#[derive(Debug)]
pub struct FollowOutcome {
    /// The container.
    pub id: String,
    /// Why it stopped.
    pub end: FollowEnd,
    /// The position after the last chunk it sent: where the next reader resumes.
    pub cursor: DockerCursor,
}

/// Follows a container through `docker` until its log ends, an error, or `io.cancel`.
pub async fn run(docker: Docker, spec: FollowSpec, io: FollowIo) -> FollowOutcome {
    let id = spec.id.clone();
    if !spec.delay.is_zero() {
        tokio::select! {
            _ = io.cancel.cancelled() => {
                return FollowOutcome { id, end: FollowEnd::Cancelled, cursor: spec.start };
            }
            _ = tokio::time::sleep(spec.delay) => {}
        }
    }
    let version = docker.client_version().to_string();
    let stream = logs_stream::logs(&spec.host, &version, &spec.id, spec.start.since_secs());
    let (ml, ml_timeout) = match &spec.multiline {
        Some((m, t)) => (Some(m), *t),
        None => (None, Duration::MAX),
    };
    let assembler = Assembler::new(spec.labels, spec.start, spec.max_line_bytes, ml);
    let (end, cursor) = follow_stream(stream, assembler, ml_timeout, &spec.ledger, &io).await;
    FollowOutcome { id, end, cursor }
}

/// The follow loop over any stream of logs API items (tests feed their own).
pub async fn follow_stream<S>(
    stream: S,
    mut asm: Assembler,
    record_timeout: Duration,
    ledger: &AckLedger<DockerCursor>,
    io: &FollowIo,
) -> (FollowEnd, DockerCursor)
where
    S: Stream<Item = Result<LogOutput, bollard::errors::Error>>,
{
    let mut stream = pin!(stream);
    let mut deadline: Option<Instant> = None;
    let mut record_deadline: Option<Instant> = None;
    let mut malformed_warned = false;
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        let item = tokio::select! {
            biased;
            _ = io.cancel.cancelled() => {
                // An open record stays out of the cursor and is read again whole.
                let end = flush(&mut asm, ledger, io).await.err().unwrap_or(FollowEnd::Cancelled);
                return (end, asm.cursor());
            }
            _ = tokio::time::sleep_until(record_deadline.unwrap_or(far)), if record_deadline.is_some() => {
                record_deadline = None;
                asm.flush_records();
                if deadline.is_none() && !asm.is_empty() {
                    deadline = Some(Instant::now() + FLUSH_AFTER);
                }
                continue;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                deadline = None;
                if let Err(end) = flush(&mut asm, ledger, io).await {
                    return (end, asm.cursor());
                }
                continue;
            }
            item = stream.next() => item,
        };
        // Take whatever else is already buffered without another trip through `select!`.
        let mut next = Some(item);
        while let Some(item) = next.take() {
            match item {
                Some(Ok(output)) => {
                    if let Err(e) = asm.push_output(output)
                        && !malformed_warned
                    {
                        malformed_warned = true;
                        tracing::warn!(error = %e, "skipping a log entry Docker sent without a timestamp");
                    }
                    if asm.is_full() {
                        deadline = None;
                        if let Err(end) = flush(&mut asm, ledger, io).await {
                            return (end, asm.cursor());
                        }
                    } else {
                        next = stream.next().now_or_never();
                    }
                }
                Some(Err(e)) => {
                    // Lines still missing pieces are re-read by the next follower.
                    let end = flush(&mut asm, ledger, io)
                        .await
                        .err()
                        .unwrap_or(FollowEnd::Failed(e));
                    return (end, asm.cursor());
                }
                None => {
                    asm.finish();
                    let end = flush(&mut asm, ledger, io)
                        .await
                        .err()
                        .unwrap_or(FollowEnd::Eof);
                    return (end, asm.cursor());
                }
            }
        }
        if asm.has_open_record() {
            record_deadline = Instant::now().checked_add(record_timeout);
        }
        if deadline.is_none() && !asm.is_empty() {
            deadline = Some(Instant::now() + FLUSH_AFTER);
        }
    }
}

/// Sends the ready lines as one chunk; `Err(Closed)` when nobody takes it.
async fn flush(
    asm: &mut Assembler,
    ledger: &AckLedger<DockerCursor>,
    io: &FollowIo,
) -> Result<(), FollowEnd> {
    let Some(ready) = asm.take() else {
        return Ok(());
    };
    let n = ready.events.len() as u64;
    io.lines.inc_by(n);
    io.received_events.inc_by(n);
    io.received_bytes.inc_by(ready.bytes as u64);
    if ready.truncated > 0 {
        io.truncated.inc_by(ready.truncated);
    }
    let chunk = Chunk {
        events: ready.events,
        ack: ledger.token(ready.cursor),
    };
    io.tx.send(chunk).await.map_err(|_| FollowEnd::Closed)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::pipeline::LabelSet;
    use crate::sources::docker::checkpoint::StreamPos;

    fn io(tx: mpsc::Sender<Chunk>) -> FollowIo {
        let c = || IntCounter::new("t", "t").unwrap();
        FollowIo {
            tx,
            cancel: CancellationToken::new(),
            lines: c(),
            received_events: c(),
            received_bytes: c(),
            truncated: c(),
        }
    }

    fn labels() -> [StreamLabels; 2] {
        let mk = |s: &str| StreamLabels {
            labels: LabelSet::new([("stream", s)]),
            metadata: Default::default(),
        };
        [mk("stdout"), mk("stderr")]
    }

    fn out(ns: u32, text: &str) -> Result<LogOutput, bollard::errors::Error> {
        Ok(LogOutput::StdOut {
            message: Bytes::from(format!("2026-11-22T20:30:32.{ns:09}Z {text}\n")),
        })
    }

    #[tokio::test]
    async fn chunks_carry_tokens_that_commit_the_cursor() {
        let (tx, mut rx) = mpsc::channel(16);
        let io = io(tx);
        let ledger = AckLedger::new(DockerCursor::default());
        let items: Vec<_> = (0..2500).map(|i| out(i, "x")).collect();
        let asm = Assembler::new(labels(), DockerCursor::default(), 1024, None);
        let (end, cursor) = follow_stream(
            futures::stream::iter(items),
            asm,
            Duration::MAX,
            &ledger,
            &io,
        )
        .await;
        assert!(matches!(end, FollowEnd::Eof));
        let mut sizes = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            sizes.push(chunk.events.len());
            chunk.ack.delivered();
        }
        assert_eq!(sizes, [1000, 1000, 500]);
        assert_eq!(io.lines.get(), 2500);
        assert_eq!(ledger.committed(), cursor);
        assert_eq!(
            cursor.stdout,
            StreamPos {
                ts: 1_795_379_432_000_002_499,
                n: 1
            }
        );
    }

    #[tokio::test]
    async fn a_quiet_stream_flushes_after_the_deadline() {
        let (tx, mut rx) = mpsc::channel(16);
        let io = io(tx);
        let ledger = AckLedger::new(DockerCursor::default());
        let stream = futures::stream::iter(vec![out(1, "a")]).chain(futures::stream::pending());
        let asm = Assembler::new(labels(), DockerCursor::default(), 1024, None);
        let cancel = io.cancel.clone();
        let task = tokio::spawn(async move {
            let r = follow_stream(stream, asm, Duration::MAX, &ledger, &io).await;
            r.0
        });
        let chunk = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&chunk.events[0].line[..], b"a");
        cancel.cancel();
        assert!(matches!(task.await.unwrap(), FollowEnd::Cancelled));
    }

    #[tokio::test]
    async fn an_error_keeps_unfinished_lines_out_of_the_cursor() {
        let (tx, mut rx) = mpsc::channel(16);
        let io = io(tx);
        let ledger = AckLedger::new(DockerCursor::default());
        let items = vec![
            out(1, "whole"),
            Ok(LogOutput::StdOut {
                message: Bytes::from_static(b"2026-11-22T20:30:32.000000002Z piece"),
            }),
            Err(bollard::errors::Error::RequestTimeoutError),
        ];
        let asm = Assembler::new(labels(), DockerCursor::default(), 1024, None);
        let (end, cursor) = follow_stream(
            futures::stream::iter(items),
            asm,
            Duration::MAX,
            &ledger,
            &io,
        )
        .await;
        assert!(matches!(end, FollowEnd::Failed(_)));
        assert_eq!(cursor.stdout.ts, 1_795_379_432_000_000_001);
        let chunk = rx.try_recv().unwrap();
        assert_eq!(chunk.events.len(), 1);
    }
}
