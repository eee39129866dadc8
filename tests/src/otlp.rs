//! An OTLP/HTTP trace receiver for tests: serves `POST /v1/traces`, decodes the protobuf
//! `ExportTraceServiceRequest` (gzip or not) the way a collector does, and records every span
//! with its resource's `service.name`, so a test can ask "did both services send spans of this
//! trace?".
//!
//! The messages are written by hand for `prost` after `opentelemetry-proto` (only the fields a
//! test looks at, with their real tags; unknown fields are skipped as protobuf requires). It
//! runs on its own tokio runtime so plain `#[test]` functions can use it. JSON bodies are
//! refused with 415: the demo sends `http/protobuf`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message as _;

/// The OTLP protobuf messages, after `opentelemetry/proto/**.proto`.
pub mod proto {
    /// `collector.trace.v1.ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        /// Spans grouped by resource.
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    /// `trace.v1.ResourceSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        /// The emitting resource.
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// Spans grouped by instrumentation scope.
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    /// `resource.v1.Resource`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        /// `service.name` and friends.
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// `trace.v1.ScopeSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        /// The spans.
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    /// `trace.v1.Span`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        /// 16 bytes.
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// 8 bytes.
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        /// 8 bytes, empty for a root span.
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        /// Operation name.
        #[prost(string, tag = "5")]
        pub name: String,
        /// `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
        #[prost(int32, tag = "6")]
        pub kind: i32,
        /// Start, ns since the epoch.
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        /// End, ns since the epoch.
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        /// Attributes.
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        /// Events (log records attached to the span, exceptions).
        #[prost(message, repeated, tag = "11")]
        pub events: Vec<Event>,
        /// Status.
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }

    /// `trace.v1.Span.Event`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        /// When, ns since the epoch.
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        /// Name (for tracing events, the message).
        #[prost(string, tag = "2")]
        pub name: String,
        /// Attributes.
        #[prost(message, repeated, tag = "3")]
        pub attributes: Vec<KeyValue>,
    }

    /// `trace.v1.Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// Description.
        #[prost(string, tag = "2")]
        pub message: String,
        /// 0 unset, 1 ok, 2 error.
        #[prost(int32, tag = "3")]
        pub code: i32,
    }

    /// `common.v1.KeyValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        /// Key.
        #[prost(string, tag = "1")]
        pub key: String,
        /// Value.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `common.v1.AnyValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        /// One of the kinds.
        #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
        pub value: Option<any_value::Value>,
    }

    /// `common.v1.ArrayValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ArrayValue {
        /// Elements.
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }

    /// `common.v1.KeyValueList`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValueList {
        /// Entries.
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }

    /// The `AnyValue` oneof.
    pub mod any_value {
        /// A value of one kind.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// string_value.
            #[prost(string, tag = "1")]
            StringValue(String),
            /// bool_value.
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            /// int_value.
            #[prost(int64, tag = "3")]
            IntValue(i64),
            /// double_value.
            #[prost(double, tag = "4")]
            DoubleValue(f64),
            /// array_value.
            #[prost(message, tag = "5")]
            ArrayValue(super::ArrayValue),
            /// kvlist_value.
            #[prost(message, tag = "6")]
            KvlistValue(super::KeyValueList),
            /// bytes_value.
            #[prost(bytes, tag = "7")]
            BytesValue(Vec<u8>),
        }
    }
}

/// `SpanKind` values.
pub mod kind {
    /// Internal.
    pub const INTERNAL: i32 = 1;
    /// Server.
    pub const SERVER: i32 = 2;
    /// Client.
    pub const CLIENT: i32 = 3;
    /// Producer.
    pub const PRODUCER: i32 = 4;
    /// Consumer.
    pub const CONSUMER: i32 = 5;
}

/// `Status.code` of a failed span.
pub const STATUS_ERROR: i32 = 2;

/// One received span, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// The resource's `service.name` (empty when missing).
    pub service: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits, empty for a root span.
    pub parent_span_id: String,
    /// Name.
    pub name: String,
    /// `SpanKind` (see [`kind`]).
    pub kind: i32,
    /// `Status.code`: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// Attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Event names.
    pub events: Vec<String>,
    /// Start, ns since the epoch.
    pub start_ns: u64,
    /// End, ns since the epoch.
    pub end_ns: u64,
}

impl ReceivedSpan {
    /// An attribute's value as text.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn render(v: &Option<proto::AnyValue>) -> String {
    use proto::any_value::Value;
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex(b),
        Some(Value::ArrayValue(a)) => {
            let parts: Vec<String> = a.values.iter().map(|v| render(&Some(v.clone()))).collect();
            format!("[{}]", parts.join(","))
        }
        Some(Value::KvlistValue(kv)) => {
            let parts: Vec<String> = kv
                .values
                .iter()
                .map(|p| format!("{}={}", p.key, render(&p.value)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

fn attributes(kvs: &[proto::KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), render(&kv.value)))
        .collect()
}

/// Flattens a decoded request into spans.
pub fn flatten(req: &proto::ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                    attributes: attributes(&s.attributes),
                    events: s.events.iter().map(|e| e.name.clone()).collect(),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                });
            }
        }
    }
    out
}

#[derive(Default)]
struct Store {
    spans: Vec<ReceivedSpan>,
    requests: usize,
    refused: usize,
}

#[derive(Default)]
struct Shared {
    store: Mutex<Store>,
    changed: Condvar,
}

