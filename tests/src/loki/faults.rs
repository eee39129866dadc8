//! Faults the receiver can inject, and the mode that applies when no scripted fault is queued.

use std::time::Duration;

/// One way of answering (or not answering) a push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 like Loki's rate limiter; stores nothing. `Retry-After: <secs>` when `Some`.
    Status429 {
        /// Seconds for the `Retry-After` header.
        retry_after: Option<u64>,
    },
    /// 500; stores nothing.
    Status500,
    /// Rejects every `reject_every_nth` entry of the request (1-based positions n, 2n, ...
    /// counted across its streams), stores the others and answers 400 with Loki's
    /// partial-failure body, like an ingester refusing out-of-order entries.
    Status400Partial {
        /// Period of rejected entries; 1 rejects all.
        reject_every_nth: usize,
    },
    /// 413 when the (still encoded) request body is longer than this many bytes; otherwise
    /// the request is handled normally.
    Status413IfBodyOver(usize),
    /// 401 `no org id`; stores nothing.
    Status401,
    /// 403; stores nothing.
    Status403,
    /// 404 `404 page not found`; stores nothing.
    Status404,
    /// Answers `status` (stores nothing) with a body that echoes every request header as
    /// `name: value` lines, then the same as a JSON object, as some gateways and proxies do.
    EchoHeaders {
        /// The HTTP status to answer with.
        status: u16,
    },
    /// Waits this long, then handles the request normally.
    Delay(Duration),
    /// Waits a random time between the two bounds, then handles the request normally: how a
    /// loaded Loki acknowledges (tens of milliseconds, jittered), as a mode for every push.
    DelayBetween(Duration, Duration),
    /// Closes the connection without writing any HTTP answer; stores nothing.
    DropConnection,
    /// Never answers (until the receiver is stopped); stores nothing.
    Hang,
}

/// What the receiver does with a push when its fault script is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Decode, validate, store, answer like Loki.
    #[default]
    Normal,
    /// Apply this fault to every push until the mode changes.
    Fault(Fault),
    /// For benchmarks: count the entries with a cheap wire walk (no protobuf or JSON
    /// objects are built), store nothing, answer 204. Malformed bodies still get 400.
    AckOnly,
}

/// What to do with one request, taken from the script or the mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Normal,
    Fault(Fault),
    AckOnly,
}
