//! The sink over TLS: a custom CA, an untrusted server, `insecure_skip_verify`, and mutual TLS
//! with a client certificate. The server is a minimal HTTPS responder (rustls, answers 204);
//! the certificates are throw-away fixtures in `testdata/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use logship_config::schema::{LokiSinkConfig, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::LokiSink;
use super::test_support::wait_until;
use crate::context::ComponentContext;
use crate::pipeline::AckLedger;
use crate::pipeline::{Chunk, Event, LabelSet};

const WAIT: Duration = Duration::from_secs(10);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/sinks/loki/testdata")
        .join(name)
}

/// An HTTPS server that answers every request 204 and counts them.
struct TlsLoki {
    port: u16,
    pushes: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TlsLoki {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TlsLoki {
    async fn start(require_client_cert: bool) -> Self {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("server.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let config = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .unwrap()
        } else {
            builder
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap()
        };
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let pushes = Arc::new(AtomicUsize::new(0));
        let counted = pushes.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return; // handshake refused: the client sees a connection error
                    };
                    if read_request(&mut tls).await {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let _ = tls
                            .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                            .await;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self {
            port,
            pushes,
            server,
        }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn pushes(&self) -> usize {
        self.pushes.load(Ordering::SeqCst)
    }
}

/// Reads one HTTP/1.1 request (headers, then `content-length` body bytes).
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

fn config(endpoint: &str, tls: Option<TlsConfig>) -> LokiSinkConfig {
    let mut cfg = super::tests::config(endpoint);
    cfg.tls = tls;
    cfg
}

fn tls(ca: bool, client_cert: bool, insecure: bool) -> TlsConfig {
    TlsConfig {
        ca_file: ca.then(|| fixture("ca.pem")),
        crt_file: client_cert.then(|| fixture("client.pem")),
        key_file: client_cert.then(|| fixture("client.key")),
        insecure_skip_verify: insecure,
    }
}

/// Runs a sink with `cfg`, sends one event, and reports whether it was delivered within a
/// short wait (then stops the sink).
async fn delivers(cfg: &LokiSinkConfig) -> (bool, ComponentContext) {
    let ctx = ComponentContext::for_test("loki_tls", std::env::temp_dir());
    let sink = LokiSink::new(cfg, ctx.clone())
        .unwrap()
        .with_shutdown_grace(Duration::from_millis(100));
    let (tx, rx) = mpsc::channel(1);
    let run = tokio::spawn(sink.run(rx));
    let ledger = AckLedger::new(0u64);
    let event = Event::new(
        1,
        Bytes::from_static(b"over tls"),
        LabelSet::new([("a", "b")]),
    );
    tx.send(Chunk {
        events: vec![event],
        ack: ledger.token(1),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while ledger.committed() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(tx);
    ctx.shutdown.cancel();
    tokio::time::timeout(WAIT, run).await.unwrap().unwrap();
    (ledger.committed() == 1, ctx)
}

#[tokio::test]
async fn custom_ca_is_trusted() {
    let server = TlsLoki::start(false).await;
    let cfg = config(&server.endpoint(), Some(tls(true, false, false)));
    let (delivered, _) = delivers(&cfg).await;
    assert!(delivered);
    assert_eq!(server.pushes(), 1);
}

#[tokio::test]
async fn unknown_ca_is_a_retried_connection_error() {
    let server = TlsLoki::start(false).await;
    let cfg = config(&server.endpoint(), None);
    let (delivered, ctx) = delivers(&cfg).await;
    assert!(!delivered);
    assert_eq!(server.pushes(), 0);
    wait_until(WAIT, "a counted retry", || {
        ctx.metrics
            .loki_retries
            .with_label_values(&["loki_tls", "connection"])
            .get()
            >= 1
    })
    .await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_ca() {
    let server = TlsLoki::start(false).await;
    let cfg = config(&server.endpoint(), Some(tls(false, false, true)));
    let (delivered, _) = delivers(&cfg).await;
    assert!(delivered);
}

#[tokio::test]
async fn mutual_tls_presents_the_client_certificate() {
    let server = TlsLoki::start(true).await;
    let with_cert = config(&server.endpoint(), Some(tls(true, true, false)));
    let (delivered, _) = delivers(&with_cert).await;
    assert!(delivered, "the client certificate was accepted");

    let without = config(&server.endpoint(), Some(tls(true, false, false)));
    let (delivered, _) = delivers(&without).await;
    assert!(!delivered, "the server requires a client certificate");
    assert_eq!(server.pushes(), 1);
}
