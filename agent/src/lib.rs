//! The logship agent: **sources read, transforms extract, sinks deliver, acknowledgements
//! flow back.**
//!
//! - A *source* ([`sources`]) reads lines (files, stdin, Docker) and sends them downstream as
//!   [`Chunk`]s: a `Vec` of [`Event`]s plus one [`AckToken`]. A source that can resume draws
//!   its tokens from an [`AckLedger`] and checkpoints ([`checkpoints`]) only the ledger's
//!   committed cursor. Every source runs under the same [`harness`](sources::harness), which
//!   owns its checkpoint writer, its shutdown order and how its failure is reported.
//! - A *transform* ([`transforms`]) finds fields in each line (JSON, logfmt, regex) and turns
//!   them into stream labels, structured metadata and the timestamp, or drops the line. The
//!   line itself is never changed.
//! - A *sink* ([`sinks`]) delivers events (to Loki, the console, nowhere) and settles each
//!   chunk's token once its part is safe. Only then can the source's checkpoint move.
//! - [`pipeline`] is what they all share (events, chunks, acknowledgements, fan-out); it sits
//!   below them and knows none of them. The [`topology`] builds components from a config and
//!   connects them with bounded channels, so a slow sink stops the sources from reading;
//!   [`telemetry`] serves `/metrics`, `/health` and `/ready`; [`cli`] is the `logship` binary.
//!
//! One chunk's trip, by hand:
//!
//! ```
//! use bytes::Bytes;
//! use logship_agent::context::ComponentContext;
//! use logship_agent::transforms;
//! use logship_agent::{AckLedger, Chunk, Event, LabelSet};
//! use logship_config::schema::{ExtractTransformConfig, TransformConfig};
//!
//! // A source read one line ending at file offset 120 and emits it with a token.
//! let ledger = AckLedger::new(0u64);
//! let line = Bytes::from_static(br#"{"service":"order-api","level":"info","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#);
//! let mut chunk = Chunk {
//!     events: vec![Event::new(0, line, LabelSet::new([("job", "app")]))],
//!     ack: ledger.token(120),
//! };
//!
//! // A json transform takes `service` as a label and `trace_id` as structured metadata.
//! let config = TransformConfig::Json(ExtractTransformConfig {
//!     inputs: vec!["app".into()],
//!     labels: [("service".to_string(), "service".to_string())].into(),
//!     structured_metadata: [("trace_id".to_string(), "trace_id".to_string())].into(),
//!     ..Default::default()
//! });
//! let ctx = ComponentContext::for_test("parse", std::env::temp_dir());
//! let mut transform = transforms::build(&config, &ctx).unwrap();
//! transform.apply(&mut chunk);
//! let event = &chunk.events[0];
//! assert_eq!(event.labels.selector(), r#"{job="app", service="order-api"}"#);
//! assert_eq!(&event.metadata[0].1[..], b"4bf92f3577b34da6a3ce929d0e0e4736");
//!
//! // A sink delivered it; the acknowledgement flows back and the checkpoint may move.
//! assert_eq!(ledger.committed(), 0);
//! chunk.ack.delivered();
//! assert_eq!(ledger.committed(), 120);
//! ```

#![warn(missing_docs)]

pub mod backoff;
pub mod checkpoints;
pub mod cli;
pub mod config_tests;
pub mod containers;
pub mod context;
pub mod data_dir;
mod error_chain;
pub mod inspect;
mod logging;
pub mod pipeline;
mod reload;
pub mod sinks;
pub mod sources;
pub mod telemetry;
pub mod topology;
pub mod transforms;

pub use context::ComponentContext;
pub use pipeline::{AckLedger, AckToken, Chunk, Event, Fanout, LabelSet};
