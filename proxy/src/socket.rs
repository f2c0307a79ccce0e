//! Raw socket options in one place. (Transparent-mode options — IP_TRANSPARENT, SO_MARK,
//! original destination — join here with the datapath.)

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Binds a listening TCP socket with SO_REUSEADDR and a deep backlog.
pub fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    TcpListener::from_std(s.into())
}

/// Per-connection options for proxied streams: no Nagle delay on request/response traffic.
pub fn tune_stream(s: &TcpStream) {
    // Best effort: a failure here changes latency, not correctness.
    let _ = s.set_nodelay(true);
}
