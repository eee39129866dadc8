//! Loki's push protobuf messages (`pkg/push/push.proto`, package `logproto`), written by hand
//! with prost derives so that no `protoc` is needed.
//!
//! Field numbers and types follow Loki's file exactly. `line` is declared `bytes` here although
//! the .proto says `string`: Loki's gogoproto-generated decoder copies the bytes without UTF-8
//! validation, and decoding them as bytes keeps that behaviour (prost's `string` would reject
//! what Loki accepts). `hash` and `parsed` are server-side fields a client leaves empty.

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// One entry per label set.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
    /// Added in Loki 3.7 ("loki" | "otlp"); set by the server, empty from clients.
    #[prost(string, tag = "2")]
    pub format: String,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// LogQL selector text, `{app="x", env="y"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// The stream's lines.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Internal to Loki; clients leave 0.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// Metadata name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Metadata value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// `google.protobuf.Timestamp`.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The log line (see the module docs for why this is `bytes`).
    #[prost(bytes = "vec", tag = "2")]
    pub line: Vec<u8>,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
    /// Query path only; never sent by clients.
    #[prost(message, repeated, tag = "4")]
    pub parsed: Vec<LabelPairAdapter>,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0..=999_999_999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    /// Unix nanoseconds.
    pub fn as_nanos(&self) -> i64 {
        self.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(self.nanos))
    }
}
