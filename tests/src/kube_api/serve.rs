//! TLS, HTTP and the two pod calls: list and watch.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::Full;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use super::{Change, Shared, TOKEN};

type Resp = Response<BoxBody<Bytes, Infallible>>;

/// A throw-away certificate of the tests (CN localhost, IP 127.0.0.1, CA `ca.pem`).
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../agent/src/sinks/loki/testdata")
        .join(name)
}

/// A running listener; `stop` closes it and every connection.
pub(crate) struct Listener {
    cancel: CancellationToken,
    closed: std::sync::mpsc::Receiver<()>,
}

impl Listener {
    pub fn stop(self) {
        self.cancel.cancel();
        let _ = self.closed.recv_timeout(Duration::from_secs(5));
    }
}

fn tls() -> std::io::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .map_err(std::io::Error::other)?
        .collect::<Result<_, _>>()
        .map_err(std::io::Error::other)?;
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).map_err(std::io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds `addr` (retrying briefly while a previous listener closes) and serves.
pub(crate) fn listen(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> std::io::Result<(Listener, SocketAddr)> {
    let acceptor = tls()?;
    let (listener, local) = crate::listen::bind(rt, addr)?;
    let cancel = CancellationToken::new();
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let token = cancel.clone();
    rt.spawn(async move {
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                r = listener.accept() => if let Ok((stream, _)) = r {
                    let acceptor = acceptor.clone();
                    let shared = shared.clone();
                    let cancel = token.child_token();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else { return };
                        let conn_cancel = cancel.clone();
                        let svc = service_fn(move |req| handle(shared.clone(), conn_cancel.clone(), req));
                        let conn = http1::Builder::new().serve_connection(TokioIo::new(tls), svc);
                        // Dropping the connection closes the socket, whatever it was doing.
                        tokio::select! {
                            _ = conn => {}
                            _ = cancel.cancelled() => {}
                        }
                    });
                },
            }
        }
        drop(listener);
        let _ = closed_tx.send(());
    });
    Ok((Listener { cancel, closed }, local))
}

fn status(code: StatusCode, reason: &str, message: &str) -> Resp {
    json_response(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"kind": "pods"},
            "code": code.as_u16(),
        }),
    )
}

fn json_response(code: StatusCode, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `%XX` decoding of one query value (`+` is a space).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

async fn handle(
    shared: Arc<Shared>,
    cancel: CancellationToken,
    req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let forbidden = {
        let mut s = shared.lock();
        s.requests.push(format!("{} {path}?{query}", req.method()));
        s.forbidden
    };
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return Ok(status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
        ));
    }
    if path != "/api/v1/pods" || req.method() != hyper::Method::GET {
        return Ok(status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    if forbidden {
        return Ok(status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "pods is forbidden: User \"system:serviceaccount:logging:logship\" cannot list resource \"pods\" in API group \"\" at the cluster scope",
        ));
    }
    let node = query_param(&query, "fieldSelector")
        .and_then(|f| f.strip_prefix("spec.nodeName=").map(str::to_owned));
    if query_param(&query, "watch").as_deref() == Some("true") {
        return Ok(watch(&shared, cancel, &query, node));
    }
    let s = shared.lock();
    let items: Vec<Value> = s
        .pods
        .iter()
        .filter(|(p, _)| node.as_ref().is_none_or(|n| *n == p.node))
        .map(|(p, rv)| p.to_json(*rv))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": s.resource_version.to_string()},
            "items": items,
        }),
    ))
}

/// A watch: the changes after `resourceVersion`, then live ones, until `timeoutSeconds`,
/// [`super::KubeApi::end_watches`] or the server stops.
fn watch(
    shared: &Arc<Shared>,
    cancel: CancellationToken,
    query: &str,
    node: Option<String>,
) -> Resp {
    let from: u64 = query_param(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bookmarks = query_param(query, "allowWatchBookmarks").as_deref() == Some("true");
    let timeout = query_param(query, "timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(290), Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let line = |v: &Value| Bytes::from(format!("{v}\n"));
    let matches = move |c: &Change| node.as_ref().is_none_or(|n| *n == c.node);
    let s = shared.lock();
    if from < s.compacted_at {
        let expired = json!({
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": format!("too old resource version: {from} ({})", s.compacted_at),
                "reason": "Expired",
                "code": 410,
            },
        });
        let _ = tx.try_send(line(&expired));
        drop(s);
        return streaming(rx);
    }
    let backlog: Vec<Change> = s
        .history
        .iter()
        .filter(|c| c.resource_version > from)
        .cloned()
        .collect();
    let mut live = shared.changes.subscribe();
    let mut ended = shared.end_watches.subscribe();
    let shared = shared.clone();
    drop(s);
    tokio::spawn(async move {
        let event = |c: &Change| json!({"type": c.kind, "object": c.object});
        for c in backlog.iter().filter(|c| matches(c)) {
            if tx.send(line(&event(c))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = cancel.cancelled() => return,
                _ = ended.changed() => return,
                c = live.recv() => match c {
                    Ok(c) if matches(&c) => {
                        if tx.send(line(&event(&c))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return, // lagged or closed: end the watch; the client resumes
                },
                _ = tick.tick(), if bookmarks => {
                    let rv = shared.lock().resource_version;
                    let bookmark = json!({
                        "type": "BOOKMARK",
                        "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}},
                    });
                    if tx.send(line(&bookmark)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    streaming(rx)
}

fn streaming(rx: mpsc::Receiver<Bytes>) -> Resp {
    let mut r = Response::new(ChannelBody(rx).boxed());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A response body fed by a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
