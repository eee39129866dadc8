//! The Loki sink: groups events into streams by label set, batches them, encodes the batches
//! (protobuf + snappy, or JSON + optional gzip) and pushes them with several requests in flight,
//! settling each chunk's acknowledgement only once Loki has answered for all of its events.
//!
//! Where things live:
//! - [`labels`] merges the event's labels with the sink's static ones (static wins) and interns
//!   the result; [`cardinality`] bounds the values each label may take.
//! - [`batch`] groups events into streams and knows the bounds (`batch.max_bytes`,
//!   `max_events`, `timeout_ms` from the oldest event).
//! - [`encode`], [`encode_protobuf`], [`encode_json`] write request bodies into reused buffers.
//! - [`request`] and [`auth`] are the HTTP client; [`retry`] maps answers to verdicts and
//!   computes backoff; `deliver` runs one batch until it is settled.
//!
//! Flow control: a full batch waits for one of `request.concurrency` slots before it is encoded
//! and handed to its delivery task. While it waits the sink reads no input, so its bounded
//! input channel fills and the components upstream stop: that is the backpressure, and there is
//! no other queue. Concurrent requests may reach Loki out of order; Loki accepts that within its
//! out-of-order window (1 h by default).
//!
//! Acknowledgements: every batch holding an event of a chunk holds a clone of that chunk's
//! token; the chunk's own token is settled once its events are all in batches, so the chunk
//! counts as delivered when the last of those batches is. A chunk without events is settled at
//! once (the ledger keeps the per-source order).
//!
//! Shutdown: the sink returns when its input closes and everything batched has been answered
//! for. Once `ctx.shutdown` is cancelled, retrying continues for a grace period (5 s by
//! default) and then stops; what was not delivered stays unsettled, so checkpoints do not pass
//! it and it is read again after the restart.

mod after_refusal;
mod auth;
mod batch;
mod cardinality;
mod deliver;
mod encode;
pub(crate) mod encode_json;
mod encode_protobuf;
mod error;
mod label_repair;
mod labels;
mod prehashed;
mod rate_gate;
mod recent_streams;
mod redact;
pub mod refusals;
pub mod rejection;
mod repair;
mod request;
mod retry;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use logship_config::schema::LokiSinkConfig;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use crate::context::ComponentContext;
use crate::pipeline::{Chunk, LabelSet};
use batch::{Batch, BatchLimits};
use cardinality::CardinalityGuard;
use deliver::{Shared, SinkMetrics, deliver};
use label_repair::LabelRepair;
use labels::StreamLabeler;
use recent_streams::RecentStreams;
use repair::EntryRepair;
use request::LokiClient;

pub use batch::{Stream, event_size};
pub use encode::{BodyEncoder, BodyFormat};
pub use encode_json::JsonEncoder;
pub use encode_protobuf::ProtobufEncoder;
pub use error::LokiSinkError;

/// How long retries go on after shutdown was requested, by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A configured Loki sink, ready to [`run`](LokiSink::run).
pub struct LokiSink {
    ctx: ComponentContext,
    shared: Arc<Shared>,
    labeler: StreamLabeler,
    repair: EntryRepair,
    limits: BatchLimits,
    encoder: BodyEncoder,
    slots: Arc<Semaphore>,
    concurrency: usize,
    shutdown_grace: Duration,
    /// Room a new stream of a batch starts with: the last batch's events per stream.
    stream_capacity: usize,
}

