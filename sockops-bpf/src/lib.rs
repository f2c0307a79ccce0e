//! Map keys, values and constants shared by strait's socket-layer programs (`src/main.rs`:
//! `strait_sockops` on sock_ops, `strait_sk_msg` on sk_msg) and the loader in
//! `proxy/src/datapath/sockmap.rs`.
//!
//! Addresses are 16 bytes as in `datapath-bpf` (IPv4 in the first four, network order; an
//! IPv4-mapped IPv6 address is stored as IPv4), ports are host order. Every type is
//! `#[repr(C)]` with explicit padding so its bytes are fully defined.
#![no_std]

pub use datapath_bpf::{FAMILY_V4, FAMILY_V6};

/// One end of a TCP connection as seen by its own socket, in its own network namespace.
/// The netns cookie keeps keys apart across namespaces (127.0.0.1:80 exists in each).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockKey {
    pub netns: u64,
    pub local: [u8; 16],
    pub remote: [u8; 16],
    pub local_port: u16,
    pub remote_port: u16,
    pub family: u8,
    pub _pad: [u8; 3],
}

impl SockKey {
    /// The key of the socket at the other end, living in `netns`.
    #[inline(always)]
    pub fn peer(&self, netns: u64) -> SockKey {
        SockKey {
            netns,
            local: self.remote,
            remote: self.local,
            local_port: self.remote_port,
            remote_port: self.local_port,
            family: self.family,
            _pad: [0; 3],
        }
    }
}

/// `SOCK_ENDPOINTS` value: a local endpoint address, the network namespace its sockets live
/// in, its identity and policy flags (`datapath_bpf::EP_ENFORCE_*`) plus `EP_SPLICE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockEndpoint {
    pub netns: u64,
    pub identity: u32,
    pub flags: u32,
}

/// `SockEndpoint::flags`: the endpoint's own sockets may be spliced (per-endpoint opt-out).
pub const EP_SPLICE: u32 = 0x100;

/// `SockState::state`.
pub mod state {
    /// In the sockhash, no message sent yet.
    pub const INSERTED: u8 = 1;
    /// Messages are redirected to `SockState::peer`.
    pub const SPLICING: u8 = 2;
    /// Messages take the TCP path for the rest of the connection (peer missing at the first
    /// message, policy change, splicing turned off). Never leaves this state: going back to
    /// the redirect path could overtake bytes still queued on the TCP path.
    pub const FALLBACK: u8 = 3;
    /// A policy change no longer allows this spliced pair: every further send is dropped
    /// (`write` fails with EACCES). Fail closed: the connection cannot be moved to the proxy
    /// mid-stream, and the TCP path would let it through as an established flow.
    pub const DENIED: u8 = 4;
    /// Not in the sockhash: the adaptive rule found the service's recent connections too
    /// short to gain from splicing. Kept only for the active (client) socket, so that its
    /// close still tells the rule how long the connection was (TCP's own segment counters).
    pub const BYPASSED: u8 = 5;
    /// Spliced, but the peer had `config::MAX_QUEUED` bytes unread: messages take TCP, whose
    /// window makes the writer wait, until the peer has read every byte this socket sent
    /// through TCP (its `copied_seq` reached our `write_seq`). Then redirected bytes cannot
    /// overtake TCP ones, and the connection goes back to `SPLICING`.
    pub const THROTTLED: u8 = 6;
}

/// `SockState::kind`.
pub const KIND_ENDPOINT: u8 = 1;
/// A strait socket in the host namespace whose both addresses are endpoint addresses: an
/// accepted transparent connection, or an upstream leg bound to the client's address.
pub const KIND_PROXY: u8 = 2;

/// Per-socket state (`SOCK_STATE`, keyed by the socket's own `SockKey`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockState {
    pub state: u8,
    pub kind: u8,
    /// 1 when this socket opened the connection (active open).
    pub active: u8,
    pub _pad: u8,
    /// `config::POLICY_GENERATION` when the decision to splice was last checked.
    pub generation: u32,
    pub peer: SockKey,
    /// Sends of this socket seen by sk_msg (saturating).
    pub sends: u32,
    /// Sends of the peer socket, handed over when the peer closed first (adaptive rule).
    pub peer_sends: u32,
    /// The kernel address of this socket (`struct sock *`), recorded by sock_ops so that the
    /// peer's sk_msg can read how many redirected bytes wait unread in this socket's queue
    /// (backpressure). Only ever read with `bpf_probe_read_kernel`, never dereferenced.
    pub sock: u64,
}

/// `SOCK_SERVICES` key: the server end of a connection (address and port), whichever end
/// the socket is. All legs of a connection, direct or through strait, share it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: [u8; 16],
    pub port: u16,
    pub family: u8,
    pub _pad: u8,
}

/// `SOCK_SERVICES` value: what the adaptive rule learned about a service's connections.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Connections that closed in a row carrying at most `config::ADAPTIVE_SHORT_MESSAGES`
    /// messages (both directions); reset by any longer one. Saturates.
    pub short_streak: u32,
    pub _pad: u32,
}

