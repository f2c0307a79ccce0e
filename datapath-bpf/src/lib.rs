//! Map keys, values and constants shared by strait's tc programs (`src/main.rs`, built for
//! `bpfel-unknown-none`) and the loader in `proxy/src/datapath/`.
//!
//! Every type is `#[repr(C)]` with explicit padding fields so that its bytes are fully defined:
//! user space writes them into BPF maps as raw bytes (`aya::Pod`, behind the `user` feature).
//! Addresses are stored as 16 bytes: IPv4 in the first four (network order), the rest zero.
//! Ports in policy keys are host order; ports in conntrack keys are as on the wire.
#![no_std]

/// Address family tags used in keys.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// Reserved identities, numbered as Cilium numbers them.
pub const IDENTITY_UNKNOWN: u32 = 0;
pub const IDENTITY_HOST: u32 = 1;
pub const IDENTITY_WORLD: u32 = 2;
/// First identity allocated for a label set.
pub const IDENTITY_FIRST_LOCAL: u32 = 256;

/// `skb->mark` bits. Packets carrying `MARK_TO_PROXY` under `MARK_MASK` are routed by the
/// policy rule (fwmark 0x200/0xf00 → table 2004, `local default dev lo`) to a local socket.
pub const MARK_MASK: u32 = 0xf00;
pub const MARK_TO_PROXY: u32 = 0x200;
/// SO_MARK of strait's own upstream sockets: never redirected again, never policed twice.
/// Must not match `MARK_TO_PROXY` under `MARK_MASK` (that would route them into table 2004).
pub const MARK_FROM_PROXY: u32 = 0xb00;

/// Policy directions (`PolicyKey::direction`).
pub const DIR_INGRESS: u8 = 0;
pub const DIR_EGRESS: u8 = 1;

/// Policy / conntrack actions.
pub const ACTION_ALLOW: u8 = 1;
pub const ACTION_DENY: u8 = 2;
pub const ACTION_REDIRECT: u8 = 3;

/// `EndpointInfo::flags`: policy selects this endpoint for ingress / egress (default deny).
pub const EP_ENFORCE_INGRESS: u32 = 1;
pub const EP_ENFORCE_EGRESS: u32 = 2;

/// A local endpoint, keyed by one of its addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    pub addr: [u8; 16],
    pub family: u8,
    pub _pad: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    pub identity: u32,
    /// Host-side interface of the endpoint: packets from this address on another interface
    /// are spoofed.
    pub ifindex: u32,
    pub flags: u32,
    pub _pad: u32,
}

/// Identity of a CIDR (the ipcache). Keys are `LpmTrie` keys over `[u8; 4]` / `[u8; 16]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpcacheInfo {
    pub identity: u32,
}

/// One policy entry: what `local_identity` may exchange with `remote_identity` on
/// (`dport`, `proto`) in `direction`. Zero in `remote_identity`, `dport` or `proto` is a
/// wildcard; lookups go L3/L4, L4-only, then the same two with any port of the protocol,
/// L3-only, then all — Cilium's order, with its protocol-only wildcards.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PolicyKey {
    pub local_identity: u32,
    pub remote_identity: u32,
    pub dport: u16,
    pub proto: u8,
    pub direction: u8,
}

/// The keys a policy lookup tries, most specific first (see [`PolicyKey`]). Shared by the tc
/// programs and the socket-layer programs (`sockops-bpf`), which read the same `POLICY` map.
#[inline(always)]
pub fn policy_keys(local: u32, remote: u32, dport: u16, proto: u8, dir: u8) -> [PolicyKey; 6] {
    let k = |remote_identity, dport, proto| PolicyKey {
        local_identity: local,
        remote_identity,
        dport,
        proto,
        direction: dir,
    };
    [
        k(remote, dport, proto),
        k(0, dport, proto),
        k(remote, 0, proto),
        k(0, 0, proto),
        k(remote, 0, 0),
        k(0, 0, 0),
    ]
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyEntry {
    pub action: u8,
    pub _pad: u8,
    /// For `ACTION_REDIRECT`: the proxy's transparent listener port (key of `PROXY_LISTENERS`).
    pub proxy_port: u16,
    /// Index of the policy rule that produced the entry (reported in events).
    pub rule: u32,
}

/// A connection as seen from its originator.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub action: u8,
    pub _pad: u8,
    pub proxy_port: u16,
    pub src_identity: u32,
    pub dst_identity: u32,
    pub rule: u32,
    pub created_ns: u64,
}

