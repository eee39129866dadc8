//! The job queue as a Redis stream with a consumer group: `XADD` to publish, `XREADGROUP` to
//! receive, `XACK` + `XDEL` once handled. A job read but never acknowledged stays in the
//! group's pending list; a restarted worker (same consumer name) reads its own pending jobs
//! first, and `XAUTOCLAIM` hands jobs idle longer than the visibility timeout to whoever asks,
//! so a job of a worker that died for good is not lost either.
//!
//! Connections are made lazily and re-made by `ConnectionManager`, so the API starts and keeps
//! accepting orders while Redis is down; the relay simply retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply,
};
use tokio::sync::{Mutex, OnceCell};

use super::{Delivery, Job, JobQueue, QueueError, decode_job, encode_job};

/// How long a blocking read waits for new jobs.
const BLOCK: Duration = Duration::from_secs(1);

/// How often idle pending jobs are looked for.
const RECLAIM_EVERY: Duration = Duration::from_secs(5);

/// A queue in a Redis stream.
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    /// Short commands: publish, ack, claim.
    commands: Arc<OnceCell<ConnectionManager>>,
    /// Blocking reads, kept apart so they do not hold up acks on the shared connection.
    reads: Arc<OnceCell<ConnectionManager>>,
    stream: String,
    group: String,
    consumer: String,
    visibility: Duration,
    state: Arc<Mutex<ReadState>>,
}

struct ReadState {
    /// Read this consumer's own pending jobs before new ones: set at start, when the pending
    /// list holds what a previous run of this worker left unfinished.
    own_pending_first: bool,
    /// When idle jobs were last claimed.
    last_reclaim: Instant,
    /// Whether the consumer group is known to exist.
    group_ready: bool,
}

impl RedisQueue {
    /// A queue on `stream` read by `consumer` in `group`. Only parses the URL: nothing
    /// connects until the first command.
    pub fn new(
        url: &str,
        stream: &str,
        group: &str,
        consumer: &str,
        visibility: Duration,
    ) -> Result<Self, QueueError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            commands: Arc::new(OnceCell::new()),
            reads: Arc::new(OnceCell::new()),
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            visibility,
            state: Arc::new(Mutex::new(ReadState {
                own_pending_first: true,
                last_reclaim: Instant::now(),
                group_ready: false,
            })),
        })
    }

    async fn connection(
        &self,
        cell: &OnceCell<ConnectionManager>,
    ) -> Result<ConnectionManager, QueueError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(4)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = cell
            .get_or_try_init(|| self.client.get_connection_manager_with_config(config))
            .await?;
        Ok(conn.clone())
    }

    async fn ensure_group(&self, state: &mut ReadState) -> Result<(), QueueError> {
        if state.group_ready {
            return Ok(());
        }
        let mut conn = self.connection(&self.commands).await?;
        let created: Result<(), redis::RedisError> = conn
            .xgroup_create_mkstream(&self.stream, &self.group, "0")
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        state.group_ready = true;
        Ok(())
    }

    /// Turns stream entries into deliveries; entries that are not jobs are acknowledged and
    /// dropped with an error line (they would otherwise come back forever).
    async fn deliveries(&self, entries: Vec<StreamId>) -> Result<Vec<Delivery>, QueueError> {
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let job = entry.get::<String>("body").as_deref().and_then(decode_job);
            match job {
                Some(job) => out.push(Delivery {
                    job,
                    receipt: entry.id,
                }),
                None => {
                    tracing::error!(entry_id = %entry.id, "stream entry is not a job; dropping it");
                    self.ack_id(&entry.id).await?;
                }
            }
        }
        Ok(out)
    }

    async fn ack_id(&self, id: &str) -> Result<(), QueueError> {
        let mut conn = self.connection(&self.commands).await?;
        let _: usize = conn.xack(&self.stream, &self.group, &[id]).await?;
        let _: usize = conn.xdel(&self.stream, &[id]).await?;
        Ok(())
    }

    async fn read(&self, max: usize, state: &mut ReadState) -> Result<Vec<StreamId>, QueueError> {
        if state.own_pending_first {
            // "0": this consumer's pending entries, without blocking.
            let opts = StreamReadOptions::default()
                .group(&self.group, &self.consumer)
                .count(max);
            let mut conn = self.connection(&self.commands).await?;
            let reply: Option<StreamReadReply> =
                conn.xread_options(&[&self.stream], &["0"], &opts).await?;
            let entries = flatten(reply);
            if !entries.is_empty() {
                return Ok(entries);
            }
            state.own_pending_first = false;
        }
        if state.last_reclaim.elapsed() >= RECLAIM_EVERY {
            state.last_reclaim = Instant::now();
            let mut conn = self.connection(&self.commands).await?;
            let idle_ms = u64::try_from(self.visibility.as_millis()).unwrap_or(u64::MAX);
            let reply: StreamAutoClaimReply = conn
                .xautoclaim_options(
                    &self.stream,
                    &self.group,
                    &self.consumer,
                    idle_ms,
                    "0-0",
                    StreamAutoClaimOptions::default().count(max),
                )
                .await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    jobs = reply.claimed.len(),
                    "claimed jobs whose consumer went quiet"
                );
                return Ok(reply.claimed);
            }
        }
        let opts = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(max)
            .block(BLOCK.as_millis() as usize);
        let mut conn = self.connection(&self.reads).await?;
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[&self.stream], &[">"], &opts).await?;
        Ok(flatten(reply))
    }
}

fn flatten(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default()
}

impl JobQueue for RedisQueue {
    fn system(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, job: &Job) -> Result<(), QueueError> {
        let mut conn = self.connection(&self.commands).await?;
        let body = encode_job(job);
        let _: Option<String> = conn
            .xadd(
                &self.stream,
                "*",
                &[
                    ("message_id", job.message_id.as_str()),
                    ("body", body.as_str()),
                ],
            )
            .await?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let mut state = self.state.lock().await;
        self.ensure_group(&mut state).await?;
        let entries = match self.read(max, &mut state).await {
            Ok(entries) => entries,
            Err(QueueError::Redis(e)) if e.code() == Some("NOGROUP") => {
                // Redis lost the group (restarted without persistence): make it again and
                // re-read from the start of whatever the stream still holds.
                state.group_ready = false;
                return Err(QueueError::Redis(e));
            }
            // Jobs read before the error and still unacknowledged come back through
            // XAUTOCLAIM once idle, not by re-reading the pending list at once: the worker may
            // still be handling them.
            Err(e) => return Err(e),
        };
        drop(state);
        self.deliveries(entries).await
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.ack_id(&delivery.receipt).await
    }
}
