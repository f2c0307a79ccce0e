//! Map keys, values and constants shared by strait's tc programs (`src/main.rs`, built for
//! `bpfel-unknown-none`) and the loader in `proxy/src/datapath/`.
//!
//! Every type is `#[repr(C)]` with explicit padding fields so that its bytes are fully defined:
//! user space writes them into BPF maps as raw bytes (`aya::Pod`, behind the `user` feature).
//! Addresses are 16 bytes: IPv4 in the first four (network order), the rest zero; keys hold
//! them as four words ([`Addr`]). Ports in policy keys are host order; ports in conntrack keys
//! are as on the wire.
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
/// Set by `strait_from_ep` on a packet it allowed to another local endpoint: that decision
/// covered the destination's ingress policy, so `strait_to_ep` on the destination's interface
/// passes the packet without looking again. The mark lives only inside the host namespace (the
/// veth into the endpoint's namespace clears it) and selects no route.
pub const MARK_DECIDED: u32 = 0x400;

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

/// An address as the programs hold it: its 16 network-order bytes (IPv4 in the first four,
/// the rest zero) read as four native-endian words, so that keys are built and compared a word
/// at a time instead of a byte at a time. Same bytes in memory as the `[u8; 16]` form.
pub type Addr = [u32; 4];

/// The [`Addr`] of 16 address bytes.
#[inline(always)]
pub fn addr_words(b: &[u8; 16]) -> Addr {
    let w = |i: usize| u32::from_ne_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
    [w(0), w(1), w(2), w(3)]
}

/// The 16 address bytes of an [`Addr`].
#[inline(always)]
pub fn addr_bytes(a: &Addr) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let b = a[i].to_ne_bytes();
        out[4 * i] = b[0];
        out[4 * i + 1] = b[1];
        out[4 * i + 2] = b[2];
        out[4 * i + 3] = b[3];
        i += 1;
    }
    out
}

/// A local endpoint, keyed by one of its addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    pub addr: Addr,
    /// `FAMILY_V4` or `FAMILY_V6` (a word, so the key has no padding to zero).
    pub family: u32,
}

impl EndpointKey {
    #[inline(always)]
    pub fn new(family: u8, addr: Addr) -> Self {
        Self {
            addr,
            family: family as u32,
        }
    }
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

/// A connection, the same key for both directions: its two ends ordered, the lower
/// (address, port) first (words compared in [`Addr`] order, then the port as on the wire).
/// One lookup finds the entry whichever way a packet goes; [`CtEntry::flags`] says which end
/// opened the connection.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub addr_lo: Addr,
    pub addr_hi: Addr,
    /// Ports as on the wire.
    pub port_lo: u16,
    pub port_hi: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: u16,
}

impl CtKey {
    /// The key of a packet from `(saddr, sport)` to `(daddr, dport)`, and whether the sender
    /// is the key's `lo` end.
    #[inline(always)]
    pub fn of(
        family: u8,
        proto: u8,
        saddr: &Addr,
        sport: u16,
        daddr: &Addr,
        dport: u16,
    ) -> (Self, bool) {
        // The first differing word decides; equal addresses fall back to the ports.
        let src_lo = if saddr[0] != daddr[0] {
            saddr[0] < daddr[0]
        } else if saddr[1] != daddr[1] {
            saddr[1] < daddr[1]
        } else if saddr[2] != daddr[2] {
            saddr[2] < daddr[2]
        } else if saddr[3] != daddr[3] {
            saddr[3] < daddr[3]
        } else {
            sport <= dport
        };
        let key = if src_lo {
            Self {
                addr_lo: *saddr,
                addr_hi: *daddr,
                port_lo: sport,
                port_hi: dport,
                proto,
                family,
                _pad: 0,
            }
        } else {
            Self {
                addr_lo: *daddr,
                addr_hi: *saddr,
                port_lo: dport,
                port_hi: sport,
                proto,
                family,
                _pad: 0,
            }
        };
        (key, src_lo)
    }
}

/// `CtEntry::flags`: the connection's originator is the key's `lo` end.
pub const CT_ORIG_LO: u8 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub action: u8,
    /// `CT_ORIG_LO` or 0.
    pub flags: u8,
    pub proxy_port: u16,
    /// Identities of the originator and the responder.
    pub src_identity: u32,
    pub dst_identity: u32,
    pub rule: u32,
    /// Host-side interface that the originator's packets arrive on (its endpoint's veth, seen
    /// by `strait_from_ep`), 0 when the originator is not a local endpoint. Established
    /// packets from that end on any other interface take the full path and its source check.
    pub orig_ifindex: u32,
    /// The same for the responder.
    pub reply_ifindex: u32,
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
    /// 0: from-endpoint (tc ingress), 1: to-endpoint (tc egress), 2: from-uplink (tc ingress
    /// of an uplink).
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
const _: () = assert!(
    MARK_DECIDED & MARK_MASK != MARK_TO_PROXY && MARK_DECIDED & MARK_MASK != MARK_FROM_PROXY
);

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
        assert_eq!(size_of::<CtEntry>(), 32);
        assert_eq!(size_of::<Event>(), 60);
    }

    #[test]
    fn address_words_keep_the_bytes() {
        let b = [
            10, 222, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        ];
        assert_eq!(addr_bytes(&addr_words(&b)), b);
        let v6: [u8; 16] = core::array::from_fn(|i| (i * 17) as u8);
        assert_eq!(addr_bytes(&addr_words(&v6)), v6);
        // Same bytes in memory as the byte form (the pinned-map layout).
        let k = EndpointKey::new(FAMILY_V4, addr_words(&b));
        // SAFETY: EndpointKey is repr(C), 20 bytes of integers without padding.
        let raw: [u8; 20] = unsafe { core::mem::transmute(k) };
        assert_eq!(&raw[..16], &b);
        assert_eq!(raw[16..], [FAMILY_V4, 0, 0, 0]);
    }

    #[test]
    fn conntrack_key_is_the_same_both_ways() {
        let a = addr_words(&[10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let b = addr_words(&[10, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let cases = [
            (a, 40000u16, b, 80u16),
            (b, 80, a, 40000),
            // Same address: the ports decide.
            (a, 1, a, 2),
            (a, 2, a, 1),
            // IPv6 addresses differing only in the last word.
            ([1, 2, 3, 4], 5, [1, 2, 3, 5], 6),
        ];
        for (s, sp, d, dp) in cases {
            let (fwd, fwd_lo) = CtKey::of(FAMILY_V4, 6, &s, sp, &d, dp);
            let (rev, rev_lo) = CtKey::of(FAMILY_V4, 6, &d, dp, &s, sp);
            assert_eq!(fwd, rev);
            assert_ne!(fwd_lo, rev_lo, "exactly one end is `lo`");
            let (lo, lp) = if fwd_lo { (s, sp) } else { (d, dp) };
            assert_eq!((fwd.addr_lo, fwd.port_lo), (lo, lp));
        }
        // Different protocols or families are different connections.
        let (t, _) = CtKey::of(FAMILY_V4, 6, &a, 1, &b, 2);
        let (u, _) = CtKey::of(FAMILY_V4, 17, &a, 1, &b, 2);
        assert_ne!(t, u);
    }
}
