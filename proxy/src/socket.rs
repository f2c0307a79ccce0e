//! Raw socket options in one place: listeners, transparent mode (IP_TRANSPARENT, SO_MARK) and
//! upstream sockets.

use std::net::{IpAddr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Binds a listening TCP socket with SO_REUSEADDR and a deep backlog.
///
/// `transparent`: IP_TRANSPARENT, so the listener accepts connections the datapath assigned to
/// it whatever their destination address (`bpf_sk_assign`), and answers from that address. The
/// accepted socket's local address is then the client's original destination.
pub fn bind_listener(addr: SocketAddr, transparent: bool) -> std::io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if transparent {
        set_transparent(&s, addr.is_ipv6())?;
    }
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

fn set_transparent(s: &Socket, v6: bool) -> std::io::Result<()> {
    if v6 {
        s.set_ip_transparent_v6(true)
    } else {
        s.set_ip_transparent_v4(true)
    }
    .map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("setting IP_TRANSPARENT: {e} (needs CAP_NET_ADMIN)"),
        )
    })
}

/// An unconnected upstream socket for `dest`: bound to `bind` (port 0) with IP_TRANSPARENT
/// when the address is not the node's own, and marked with `mark` (SO_MARK).
pub fn upstream_socket(
    dest: SocketAddr,
    bind: Option<IpAddr>,
    mark: Option<u32>,
) -> std::io::Result<tokio::net::TcpSocket> {
    let s = Socket::new(Domain::for_address(dest), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    if let Some(m) = mark {
        s.set_mark(m).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("setting SO_MARK {m:#x}: {e} (needs CAP_NET_ADMIN)"),
            )
        })?;
    }
    if let Some(ip) = bind {
        set_transparent(&s, dest.is_ipv6())?;
        s.bind(&SocketAddr::new(ip, 0).into())?;
    }
    Ok(tokio::net::TcpSocket::from_std_stream(s.into()))
}

/// Every address configured on the host's interfaces (getifaddrs), loopback excluded.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, valid until freeifaddrs.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: non-null sockaddr of the node; the family says which struct it is.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            let ip = if family == libc::AF_INET {
                // SAFETY: AF_INET addresses are sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                Some(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ))
            } else if family == libc::AF_INET6 {
                // SAFETY: AF_INET6 addresses are sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                Some(IpAddr::from(sin6.sin6_addr.s6_addr))
            } else {
                None
            };
            if let Some(ip) = ip.filter(|ip| !ip.is_loopback()) {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// `SO_NETNS_COOKIE` (Linux ≥ 5.14): the cookie of the network namespace a socket lives in,
/// the value `bpf_get_netns_cookie` returns for its sockets.
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The netns cookie of the calling thread's network namespace.
pub fn current_netns_cookie() -> std::io::Result<u64> {
    let s = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let mut v: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `v`/`len` are a valid out-buffer of the size passed; the fd is open for the call.
    let r = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(v)
}

/// The netns cookie of the network namespace at `path` (e.g. `/var/run/netns/NAME`), read from
/// a short-lived thread that joins it (`setns` changes only the calling thread).
pub fn netns_cookie(path: &std::path::Path) -> std::io::Result<u64> {
    let f = std::fs::File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: `f` is an open nsfs file; CLONE_NEWNET moves only this thread, which
            // ends right after reading the cookie.
            let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            current_netns_cookie()
        })
        .join()
        .map_err(|_| std::io::Error::other("netns cookie thread panicked"))?
    })
}