/// Indices of the `SOCK_CONFIG` array (u64 values) that strait writes.
pub mod config {
    /// Netns cookie of strait's own (host) network namespace.
    pub const HOST_NETNS: u32 = 0;
    /// Bumped by strait on every policy change: spliced sockets re-check policy on their
    /// next message.
    pub const POLICY_GENERATION: u32 = 1;
    /// 1: insert and splice new sockets; 0: off (`strait sockmap off`); sockets already
    /// spliced fall back to TCP on their next message.
    pub const ENABLED: u32 = 2;
    /// Adaptive splicing: a connection carrying at most this many messages (sends, both
    /// directions) is "short". 0 turns the rule off (every eligible socket is spliced).
    pub const ADAPTIVE_SHORT_MESSAGES: u32 = 3;
    /// Adaptive splicing: after this many short connections in a row to a service, new
    /// connections to it are not spliced until one longer connection is seen.
    pub const ADAPTIVE_STREAK: u32 = 4;
    /// Backpressure: byte offset of `sk_user_data` (the psock) in the running kernel's
    /// `struct sock`, from its BTF. 0: the check is off.
    pub const OFF_SK_USER_DATA: u32 = 5;
    /// Backpressure: byte offset of `msg_tot_len` (bytes queued by ingress redirects, not yet
    /// read) in the kernel's `struct sk_psock`. 0: the check is off.
    pub const OFF_MSG_TOT_LEN: u32 = 6;
    /// Backpressure: a spliced send that would leave more than this many bytes unread in the
    /// peer's queue sends that direction through TCP (`state::THROTTLED`) until the peer
    /// catches up. 0: the check is off.
    pub const MAX_QUEUED: u32 = 7;
    /// Backpressure: byte offsets of `write_seq` and `copied_seq` in the kernel's
    /// `struct tcp_sock` (whose first member is the `struct sock`).
    pub const OFF_WRITE_SEQ: u32 = 8;
    pub const OFF_COPIED_SEQ: u32 = 9;
    pub const LEN: u32 = 16;
}

/// Indices of the per-CPU counter array (`SOCK_COUNTERS`).
pub mod counter {
    /// Sockets inserted into the sockhash by sock_ops.
    pub const INSERTED: u32 = 0;
    /// sockhash updates refused by the kernel (map full, socket state).
    pub const INSERT_FAILED: u32 = 1;
    /// Messages and bytes redirected to the peer socket.
    pub const REDIRECTED_MSGS: u32 = 2;
    pub const REDIRECTED_BYTES: u32 = 3;
    /// First message found no peer in the sockhash: the connection stays on TCP.
    pub const MISSES: u32 = 4;
    /// Spliced connections that went back to TCP (peer gone, policy change, turned off).
    pub const FALLBACKS: u32 = 5;
    /// Connections not spliced because policy does not allow the pair directly (needs the
    /// proxy, or denied).
    pub const POLICY_REFUSED: u32 = 6;
    /// Inserted sockets that closed.
    pub const CLOSED: u32 = 7;
    /// Messages that took the TCP path (fallback, miss, refused).
    pub const PASSED_MSGS: u32 = 8;
    /// Messages dropped because a policy change denied their spliced connection.
    pub const DENIED_MSGS: u32 = 9;
    /// Connections the adaptive rule left on TCP (counted once, at the client's socket).
    pub const BYPASSED: u32 = 10;
    /// Connections the adaptive rule classified when they closed: short, and longer.
    pub const SHORT_CONNS: u32 = 11;
    pub const LONG_CONNS: u32 = 12;
    /// Spliced directions sent through TCP because the peer had `config::MAX_QUEUED` bytes
    /// unread (`state::THROTTLED`), and those that went back to splicing once it caught up.
    pub const BACKPRESSURE: u32 = 13;
    pub const RESUMED: u32 = 14;
    pub const LEN: u32 = 16;
}

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: `#[repr(C)]`, `Copy`, only integers and byte arrays, every padding byte a field:
    // any bit pattern is valid and none is uninitialised.
    unsafe impl aya::Pod for SockKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SockEndpoint {}
    // SAFETY: as above.
    unsafe impl aya::Pod for SockState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ServiceKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for ServiceStats {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<SockKey>(), 48);
        assert_eq!(size_of::<SockEndpoint>(), 16);
        assert_eq!(size_of::<SockState>(), 72);
        assert_eq!(size_of::<ServiceKey>(), 20);
        assert_eq!(size_of::<ServiceStats>(), 8);
    }

    #[test]
    fn peer_swaps_ends() {
        let k = SockKey {
            netns: 1,
            local: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            remote: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            local_port: 40000,
            remote_port: 80,
            family: FAMILY_V4,
            _pad: [0; 3],
        };
        let p = k.peer(2);
        assert_eq!((p.netns, p.local_port, p.remote_port), (2, 80, 40000));
        assert_eq!(p.peer(1), k);
    }
}