/// Indices of the per-CPU counter array (`COUNTERS`).
pub mod counter {
    pub const PACKETS: u32 = 0;
    pub const BYTES: u32 = 1;
    pub const ALLOWED: u32 = 2;
    pub const REDIRECTED: u32 = 3;
    pub const CT_HITS: u32 = 4;
    pub const CT_CREATED: u32 = 5;
    pub const PROXY_RETURN: u32 = 6;
    /// `DROP_BASE + reason` counts drops by `drop::*` reason.
    pub const DROP_BASE: u32 = 16;
    pub const LEN: u32 = 32;
}

/// Drop reasons (also `Event::reason`). Documented in docs/datapath.md.
pub mod drop {
    /// Policy selects the endpoint and no rule allows the traffic.
    pub const POLICY_DENIED: u8 = 1;
    /// An explicit deny rule matched.
    pub const POLICY_DENY_RULE: u8 = 2;
    /// L7 policy applies but strait's transparent listener is not there (strait down).
    pub const PROXY_UNAVAILABLE: u8 = 3;
    /// IPv4 fragment or IPv6 fragment header: ports are unknown, so policy cannot be decided.
    pub const FRAGMENT: u8 = 4;
    /// Truncated or malformed IP/L4 header.
    pub const MALFORMED: u8 = 5;
    /// Source address does not belong to the endpoint behind this interface.
    pub const SPOOFED_SOURCE: u8 = 6;
    /// Neither IPv4, IPv6 nor ARP from an endpoint.
    pub const UNKNOWN_L3: u8 = 7;
    /// Too many IPv6 extension headers to walk.
    pub const IPV6_EXT_HEADERS: u8 = 8;
    /// `bpf_sk_assign` refused the proxy socket.
    pub const SK_ASSIGN_FAILED: u8 = 9;
    /// L7 policy on traffic that cannot be redirected (UDP, or not from a local endpoint).
    pub const REDIRECT_UNSUPPORTED: u8 = 10;
    pub const MAX: u8 = 15;
}

/// Event kinds (`Event::kind`).
pub const EVENT_DROP: u8 = 1;
pub const EVENT_VERDICT: u8 = 2;

/// A drop or a policy verdict on a new connection, sent through the `EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: u8,
    pub reason: u8,
    pub action: u8,
    pub proto: u8,
    pub family: u8,
    /// 0: from-endpoint (tc ingress), 1: to-endpoint (tc egress).
    pub hook: u8,
    pub sport: u16,
    pub dport: u16,
    pub proxy_port: u16,
    pub ifindex: u32,
    pub src_identity: u32,
    pub dst_identity: u32,
    pub rule: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

// The proxy's own mark must never select the to-proxy policy route.
const _: () = assert!(MARK_FROM_PROXY & MARK_MASK != MARK_TO_PROXY);

/// Rule index meaning "no rule" (default deny, no policy).
pub const RULE_NONE: u32 = u32::MAX;

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: all of these are `#[repr(C)]`, `Copy`, made only of integers and byte arrays, with
    // every padding byte spelled out as a field, so any bit pattern is valid and none is
    // uninitialised.
    unsafe impl aya::Pod for EndpointKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for EndpointInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for IpcacheInfo {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PolicyKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for PolicyEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CtKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for CtEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Event {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<EndpointKey>(), 20);
        assert_eq!(size_of::<EndpointInfo>(), 16);
        assert_eq!(size_of::<PolicyKey>(), 12);
        assert_eq!(size_of::<PolicyEntry>(), 8);
        assert_eq!(size_of::<CtKey>(), 40);
        assert_eq!(size_of::<CtEntry>(), 24);
        assert_eq!(size_of::<Event>(), 60);
    }
}
