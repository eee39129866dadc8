//! The job queue between the outbox relay and the worker: Redis streams when `REDIS_URL` is
//! set, a table in the database otherwise. Both are at-least-once: a job stays in the queue
//! until the worker acknowledges it, and a job whose worker died is handed out again after the
//! visibility timeout. The worker's inbox makes the duplicates harmless.

pub mod db_queue;
pub mod redis_queue;

use std::future::Future;

use serde::{Deserialize, Serialize};

pub use db_queue::DbQueue;
pub use redis_queue::RedisQueue;

use crate::db::DbError;

/// The Redis stream jobs are published to.
pub const STREAM: &str = "orders:jobs";

/// The consumer group of the workers, also the inbox's consumer name.
pub const GROUP: &str = "order-worker";

/// The message the relay publishes for a new order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The outbox message id; the worker's inbox key.
    pub message_id: String,
    /// `order.created`.
    pub kind: String,
    /// The order to settle.
    pub order_id: String,
    /// The publishing span's W3C `traceparent`, so the worker continues the order's trace.
    pub traceparent: Option<String>,
    /// When the order was accepted (epoch ms).
    pub created_at_ms: i64,
}

/// A job handed to a consumer, with what is needed to acknowledge it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The job.
    pub job: Job,
    /// The queue's own handle for it (stream entry id or message id).
    pub receipt: String,
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis did not answer or refused.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The jobs table failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What the relay and the worker need of a queue.
pub trait JobQueue: Clone + Send + Sync + 'static {
    /// `redis` or `database`, for logs and span attributes.
    fn system(&self) -> &'static str;

    /// Adds a job. Publishing the same message twice is allowed (the relay is at-least-once).
    fn publish(&self, job: &Job) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Up to `max` jobs, waiting about a second when there are none.
    fn receive(&self, max: usize)
    -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Removes a handled job for good.
    fn ack(&self, delivery: &Delivery) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Decodes a stored job body; `None` (logged by the caller) for a body that is not a job.
pub fn decode_job(body: &str) -> Option<Job> {
    serde_json::from_str(body).ok()
}

/// Encodes a job body.
pub fn encode_job(job: &Job) -> String {
    // A struct of strings and integers always serialises.
    serde_json::to_string(job).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips() {
        let job = Job {
            message_id: "m".into(),
            kind: "order.created".into(),
            order_id: "o".into(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            created_at_ms: 5,
        };
        assert_eq!(decode_job(&encode_job(&job)), Some(job));
        assert_eq!(decode_job("{\"not\":\"a job\"}"), None);
    }
}
