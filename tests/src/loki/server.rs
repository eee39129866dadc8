//! The accept loop. Raw hyper over tokio (not axum) so that a handler can make its
//! connection close without any HTTP answer, and so that stopping closes the listener and
//! every open connection at once (what "Loki is down" looks like to a client).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::handler::{ConnCtx, handle};
use super::store::Shared;

/// A running listener: cancel it to close the socket and all its connections.
pub(crate) struct Listener {
    cancel: CancellationToken,
    closed: mpsc::Receiver<()>,
}

impl Listener {
    /// Closes the listening socket and every connection; returns once the socket is closed
    /// (or after a few seconds if the runtime is wedged).
    pub fn stop(self) {
        self.cancel.cancel();
        let _ = self.closed.recv_timeout(Duration::from_secs(5));
    }
}

/// Binds `addr` (retrying briefly: the previous listener may still be closing) and serves.
pub(crate) fn listen(
    rt: &Runtime,
    addr: SocketAddr,
    shared: Arc<Shared>,
) -> std::io::Result<(Listener, SocketAddr)> {
    let (listener, local) = crate::listen::bind(rt, addr)?;
    let cancel = CancellationToken::new();
    let (closed_tx, closed) = mpsc::channel();
    let token = cancel.clone();
    rt.spawn(async move {
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, shared.clone(), token.child_token()));
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
        drop(listener);
        let _ = closed_tx.send(());
    });
    Ok((Listener { cancel, closed }, local))
}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>, cancel: CancellationToken) {
    let drop_conn = Arc::new(Notify::new());
    let ctx = ConnCtx {
        drop_conn: drop_conn.clone(),
        cancel: cancel.clone(),
    };
    let svc = service_fn(move |req| handle(shared.clone(), ctx.clone(), req));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    // Dropping `conn` closes the socket, whatever state the exchange is in.
    tokio::select! {
        _ = conn => {}
        _ = drop_conn.notified() => {}
        _ = cancel.cancelled() => {}
    }
}
