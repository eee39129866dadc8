//! A small Loki stand-in on 127.0.0.1 for the sink's tests: records every push, decodes it
//! the way Loki does, and answers from a script (then from a default rule).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use prost::Message;
use tokio::time::Instant;

/// Loki's push messages, shared with the end-to-end tests' receiver.
#[path = "../../../../tests/src/loki/proto.rs"]
#[allow(dead_code)]
pub mod proto;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One push as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

/// One entry of a decoded push: labels, line, metadata.
pub type Line = (String, Vec<u8>, Vec<(String, String)>);

impl Received {
    /// The push decoded as Loki would: protobuf + raw snappy, or JSON (maybe gzip).
    pub fn decode(&self) -> proto::PushRequest {
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type == "application/json" {
            return decode_json(&self.headers, &self.body);
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&self.body)
            .expect("raw snappy");
        proto::PushRequest::decode(raw.as_slice()).expect("protobuf")
    }

    /// Every entry, flattened.
    pub fn lines(&self) -> Vec<Line> {
        self.decode()
            .streams
            .into_iter()
            .flat_map(|s| {
                let labels = s.labels;
                s.entries.into_iter().map(move |e| {
                    let meta = e
                        .structured_metadata
                        .into_iter()
                        .map(|p| (p.name, p.value))
                        .collect();
                    (labels.clone(), e.line, meta)
                })
            })
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

fn decode_json(headers: &HeaderMap, body: &[u8]) -> proto::PushRequest {
    use std::io::Read;
    let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("gzip");
        out
    } else {
        body.to_vec()
    };
    let value: serde_json::Value = serde_json::from_slice(&raw).expect("json");
    let streams = value["streams"].as_array().expect("streams").iter();
    proto::PushRequest {
        streams: streams
            .map(|s| {
                let pairs: Vec<(String, String)> = s["stream"]
                    .as_object()
                    .expect("stream")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_owned()))
                    .collect();
                let labels = crate::pipeline::LabelSet::new(pairs).selector().to_owned();
                let entries = s["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|row| {
                        let ns: i64 = row[0].as_str().expect("ts string").parse().expect("ns");
                        proto::EntryAdapter {
                            timestamp: Some(proto::Timestamp {
                                seconds: ns.div_euclid(1_000_000_000),
                                nanos: ns.rem_euclid(1_000_000_000) as i32,
                            }),
                            line: row[1].as_str().expect("line").as_bytes().to_vec(),
                            structured_metadata: row
                                .get(2)
                                .and_then(|m| m.as_object())
                                .map(|m| {
                                    m.iter()
                                        .map(|(k, v)| proto::LabelPairAdapter {
                                            name: k.clone(),
                                            value: v.as_str().expect("meta").to_owned(),
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            parsed: vec![],
                        }
                    })
                    .collect();
                proto::StreamAdapter {
                    labels,
                    entries,
                    hash: 0,
                }
            })
            .collect(),
        format: String::new(),
    }
}

type Rule = Box<dyn Fn(&Received) -> Reply + Send + Sync>;

struct FakeState {
    script: Mutex<VecDeque<Reply>>,
    rule: Mutex<Rule>,
    received: Mutex<Vec<Received>>,
}

/// The stand-in server. Dropping it stops it.
pub struct FakeLoki {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLoki {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeLoki {
    /// Starts a server answering 204 unless scripted otherwise.
    pub async fn start() -> Self {
        let state = Arc::new(FakeState {
            script: Mutex::new(VecDeque::new()),
            rule: Mutex::new(Box::new(|_| Reply::status(204))),
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/loki/api/v1/push", post(push))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            state,
            server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next pushes with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Answers pushes past the script with `rule`.
    pub fn rule(&self, rule: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        *self.state.rule.lock().unwrap() = Box::new(rule);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Lines of the pushes answered 2xx.
    pub fn accepted_lines(&self) -> Vec<Line> {
        self.received()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(Received::lines)
            .collect()
    }
}

async fn push(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut received = Received {
        headers,
        body,
        at: Instant::now(),
        status: 0,
    };
    let scripted = state.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or_else(|| (state.rule.lock().unwrap())(&received));
    received.status = reply.status;
    state.received.lock().unwrap().push(received);
    tokio::time::sleep(reply.delay).await;
    let mut out_headers = HeaderMap::new();
    for (name, value) in reply.headers {
        out_headers.insert(name, value.parse().unwrap());
    }
    (
        StatusCode::from_u16(reply.status).unwrap(),
        out_headers,
        reply.body,
    )
        .into_response()
}

/// Polls `cond` every 10 ms until it holds; panics after `within`.
pub async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
