//! strait's tc programs. Built for `bpfel-unknown-none` by `proxy/build.rs` (aya-build, pinned
//! nightly); on the host this binary is an empty `main` so the workspace builds on stable.
//!
//! - `strait_from_ep` (tc ingress of an endpoint's host-side veth: packets the endpoint sends):
//!   source check, conntrack, egress policy of the source and ingress policy of a local
//!   destination, redirect of L7-policy connections to strait's transparent listener with
//!   `bpf_sk_assign`, and delivery of replies to strait's own upstream sockets.
//! - `strait_to_ep` (tc egress of the host-side veth: packets to the endpoint): ingress policy for
//!   traffic that did not pass `strait_from_ep` of a local endpoint (host, other interfaces).
//!
//! The common packet (IPv4 without options or IPv6 without extension headers, TCP or UDP,
//! headers in the linear data) is read with direct packet access behind one bounds check.
//! Everything else is read with `bpf_skb_load_bytes` (`ctx.load`, a few large loads), so no
//! read can go past the packet whatever its length; a failed read is a `MALFORMED` drop.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod prog {
    use core::ffi::c_void;

    use aya_ebpf::bindings::{bpf_sock, bpf_sock_tuple, TC_ACT_OK, TC_ACT_SHOT};
    use aya_ebpf::helpers::{
        bpf_ktime_get_ns, bpf_map_lookup_elem, bpf_redirect_neigh, bpf_sk_assign, bpf_sk_release,
        bpf_skb_load_bytes, bpf_skc_lookup_tcp,
    };
    use aya_ebpf::macros::{classifier, map};
    use aya_ebpf::maps::lpm_trie::Key as LpmKey;
    use aya_ebpf::maps::{HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf, SockHash};
    use aya_ebpf::programs::TcContext;
    use aya_ebpf::EbpfContext;
    use datapath_bpf::*;

    #[map]
    static ENDPOINTS: HashMap<EndpointKey, EndpointInfo> = HashMap::pinned(4096, 0);
    #[map]
    static IPCACHE4: LpmTrie<[u8; 4], IpcacheInfo> = LpmTrie::pinned(16384, 0);
    #[map]
    static IPCACHE6: LpmTrie<[u8; 16], IpcacheInfo> = LpmTrie::pinned(16384, 0);
    #[map]
    static POLICY: HashMap<PolicyKey, PolicyEntry> = HashMap::pinned(65536, 0);
    #[map]
    static CT: LruHashMap<CtKey, CtEntry> = LruHashMap::pinned(262144, 0);
    #[map]
    static PROXY_LISTENERS: SockHash<u32> = SockHash::pinned(64, 0);
    #[map]
    static COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(counter::LEN, 0);
    #[map]
    static EVENTS: RingBuf = RingBuf::pinned(256 * 1024, 0);

    /// 1: packets allowed from one local endpoint to another go straight to the destination's
    /// interface (`bpf_redirect_neigh`), past the host's IP forwarding and netfilter; 0: the
    /// host routes them. Set by the loader from `datapath.host_routing`.
    #[no_mangle]
    static LOCAL_REDIRECT: u32 = 0;

    const ETH_LEN: usize = 14;
    const ETH_P_IP: u16 = 0x0800;
    const ETH_P_IPV6: u16 = 0x86dd;
    const ETH_P_ARP: u16 = 0x0806;
    const PROTO_ICMP: u8 = 1;
    const PROTO_TCP: u8 = 6;
    const PROTO_UDP: u8 = 17;
    const PROTO_ICMPV6: u8 = 58;
    const TCP_FLAG_SYN: u8 = 0x02;
    const TCP_FLAG_RST: u8 = 0x04;
    const TCP_FLAG_ACK: u8 = 0x10;
    const TCP_LISTEN: u32 = 10;
    const TCP_TIME_WAIT: u32 = 6;
    const HOOK_FROM_EP: u8 = 0;
    const HOOK_TO_EP: u8 = 1;
    const HOOK_FROM_UPLINK: u8 = 2;

    /// A parsed packet: the parts policy needs.
    struct Pkt {
        family: u8,
        proto: u8,
        tcp_flags: u8,
        saddr: Addr,
        daddr: Addr,
        /// Wire order, as in the packet.
        sport: u16,
        dport: u16,
    }

    impl Pkt {
        /// All zero, for the parsers to fill in.
        const EMPTY: Pkt = Pkt {
            family: 0,
            proto: 0,
            tcp_flags: 0,
            saddr: [0; 4],
            daddr: [0; 4],
            sport: 0,
            dport: 0,
        };

        fn dport_host(&self) -> u16 {
            u16::from_be(self.dport)
        }
        fn sport_host(&self) -> u16 {
            u16::from_be(self.sport)
        }
    }

    enum Parsed {
        /// IPv4/IPv6 with the L4 ports where there are any.
        Ip(Pkt),
        /// ARP, ICMP, ICMPv6: passed without policy (documented).
        Pass,
        Drop(u8),
    }

    #[inline(always)]
    fn count(idx: u32, n: u64) {
        if let Some(p) = COUNTERS.get_ptr_mut(idx) {
            // SAFETY: per-CPU slot of this CPU; programs do not migrate while running.
            unsafe { *p += n };
        }
    }

    /// Parses with as few helper calls as possible: one load for the Ethernet + IP header, one
    /// for the L4 ports and flags (each `bpf_skb_load_bytes` call costs more than the bytes it
    /// copies). Short frames take the slow path, which finds out what they are.
    /// `bpf_skb_load_bytes` into a zeroed buffer: no uninitialised bytes for LLVM to carry
    /// into a path the verifier then refuses.
    #[inline(always)]
    fn load_into<const N: usize>(ctx: &TcContext, off: usize, buf: &mut [u8; N]) -> bool {
        // SAFETY: `buf` is N writable bytes; the helper bounds-checks the packet side.
        unsafe {
            bpf_skb_load_bytes(
                ctx.as_ptr() as *const c_void,
                off as u32,
                buf.as_mut_ptr() as *mut c_void,
                N as u32,
            ) == 0
        }
    }

    /// The common case read straight from the packet's linear data: IPv4 without options or
    /// IPv6 without extension headers, carrying TCP or UDP, with the headers in the linear
    /// part (as the stack builds them). One bounds check covers every read; anything else
    /// returns `None` and takes [`parse_slow`], which handles (and judges) the rest.
    #[inline(always)]
    fn parse_fast(ctx: &TcContext) -> Option<Pkt> {
        let data = ctx.data();
        let end = ctx.data_end();
        // Ethernet + IPv4 header + the first 14 bytes of TCP (ports, flags).
        if data + ETH_LEN + 20 + 14 > end {
            return None;
        }
        let h = data as *const u8;
        // SAFETY: every read below is at a constant offset under ETH_LEN + 20 + 14, which
        // the check above proved is inside the packet; `rd` reads one byte.
        let rd = |off: usize| unsafe { *h.add(off) };
        // SAFETY: as above, four bytes; unaligned reads are allowed on packet data.
        let rd32 = |off: usize| unsafe { core::ptr::read_unaligned(h.add(off) as *const u32) };
        let ethertype = u16::from_be_bytes([rd(12), rd(13)]);
        let mut p = Pkt::EMPTY;
        let l4;
        if ethertype == ETH_P_IP {
            // Version 4, no options, not a fragment.
            if rd(ETH_LEN) != 0x45 || (rd(ETH_LEN + 6) & 0x3f) != 0 || rd(ETH_LEN + 7) != 0 {
                return None;
            }
            p.family = FAMILY_V4;
            p.proto = rd(ETH_LEN + 9);
            p.saddr[0] = rd32(ETH_LEN + 12);
            p.daddr[0] = rd32(ETH_LEN + 16);
            l4 = ETH_LEN + 20;
        } else if ethertype == ETH_P_IPV6 {
            if data + ETH_LEN + 40 + 14 > end {
                return None;
            }
            // SAFETY: constant offsets under ETH_LEN + 40 + 14, checked just above; four-byte
            // unaligned reads of packet data.
            let rd6 = |off: usize| unsafe { core::ptr::read_unaligned(h.add(off) as *const u32) };
            p.family = FAMILY_V6;
            p.proto = rd(ETH_LEN + 6);
            let mut i = 0;
            while i < 4 {
                p.saddr[i] = rd6(ETH_LEN + 8 + 4 * i);
                p.daddr[i] = rd6(ETH_LEN + 24 + 4 * i);
                i += 1;
            }
            l4 = ETH_LEN + 40;
        } else {
            return None;
        }
        if p.proto == PROTO_TCP {
            // SAFETY: l4 + 14 is within the checked length of this family's branch.
            let r = |off: usize| unsafe { *h.add(l4 + off) };
            p.sport = u16::from_ne_bytes([r(0), r(1)]);
            p.dport = u16::from_ne_bytes([r(2), r(3)]);
            p.tcp_flags = r(13);
        } else if p.proto == PROTO_UDP {
            // SAFETY: as above (a UDP header is 8 bytes).
            let r = |off: usize| unsafe { *h.add(l4 + off) };
            p.sport = u16::from_ne_bytes([r(0), r(1)]);
            p.dport = u16::from_ne_bytes([r(2), r(3)]);
        } else {
            return None;
        }
        Some(p)
    }

    #[inline(always)]
    fn parse(ctx: &TcContext) -> Parsed {
        match parse_fast(ctx) {
            Some(p) => Parsed::Ip(p),
            None => parse_slow(ctx),
        }
    }

    #[inline(always)]
    fn parse_slow(ctx: &TcContext) -> Parsed {
        let mut p = Pkt::EMPTY;
        let l4: usize;
        let mut h = [0u8; ETH_LEN + 20];
        let full = load_into(ctx, 0, &mut h);
        if !full {
            let mut e = [0u8; 2];
            if !load_into(ctx, 12, &mut e) {
                return Parsed::Drop(drop::MALFORMED);
            }
            h[12] = e[0];
            h[13] = e[1];
        }
        let ethertype = u16::from_be_bytes([h[12], h[13]]);
        if ethertype == ETH_P_IP {
            // Shorter than an IPv4 header: malformed.
            if !full {
                return Parsed::Drop(drop::MALFORMED);
            }
            let vihl = h[ETH_LEN];
            let ihl = (vihl & 0x0f) as usize;
            if vihl >> 4 != 4 || ihl < 5 {
                return Parsed::Drop(drop::MALFORMED);
            }
            let frag = u16::from_be_bytes([h[ETH_LEN + 6], h[ETH_LEN + 7]]);
            p.proto = h[ETH_LEN + 9];
            p.saddr[0] = u32::from_ne_bytes([
                h[ETH_LEN + 12],
                h[ETH_LEN + 13],
                h[ETH_LEN + 14],
                h[ETH_LEN + 15],
            ]);
            p.daddr[0] = u32::from_ne_bytes([
                h[ETH_LEN + 16],
                h[ETH_LEN + 17],
                h[ETH_LEN + 18],
                h[ETH_LEN + 19],
            ]);
            p.family = FAMILY_V4;
            if p.proto == PROTO_ICMP {
                return Parsed::Pass;
            }
            // MF set or a non-zero offset: the ports are not (all) here.
            if frag & 0x3fff != 0 {
                return Parsed::Drop(drop::FRAGMENT);
            }
            // IP options are skipped by the header length.
            l4 = ETH_LEN + ihl * 4;
        } else if ethertype == ETH_P_IPV6 {
            let mut h = [0u8; 40];
            if !load_into(ctx, ETH_LEN, &mut h) {
                return Parsed::Drop(drop::MALFORMED);
            }
            let mut next = h[6];
            let mut a = [0u8; 16];
            a.copy_from_slice(&h[8..24]);
            p.saddr = addr_words(&a);
            a.copy_from_slice(&h[24..40]);
            p.daddr = addr_words(&a);
            p.family = FAMILY_V6;
            let mut off = ETH_LEN + 40;
            let mut walked = 0;
            // Hop-by-hop (0), routing (43), destination options (60): skip; fragment (44): drop.
            while next == 0 || next == 43 || next == 60 || next == 44 {
                if next == 44 {
                    return Parsed::Drop(drop::FRAGMENT);
                }
                if walked == 4 {
                    return Parsed::Drop(drop::IPV6_EXT_HEADERS);
                }
                let hdr = match ctx.load::<[u8; 2]>(off) {
                    Ok(v) => v,
                    Err(_) => return Parsed::Drop(drop::MALFORMED),
                };
                next = hdr[0];
                off += (hdr[1] as usize + 1) * 8;
                walked += 1;
            }
            p.proto = next;
            if p.proto == PROTO_ICMPV6 {
                return Parsed::Pass;
            }
            l4 = off;
        } else if ethertype == ETH_P_ARP {
            return Parsed::Pass;
        } else {
            return Parsed::Drop(drop::UNKNOWN_L3);
        }
        if p.proto == PROTO_TCP {
            // Ports and flags in one load (a TCP header is at least 20 bytes).
            let mut t = [0u8; 14];
            if !load_into(ctx, l4, &mut t) {
                return Parsed::Drop(drop::MALFORMED);
            }
            p.sport = u16::from_ne_bytes([t[0], t[1]]);
            p.dport = u16::from_ne_bytes([t[2], t[3]]);
            p.tcp_flags = t[13];
        } else if p.proto == PROTO_UDP {
            let ports = match ctx.load::<[u16; 2]>(l4) {
                Ok(v) => v,
                Err(_) => return Parsed::Drop(drop::MALFORMED),
            };
            p.sport = ports[0];
            p.dport = ports[1];
        }
        Parsed::Ip(p)
    }

    #[inline(always)]
    fn ep_key(family: u8, addr: &Addr) -> EndpointKey {
        EndpointKey::new(family, *addr)
    }

    /// Identity of a remote address: a local endpoint, else the ipcache, else world.
    #[inline(always)]
    fn identity_of(family: u8, addr: &Addr) -> u32 {
        if let Some(ep) = lookup(&ENDPOINTS, &ep_key(family, addr)) {
            return ep.identity;
        }
        if family == FAMILY_V4 {
            let key = LpmKey::new(32, addr[0].to_ne_bytes());
            if let Some(v) = IPCACHE4.get(&key) {
                // SAFETY: as in `lookup`.
                return unsafe { core::ptr::read_volatile(&v.identity) };
            }
        } else {
            let key = LpmKey::new(128, addr_bytes(addr));
            if let Some(v) = IPCACHE6.get(&key) {
                // SAFETY: as in `lookup`.
                return unsafe { core::ptr::read_volatile(&v.identity) };
            }
        }
        IDENTITY_WORLD
    }

    #[inline(always)]
    fn lookup<K, V: Copy>(m: &HashMap<K, V>, k: &K) -> Option<V> {
        // SAFETY: the value is copied out at once; BPF hash values stay valid for the
        // duration of the program (RCU). A volatile read makes LLVM load the value here instead
        // of keeping the map pointer around (the verifier rejects the arithmetic it then does
        // on the pointer).
        m.get_ptr(k).map(|p| unsafe { core::ptr::read_volatile(p) })
    }

    /// Policy decision of one direction: `(action, proxy_port, rule)`; no matching entry is
    /// a default deny.
    #[inline(always)]
    fn policy(local: u32, remote: u32, dport: u16, proto: u8, dir: u8) -> (u8, u16, u32) {
        let keys = policy_keys(local, remote, dport, proto, dir);
        // A deny entry anywhere wins (as Cilium's deny policies); otherwise the most specific
        // allow/redirect in Cilium's order. Plain scalars, not an Option<PolicyEntry>: LLVM
        // would read the uninitialised payload of a None, which the verifier refuses.
        let mut action = ACTION_DENY;
        let mut port = 0u16;
        let mut rule = RULE_NONE;
        let mut have = false;
        let mut i = 0;
        while i < keys.len() {
            if let Some(e) = lookup(&POLICY, &keys[i]) {
                if e.action == ACTION_DENY {
                    return (ACTION_DENY, 0, e.rule);
                }
                if !have {
                    have = true;
                    action = e.action;
                    port = e.proxy_port;
                    rule = e.rule;
                }
            }
            i += 1;
        }
        (action, port, rule)
    }

    #[inline(always)]
    fn emit(
        kind: u8,
        reason: u8,
        action: u8,
        hook: u8,
        ifindex: u32,
        p: &Pkt,
        src: u32,
        dst: u32,
        rule: u32,
        proxy_port: u16,
    ) {
        if let Some(mut slot) = EVENTS.reserve::<Event>(0) {
            slot.write(Event {
                kind,
                reason,
                action,
                proto: p.proto,
                family: p.family,
                hook,
                sport: p.sport_host(),
                dport: p.dport_host(),
                proxy_port,
                ifindex,
                src_identity: src,
                dst_identity: dst,
                rule,
                saddr: addr_bytes(&p.saddr),
                daddr: addr_bytes(&p.daddr),
            });
            slot.submit(0);
        }
    }

    #[inline(always)]
    fn shot(reason: u8) -> i32 {
        let r = if reason > drop::MAX {
            drop::MAX
        } else {
            reason
        };
        count(counter::DROP_BASE + r as u32, 1);
        TC_ACT_SHOT
    }

    #[inline(always)]
    fn ifindex(ctx: &TcContext) -> u32 {
        // SAFETY: `ctx.skb.skb` is the program's context pointer; reading a field is allowed.
        unsafe { (*ctx.skb.skb).ifindex }
    }

    #[inline(always)]
    fn mark(ctx: &TcContext) -> u32 {
        // SAFETY: as above; a volatile read keeps LLVM from deriving a ctx pointer.
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*ctx.skb.skb).mark)) }
    }

    /// Sets `bits` under `MARK_MASK`. Written with a volatile store straight to the context
    /// field: the verifier rejects stores through a ctx pointer LLVM has offset.
    #[inline(always)]
    fn set_mark(ctx: &TcContext, bits: u32) {
        let m = (mark(ctx) & !MARK_MASK) | bits;
        // SAFETY: writing `mark` of the context is allowed for tc programs.
        unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*ctx.skb.skb).mark), m) }
    }

    /// The verdict for a packet allowed towards the local endpoint behind `ifindex`: marked as
    /// decided, then handed to that interface or to the host's routing.
    #[inline(always)]
    fn to_local(ctx: &TcContext, ifindex: u32) -> i32 {
        set_mark(ctx, MARK_DECIDED);
        // SAFETY: a read of a constant the loader may have set; volatile so LLVM keeps it.
        if unsafe { core::ptr::read_volatile(&LOCAL_REDIRECT) } == 0 {
            return TC_ACT_OK;
        }
        // SAFETY: no parameters (the kernel resolves the next hop on `ifindex`), flags 0. The
        // helper returns TC_ACT_REDIRECT, or TC_ACT_SHOT when the interface is gone.
        unsafe { bpf_redirect_neigh(ifindex, core::ptr::null_mut(), 0, 0) as i32 }
    }

    #[inline(always)]
    fn set_proxy_mark(ctx: &TcContext) {
        set_mark(ctx, MARK_TO_PROXY);
    }

    #[inline(always)]
    fn tuple4(p: &Pkt) -> bpf_sock_tuple {
        // SAFETY: all-zero is a valid `bpf_sock_tuple` (plain integers).
        let mut t: bpf_sock_tuple = unsafe { core::mem::zeroed() };
        // Writing a union member of a zeroed value (safe: plain integers).
        t.__bindgen_anon_1.ipv4.saddr = p.saddr[0];
        t.__bindgen_anon_1.ipv4.daddr = p.daddr[0];
        t.__bindgen_anon_1.ipv4.sport = p.sport;
        t.__bindgen_anon_1.ipv4.dport = p.dport;
        t
    }

    #[inline(always)]
    fn tuple6(p: &Pkt) -> bpf_sock_tuple {
        // SAFETY: all-zero is a valid `bpf_sock_tuple` (plain integers).
        let mut t: bpf_sock_tuple = unsafe { core::mem::zeroed() };
        // Writing a union member of a zeroed value (safe: plain integers).
        t.__bindgen_anon_1.ipv6.saddr = p.saddr;
        t.__bindgen_anon_1.ipv6.daddr = p.daddr;
        t.__bindgen_anon_1.ipv6.sport = p.sport;
        t.__bindgen_anon_1.ipv6.dport = p.dport;
        t
    }

    /// A host socket (any state) owning exactly this packet's tuple, or null. The caller
    /// releases it.
    #[inline(always)]
    fn own_socket(ctx: &TcContext, p: &Pkt) -> *mut bpf_sock {
        let (mut t, len) = if p.family == FAMILY_V4 {
            (tuple4(p), 12u32)
        } else {
            (tuple6(p), 36u32)
        };
        // SAFETY: the tuple lives on the stack for the call; netns -1 (BPF_F_CURRENT_NETNS)
        // is the host netns where the program runs; flags 0.
        unsafe {
            bpf_skc_lookup_tcp(
                ctx.as_ptr(),
                &mut t as *mut bpf_sock_tuple,
                len,
                0xffff_ffff_ffff_ffffu64,
                0,
            )
        }
    }

    /// Hands the packet to the proxy: its accepted (or half-open) socket for this tuple if
    /// there is one, else the transparent listener on `proxy_port`. No listener → drop.
    #[inline(always)]
    fn redirect(ctx: &TcContext, p: &Pkt, proxy_port: u16) -> Result<(), u8> {
        let sk = own_socket(ctx, p);
        if !sk.is_null() {
            // SAFETY: non-null socket returned by the lookup; `state` is in sock_common.
            let state = unsafe { (*sk).state };
            if state != TCP_LISTEN && state != TCP_TIME_WAIT {
                // SAFETY: assigning then releasing the reference the lookup took.
                let r = unsafe { bpf_sk_assign(ctx.as_ptr(), sk as *mut c_void, 0) };
                // SAFETY: `sk` came from bpf_skc_lookup_tcp and is released exactly once.
                unsafe { bpf_sk_release(sk as *mut c_void) };
                if r != 0 {
                    return Err(drop::SK_ASSIGN_FAILED);
                }
                set_proxy_mark(ctx);
                return Ok(());
            }
            // SAFETY: as above, released exactly once on this path.
            unsafe { bpf_sk_release(sk as *mut c_void) };
        }
        let key: u32 = proxy_port as u32;
        // SAFETY: `PROXY_LISTENERS` is a sockhash map definition (repr(transparent) over its
        // MapDef, so its address is the map); the key is a u32 on the stack. The helper
        // returns a referenced socket or null.
        let lsk = unsafe {
            bpf_map_lookup_elem(
                core::ptr::addr_of!(PROXY_LISTENERS) as *mut c_void,
                &key as *const u32 as *const c_void,
            )
        };
        if lsk.is_null() {
            return Err(drop::PROXY_UNAVAILABLE);
        }
        // SAFETY: `lsk` is a referenced socket from the sockhash; released exactly once.
        let r = unsafe { bpf_sk_assign(ctx.as_ptr(), lsk, 0) };
        // SAFETY: as above.
        unsafe { bpf_sk_release(lsk) };
        if r != 0 {
            return Err(drop::SK_ASSIGN_FAILED);
        }
        set_proxy_mark(ctx);
        Ok(())
    }

    /// The packet's conntrack key (the same both ways) and whether its sender is the key's
    /// `lo` end.
    #[inline(always)]
    fn ct_key(p: &Pkt) -> (CtKey, bool) {
        CtKey::of(p.family, p.proto, &p.saddr, p.sport, &p.daddr, p.dport)
    }

    /// Whether a packet whose sender is (`src_lo`) the key's `lo` end goes the way the
    /// connection was opened.
    #[inline(always)]
    fn from_orig(e: &CtEntry, src_lo: bool) -> bool {
        src_lo == (e.flags & CT_ORIG_LO != 0)
    }

    #[inline(always)]
    fn ct_get(k: &CtKey) -> Option<CtEntry> {
        // SAFETY: copied out at once (see `unsafe_get`).
        CT.get_ptr(k)
            .map(|p| unsafe { core::ptr::read_volatile(p) })
    }

    /// A new TCP connection attempt (SYN without ACK) is always judged afresh, even when a
    /// stale entry for the same tuple exists.
    #[inline(always)]
    fn is_syn(p: &Pkt) -> bool {
        p.proto == PROTO_TCP && p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK) == TCP_FLAG_SYN
    }

    /// Counts the packet and parses it: `Err` is the verdict for packets that never reach
    /// policy (pass or drop).
    #[inline(always)]
    fn begin(ctx: &TcContext) -> Result<Pkt, i32> {
        count(counter::PACKETS, 1);
        count(counter::BYTES, ctx.len() as u64);
        match parse(ctx) {
            Parsed::Pass => Err(TC_ACT_OK),
            Parsed::Drop(r) => Err(shot(r)),
            Parsed::Ip(p) => Ok(p),
        }
    }

    #[classifier]
    pub fn strait_from_ep(ctx: TcContext) -> i32 {
        match from_ep(&ctx) {
            Ok(v) | Err(v) => v,
        }
    }

    #[inline(always)]
    fn from_ep(ctx: &TcContext) -> Result<i32, i32> {
        let p = begin(ctx)?;
        let ifx = ifindex(ctx);
        let (key, src_lo) = ct_key(&p);
        // Established flows: one conntrack lookup for either direction. The entry records the
        // interface each end's packets arrive on (checked against `ENDPOINTS` when the entry
        // was made), so a packet on that interface needs no source lookup; any other takes the
        // source check below first.
        // (entry, the packet goes the way the connection was opened, it arrived on the
        // interface recorded for its end)
        let found = if is_syn(&p) { None } else { ct_get(&key) }.map(|e| {
            let orig = from_orig(&e, src_lo);
            let on = if orig {
                e.orig_ifindex
            } else {
                e.reply_ifindex
            };
            (e, orig, on == ifx)
        });
        if let Some((e, orig, true)) = found {
            if let Some(v) = established(ctx, &p, &key, &e, orig, ifx) {
                return v;
            }
        }
        let src = match lookup(&ENDPOINTS, &ep_key(p.family, &p.saddr)) {
            Some(ep) if ep.ifindex == ifx => ep,
            _ => {
                emit(
                    EVENT_DROP,
                    drop::SPOOFED_SOURCE,
                    ACTION_DENY,
                    HOOK_FROM_EP,
                    ifx,
                    &p,
                    IDENTITY_UNKNOWN,
                    IDENTITY_UNKNOWN,
                    RULE_NONE,
                    0,
                );
                return Err(shot(drop::SPOOFED_SOURCE));
            }
        };

        // The source is this endpoint's, on its own interface: an established flow that
        // arrived elsewhere before (an entry made before its endpoint was known here, or an
        // address that moved) is recorded on this interface from now on.
        if let Some((e, orig, false)) = found {
            if let Some(slot) = CT.get_ptr_mut(&key) {
                // SAFETY: a value of the LRU map, valid for this run (RCU); a racing writer
                // stores the same kind of value, and a torn pair only costs a later packet
                // the source lookup again.
                unsafe {
                    if orig {
                        core::ptr::write_volatile(&mut (*slot).orig_ifindex, ifx);
                    } else {
                        core::ptr::write_volatile(&mut (*slot).reply_ifindex, ifx);
                    }
                }
            }
            if let Some(v) = established(ctx, &p, &key, &e, orig, ifx) {
                return v;
            }
        }

        // Replies to a host socket — strait's upstream leg from the client's address, or a
        // connection the host opened — go to that socket (the `-m socket --transparent` rule).
        if p.proto == PROTO_TCP && !is_syn(&p) {
            let sk = own_socket(ctx, &p);
            if !sk.is_null() {
                // SAFETY: non-null socket from the lookup; `state` is in sock_common.
                let state = unsafe { (*sk).state };
                // SAFETY: released exactly once.
                unsafe { bpf_sk_release(sk as *mut c_void) };
                if state != TCP_LISTEN {
                    set_proxy_mark(ctx);
                    count(counter::PROXY_RETURN, 1);
                    return Ok(TC_ACT_OK);
                }
            }
        }

        // New flow: full policy.
        let dst_id;
        let mut action = ACTION_ALLOW;
        let mut proxy_port = 0u16;
        let mut rule = RULE_NONE;
        let dst_ep = lookup(&ENDPOINTS, &ep_key(p.family, &p.daddr));
        dst_id = match dst_ep {
            Some(ep) => ep.identity,
            None => identity_of(p.family, &p.daddr),
        };
        let dport = p.dport_host();
        if src.flags & EP_ENFORCE_EGRESS != 0 {
            let (a, port, r) = policy(src.identity, dst_id, dport, p.proto, DIR_EGRESS);
            action = a;
            proxy_port = port;
            rule = r;
        }
        if action != ACTION_DENY {
            if let Some(ep) = dst_ep {
                if ep.flags & EP_ENFORCE_INGRESS != 0 {
                    let (a, port, r) =
                        policy(ep.identity, src.identity, dport, p.proto, DIR_INGRESS);
                    if a == ACTION_DENY || (a == ACTION_REDIRECT && action != ACTION_REDIRECT) {
                        action = a;
                        proxy_port = port;
                        rule = r;
                    } else if action == ACTION_ALLOW && rule == RULE_NONE {
                        rule = r;
                    }
                }
            }
        }
        if action == ACTION_REDIRECT && p.proto != PROTO_TCP {
            emit(
                EVENT_DROP,
                drop::REDIRECT_UNSUPPORTED,
                ACTION_DENY,
                HOOK_FROM_EP,
                ifx,
                &p,
                src.identity,
                dst_id,
                rule,
                proxy_port,
            );
            return Err(shot(drop::REDIRECT_UNSUPPORTED));
        }
        if action == ACTION_DENY {
            let reason = if rule == RULE_NONE {
                drop::POLICY_DENIED
            } else {
                drop::POLICY_DENY_RULE
            };
            emit(
                EVENT_DROP,
                reason,
                ACTION_DENY,
                HOOK_FROM_EP,
                ifx,
                &p,
                src.identity,
                dst_id,
                rule,
                0,
            );
            return Err(shot(reason));
        }
        let reply_ifindex = match dst_ep {
            Some(ep) => ep.ifindex,
            None => 0,
        };
        let e = new_flow(
            &p,
            (&key, src_lo),
            action,
            proxy_port,
            src.identity,
            dst_id,
            rule,
            HOOK_FROM_EP,
            (ifx, reply_ifindex),
        );
        finish(ctx, &p, &e, HOOK_FROM_EP, ifx)
    }

    /// A packet of a connection conntrack knows, from a source already checked: the verdict,
    /// or `None` when it must take the full path.
    #[inline(always)]
    fn established(
        ctx: &TcContext,
        p: &Pkt,
        key: &CtKey,
        e: &CtEntry,
        orig: bool,
        ifx: u32,
    ) -> Option<Result<i32, i32>> {
        if orig {
            count(counter::CT_HITS, 1);
            if p.tcp_flags & TCP_FLAG_RST != 0 && e.action != ACTION_REDIRECT {
                let _ = CT.remove(key);
            }
            return Some(finish(ctx, p, e, HOOK_FROM_EP, ifx));
        }
        // A reply of a connection the other side opened and policy allowed. Not for
        // redirected entries: their tuple may now belong to strait's upstream leg from the
        // client's address (same port pair), whose replies must reach strait (the full path
        // finds its socket).
        if e.action != ACTION_REDIRECT {
            count(counter::CT_HITS, 1);
            count(counter::ALLOWED, 1);
            if e.orig_ifindex != 0 {
                return Some(Ok(to_local(ctx, e.orig_ifindex)));
            }
            return Some(Ok(TC_ACT_OK));
        }
        None
    }

    /// Records a new flow's verdict: conntrack entry, counter, verdict event.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    /// `ct` is the packet's key and whether its sender is the `lo` end (the sender opens the
    /// flow); `ifs` are the interfaces of the originator and the responder (0: not a local
    /// endpoint). The event reports the interface of `hook`.
    fn new_flow(
        p: &Pkt,
        ct: (&CtKey, bool),
        action: u8,
        proxy_port: u16,
        src: u32,
        dst: u32,
        rule: u32,
        hook: u8,
        ifs: (u32, u32),
    ) -> CtEntry {
        let (key, src_lo) = ct;
        let e = CtEntry {
            action,
            flags: if src_lo { CT_ORIG_LO } else { 0 },
            proxy_port,
            src_identity: src,
            dst_identity: dst,
            rule,
            orig_ifindex: ifs.0,
            reply_ifindex: ifs.1,
            // SAFETY: helper without arguments.
            created_ns: unsafe { bpf_ktime_get_ns() },
        };
        let ifx = if hook == HOOK_TO_EP { ifs.1 } else { ifs.0 };
        let _ = CT.insert(key, &e, 0);
        count(counter::CT_CREATED, 1);
        emit(
            EVENT_VERDICT,
            0,
            action,
            hook,
            ifx,
            p,
            src,
            dst,
            rule,
            proxy_port,
        );
        e
    }

    #[inline(always)]
    fn finish(ctx: &TcContext, p: &Pkt, e: &CtEntry, hook: u8, ifx: u32) -> Result<i32, i32> {
        if e.action == ACTION_REDIRECT {
            return match redirect(ctx, p, e.proxy_port) {
                Ok(()) => {
                    count(counter::REDIRECTED, 1);
                    Ok(TC_ACT_OK)
                }
                Err(reason) => {
                    emit(
                        EVENT_DROP,
                        reason,
                        ACTION_REDIRECT,
                        hook,
                        ifx,
                        p,
                        e.src_identity,
                        e.dst_identity,
                        e.rule,
                        e.proxy_port,
                    );
                    Err(shot(reason))
                }
            };
        }
        count(counter::ALLOWED, 1);
        // Towards another local endpoint: its ingress policy was part of this decision.
        if e.reply_ifindex != 0 {
            return Ok(to_local(ctx, e.reply_ifindex));
        }
        Ok(TC_ACT_OK)
    }

    #[classifier]
    pub fn strait_to_ep(ctx: TcContext) -> i32 {
        match to_ep(&ctx) {
            Ok(v) | Err(v) => v,
        }
    }

    #[inline(always)]
    fn to_ep(ctx: &TcContext) -> Result<i32, i32> {
        // Allowed by `strait_from_ep` of the local source, this destination's ingress policy
        // included: already counted there.
        if mark(ctx) & MARK_MASK == MARK_DECIDED {
            return Ok(TC_ACT_OK);
        }
        let p = begin(ctx)?;
        // strait's own upstream connections: policy was decided when the client connected.
        if mark(ctx) & MARK_MASK == MARK_FROM_PROXY & MARK_MASK {
            count(counter::ALLOWED, 1);
            return Ok(TC_ACT_OK);
        }
        let (key, src_lo) = ct_key(&p);
        let found = ct_get(&key);
        // Established flows, either direction (one lookup).
        if !is_syn(&p) && found.is_some() {
            count(counter::CT_HITS, 1);
            count(counter::ALLOWED, 1);
            return Ok(TC_ACT_OK);
        }
        let dst = match lookup(&ENDPOINTS, &ep_key(p.family, &p.daddr)) {
            Some(ep) => ep,
            // Not addressed to an endpoint (e.g. link-local): no endpoint policy applies.
            None => return Ok(TC_ACT_OK),
        };
        if dst.flags & EP_ENFORCE_INGRESS == 0 {
            count(counter::ALLOWED, 1);
            return Ok(TC_ACT_OK);
        }
        if let Some(e) = found {
            // A SYN decided by strait_from_ep of the local source a moment ago.
            if from_orig(&e, src_lo) && e.action == ACTION_ALLOW {
                count(counter::CT_HITS, 1);
                count(counter::ALLOWED, 1);
                return Ok(TC_ACT_OK);
            }
        }
        let ifx = ifindex(ctx);
        let src_id = identity_of(p.family, &p.saddr);
        let (action, proxy_port, rule) =
            policy(dst.identity, src_id, p.dport_host(), p.proto, DIR_INGRESS);
        if action == ACTION_DENY {
            let reason = if rule == RULE_NONE {
                drop::POLICY_DENIED
            } else {
                drop::POLICY_DENY_RULE
            };
            emit(
                EVENT_DROP,
                reason,
                ACTION_DENY,
                HOOK_TO_EP,
                ifx,
                &p,
                src_id,
                dst.identity,
                rule,
                0,
            );
            return Err(shot(reason));
        }
        if action == ACTION_REDIRECT {
            // sk_assign works only on ingress; L7 policy for traffic from the host or another
            // interface is not supported: fail closed.
            emit(
                EVENT_DROP,
                drop::REDIRECT_UNSUPPORTED,
                ACTION_DENY,
                HOOK_TO_EP,
                ifx,
                &p,
                src_id,
                dst.identity,
                rule,
                proxy_port,
            );
            return Err(shot(drop::REDIRECT_UNSUPPORTED));
        }
        new_flow(
            &p,
            (&key, src_lo),
            action,
            0,
            src_id,
            dst.identity,
            rule,
            HOOK_TO_EP,
            (0, dst.ifindex),
        );
        count(counter::ALLOWED, 1);
        Ok(TC_ACT_OK)
    }

    /// tc ingress of an uplink (`datapath.uplinks`): packets from other nodes. Only connections
    /// to a local endpoint whose ingress policy sends them to strait's L7 listener are handled
    /// here (`bpf_sk_assign` works on ingress only, so `strait_to_ep` cannot redirect them);
    /// everything else passes, and `strait_to_ep` judges it on the endpoint's interface as
    /// before.
    #[classifier]
    pub fn strait_from_uplink(ctx: TcContext) -> i32 {
        match from_uplink(&ctx) {
            Ok(v) | Err(v) => v,
        }
    }

    #[inline(always)]
    fn from_uplink(ctx: &TcContext) -> Result<i32, i32> {
        // Not counted as the endpoints' packets unless they are: an uplink carries the node's
        // own traffic too.
        let p = match parse(ctx) {
            Parsed::Ip(p) if p.proto == PROTO_TCP => p,
            _ => return Ok(TC_ACT_OK),
        };
        let dst = match lookup(&ENDPOINTS, &ep_key(p.family, &p.daddr)) {
            Some(ep) if ep.flags & EP_ENFORCE_INGRESS != 0 => ep,
            _ => return Ok(TC_ACT_OK),
        };
        let ifx = ifindex(ctx);
        let (key, src_lo) = ct_key(&p);
        if !is_syn(&p) {
            if let Some(e) = ct_get(&key) {
                if e.action == ACTION_REDIRECT && from_orig(&e, src_lo) {
                    count(counter::PACKETS, 1);
                    count(counter::BYTES, ctx.len() as u64);
                    count(counter::CT_HITS, 1);
                    return finish(ctx, &p, &e, HOOK_FROM_UPLINK, ifx);
                }
                return Ok(TC_ACT_OK);
            }
        }
        let src_id = identity_of(p.family, &p.saddr);
        let (action, proxy_port, rule) =
            policy(dst.identity, src_id, p.dport_host(), p.proto, DIR_INGRESS);
        if action != ACTION_REDIRECT {
            return Ok(TC_ACT_OK);
        }
        count(counter::PACKETS, 1);
        count(counter::BYTES, ctx.len() as u64);
        let e = new_flow(
            &p,
            (&key, src_lo),
            action,
            proxy_port,
            src_id,
            dst.identity,
            rule,
            HOOK_FROM_UPLINK,
            (ifx, dst.ifindex),
        );
        finish(ctx, &p, &e, HOOK_FROM_UPLINK, ifx)
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        loop {}
    }
}