impl std::fmt::Debug for LokiSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LokiSink")
            .field("id", &self.ctx.id)
            .field("client", &self.shared.client)
            .field("format", &self.shared.format)
            .field("limits", &self.limits)
            .field("labeler", &self.labeler)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl LokiSink {
    /// Builds the sink: checks the settings, reads secret and TLS files, builds the client.
    pub fn new(config: &LokiSinkConfig, ctx: ComponentContext) -> Result<Self, LokiSinkError> {
        let format = BodyFormat::from_config(config.encoding, config.compression)?;
        let limit = NonZeroUsize::new(config.label_cardinality_limit)
            .ok_or(LokiSinkError::ZeroCardinalityLimit)?;
        if config.request.concurrency == 0 {
            return Err(LokiSinkError::ZeroConcurrency);
        }
        let client = LokiClient::new(config, format)?;
        let guard =
            CardinalityGuard::new(limit, ctx.id.clone(), ctx.metrics.label_overflow.clone());
        let label_repair = LabelRepair::new(&config.limits, &ctx.metrics, &ctx.id);
        let labeler = StreamLabeler::new(
            &config.labels,
            &config.cardinality_overflow_value,
            guard,
            label_repair,
        );
        let repair = EntryRepair::new(&config.limits, &ctx.metrics, &ctx.id);
        let request = &config.request;
        let mut shared = Shared::new(
            ctx.id.clone(),
            client,
            format,
            Duration::from_millis(request.retry_initial_backoff_ms.max(1)),
            Duration::from_millis(request.retry_max_backoff_ms.max(1)),
            SinkMetrics::new(&ctx.metrics, &ctx.id),
            ctx.health.clone(),
            Duration::from_secs(config.not_ready_after_secs),
        );
        shared.after_refusal = after_refusal::Allowed::from_limits(&config.limits);
        Ok(Self {
            shared: Arc::new(shared),
            labeler,
            repair,
            limits: BatchLimits::from_config(&config.batch),
            encoder: format.encoder(),
            slots: Arc::new(Semaphore::new(request.concurrency)),
            concurrency: request.concurrency,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            stream_capacity: 0,
            ctx,
        })
    }

    /// Sets how long retries go on once shutdown is requested.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Delivers chunks from `input` until it closes and every batch has been answered for
    /// (or, after shutdown, until the grace period is over).
    pub async fn run(mut self, mut input: mpsc::Receiver<Chunk>) {
        let grace_timer = {
            let shutdown = self.ctx.shutdown.clone();
            let give_up = self.shared.give_up.clone();
            let grace = self.shutdown_grace;
            tokio::spawn(async move {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
                give_up.cancel();
            })
        };
        let mut batch = Batch::new();
        let mut tasks = JoinSet::new();
        loop {
            let deadline = batch.deadline(&self.limits);
            tokio::select! {
                biased;
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => self.reap(joined),
                () = sleep_until(deadline) => self.flush(&mut batch, &mut tasks).await,
                chunk = input.recv() => match chunk {
                    Some(chunk) => self.ingest(chunk, &mut batch, &mut tasks).await,
                    None => break,
                },
            }
        }
        self.flush(&mut batch, &mut tasks).await;
        while let Some(joined) = tasks.join_next().await {
            self.reap(joined);
        }
        grace_timer.abort();
    }

    /// Moves a chunk's events into the current batch (repaired to fit Loki's limits), sending
    /// batches as they fill.
    async fn ingest(&mut self, chunk: Chunk, batch: &mut Batch, tasks: &mut JoinSet<()>) {
        let Chunk { events, ack } = chunk;
        let metrics = &self.shared.metrics.component;
        metrics.received_events.inc_by(events.len() as u64);
        if events.is_empty() {
            ack.delivered();
            return;
        }
        let mut now = Instant::now();
        let now_ns = wall_clock_ns();
        let mut line_bytes = 0u64;
        // Whether this chunk's token is already in the current batch.
        let mut token_in_batch = false;
        // The chunk's recent incoming label sets, what each resolved to and its stream in the
        // batch, so events skip the labeler's map (a hash, an LRU update and two reference
        // counts) and the batch's. Several, because lines of a few streams interleave (W1's
        // level changes on every line); stream indices are the batch's, so a flush empties it.
        let mut recent = RecentStreams::default();
        for mut event in events {
            line_bytes += event.line.len() as u64;
            let slot = match recent.find(&event.labels) {
                Some(slot) => slot,
                None => {
                    let resolved = self.labeler.resolve(&event.labels, now);
                    let stream = self.open_stream(batch, &resolved.labels);
                    recent.insert(event.labels.clone(), resolved, stream)
                }
            };
            let mut stream = recent.stream(slot);
            let resolved = recent.resolved(slot);
            resolved.count_line();
            if !resolved.demoted().is_empty() {
                event.metadata.extend(resolved.demoted().iter().cloned());
            }
            self.repair
                .repair(&mut event, batch.newest_mut(stream), now_ns);
            let size = event_size(&event);
            if !batch.has_room_for(size, &self.limits) {
                self.flush(batch, tasks).await;
                (token_in_batch, now) = (false, Instant::now());
                stream = recent.reopen(slot, |labels| self.open_stream(batch, labels));
            }
            if !token_in_batch {
                batch.add_token(ack.clone());
                token_in_batch = true;
            }
            batch.push(stream, event, size, now);
            if batch.is_full(&self.limits) {
                self.flush(batch, tasks).await;
                (token_in_batch, now) = (false, Instant::now());
                recent.clear();
            }
        }
        self.shared
            .metrics
            .component
            .received_bytes
            .inc_by(line_bytes);
        // Every batch holding part of the chunk holds a clone; this copy has nothing left.
        ack.delivered();
    }

    /// The stream of `labels` in `batch`, knowing its newest timestamp from earlier batches.
    fn open_stream(&mut self, batch: &mut Batch, labels: &LabelSet) -> usize {
        let repair = &mut self.repair;
        batch.open_stream(labels, self.stream_capacity, || repair.known_newest(labels))
    }

    /// Hands the current batch to a delivery task, waiting for a free slot first.
    async fn flush(&mut self, batch: &mut Batch, tasks: &mut JoinSet<()>) {
        if batch.is_empty() {
            return;
        }
        self.stream_capacity = batch.events_per_stream();
        let full = std::mem::take(batch);
        for stream in full.streams() {
            self.repair.remember(stream.labels(), stream.newest_ns());
        }
        while let Some(joined) = tasks.try_join_next() {
            self.reap(joined);
        }
        // Waiting here is the backpressure: no input is read until a request finishes.
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        let body = match self.encoder.encode(full.streams()) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(component = %self.ctx.id, error = %e, "cannot encode a batch");
                self.shared.discard(full, "encode_failed");
                return;
            }
        };
        let shared = self.shared.clone();
        tasks.spawn(async move {
            deliver(shared, full, body).await;
            drop(slot);
        });
    }

    fn reap(&self, joined: Result<(), JoinError>) {
        if let Err(e) = joined {
            tracing::error!(component = %self.ctx.id, error = %e, "a Loki delivery task failed");
        }
    }
}

/// Now as Unix nanoseconds.
pub(super) fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