/// An OTLP/HTTP receiver on 127.0.0.1. Dropping it stops the server.
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

impl OtlpReceiver {
    /// Starts on a free port.
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-receiver")
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(s.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            shared,
            rt: Some(rt),
        })
    }

    /// `http://127.0.0.1:<port>`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter
    /// appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.lock()
            .spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Export requests accepted.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Requests refused (bad content type or body).
    pub fn refused(&self) -> usize {
        self.lock().refused
    }

    /// Waits until `pred` holds for the received spans, or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[ReceivedSpan]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        loop {
            if pred(&g.spans) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .shared
                .changed
                .wait_timeout(g, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Decodes a body as a collector does: optional gzip, then protobuf.
pub fn decode_body(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<proto::ExportTraceServiceRequest, (StatusCode, String)> {
    let ct = content_type.unwrap_or("");
    if !ct.starts_with("application/x-protobuf") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {ct:?} is not application/x-protobuf"),
        ));
    }
    let raw = match content_encoding {
        None | Some("") | Some("identity") => body.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad gzip: {e}")))?;
            out
        }
        Some(other) => {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("content encoding {other:?} not supported"),
            ));
        }
    };
    proto::ExportTraceServiceRequest::decode(&raw[..])
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad protobuf: {e}")))
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() != hyper::Method::POST || req.uri().path() != "/v1/traces" {
        return Ok(answer(StatusCode::NOT_FOUND, "text/plain", "not found"));
    }
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ct = header(hyper::header::CONTENT_TYPE);
    let ce = header(hyper::header::CONTENT_ENCODING);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(answer(StatusCode::BAD_REQUEST, "text/plain", e.to_string())),
    };
    match decode_body(ct.as_deref(), ce.as_deref(), &body) {
        Ok(decoded) => {
            let spans = flatten(&decoded);
            let mut g = shared.store.lock().unwrap_or_else(|e| e.into_inner());
            g.requests += 1;
            g.spans.extend(spans);
            drop(g);
            shared.changed.notify_all();
            // An empty ExportTraceServiceResponse encodes to zero bytes.
            Ok(answer(
                StatusCode::OK,
                "application/x-protobuf",
                Bytes::new(),
            ))
        }
        Err((status, msg)) => {
            shared
                .store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .refused += 1;
            Ok(answer(status, "text/plain", msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;
    use std::io::Write as _;

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    fn request() -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("order-api".into()),
                    )],
                }),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: (1..=16).collect(),
                        span_id: vec![0xab; 8],
                        parent_span_id: vec![],
                        name: "POST /v1/orders".into(),
                        kind: kind::SERVER,
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        attributes: vec![
                            kv("http.response.status_code", any_value::Value::IntValue(202)),
                            kv("ok", any_value::Value::BoolValue(true)),
                        ],
                        events: vec![Event {
                            time_unix_nano: 1,
                            name: "order accepted".into(),
                            attributes: vec![],
                        }],
                        status: Some(Status {
                            message: "boom".into(),
                            code: STATUS_ERROR,
                        }),
                    }],
                }],
            }],
        }
    }

    fn post(r: &OtlpReceiver, headers: &[(&str, &str)], body: &[u8]) -> u16 {
        crate::http::request(
            r.addr(),
            "POST",
            "/v1/traces",
            headers,
            body,
            Duration::from_secs(5),
        )
        .unwrap()
        .status
    }

    #[test]
    fn decodes_protobuf_exports_with_their_service() {
        let r = OtlpReceiver::new().unwrap();
        let body = request().encode_to_vec();
        assert_eq!(
            post(&r, &[("Content-Type", "application/x-protobuf")], &body),
            200
        );
        assert!(r.wait_until(Duration::from_secs(2), |s| s.len() == 1));
        let s = &r.spans()[0];
        assert_eq!(s.service, "order-api");
        assert_eq!(s.trace_id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(s.span_id, "abababababababab");
        assert_eq!(s.parent_span_id, "");
        assert_eq!(s.kind, kind::SERVER);
        assert_eq!(s.status_code, STATUS_ERROR);
        assert_eq!(s.attr("http.response.status_code"), Some("202"));
        assert_eq!(s.attr("ok"), Some("true"));
        assert_eq!(s.events, ["order accepted"]);
        assert_eq!(r.trace("0102030405060708090a0b0c0d0e0f10").len(), 1);
        assert_eq!(r.requests(), 1);
    }

    #[test]
    fn gzip_bodies_are_accepted_and_json_or_garbage_refused() {
        let r = OtlpReceiver::new().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&request().encode_to_vec()).unwrap();
        let gz = gz.finish().unwrap();
        let pb = [
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ];
        assert_eq!(post(&r, &pb, &gz), 200);
        assert_eq!(
            post(&r, &[("Content-Type", "application/json")], b"{}"),
            415
        );
        assert_eq!(
            post(
                &r,
                &[("Content-Type", "application/x-protobuf")],
                &[0xff, 0xff, 0xff]
            ),
            400
        );
        assert_eq!(r.spans().len(), 1);
        assert_eq!(r.refused(), 2);
    }

    #[test]
    fn wait_until_times_out_when_nothing_arrives() {
        let r = OtlpReceiver::new().unwrap();
        let t = Instant::now();
        assert!(!r.wait_until(Duration::from_millis(200), |s| !s.is_empty()));
        assert!(t.elapsed() >= Duration::from_millis(200));
    }
}
