//! Binding the test servers' listening sockets.

use std::net::SocketAddr;
use std::time::Duration;

/// Binds `addr` on `rt` (retrying for up to 2 s while a previous listener on the same port
/// is still closing: the servers stop and start on a fixed port) and returns the listener
/// and its address.
pub(crate) fn bind(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let mut attempt = 0;
    let std_listener = loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => break l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < 40 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    };
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let _guard = rt.enter();
    Ok((tokio::net::TcpListener::from_std(std_listener)?, local))
}
