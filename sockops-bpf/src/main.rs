//! strait's socket-layer programs. Built for `bpfel-unknown-none` by `proxy/build.rs`
//! (aya-build, pinned nightly); on the host this binary is an empty `main`.
//!
//! - `strait_sockops` (sock_ops, attached to a cgroup v2): on ACTIVE/PASSIVE_ESTABLISHED,
//!   inserts a TCP socket into `SOCK_HASH` when both its addresses are local endpoint
//!   addresses and it lives in that endpoint's network namespace (an application socket), or
//!   in strait's own namespace (a transparent proxy socket). Everything else — loopback, host
//!   sockets, other addresses — is left alone. On TCP_CLOSE it forgets the socket's state; the
//!   kernel itself removes a closing socket from the sockhash. Sockets are never deleted from
//!   the sockhash here: that would free redirected bytes not yet read.
//! - `strait_sk_msg` (sk_msg, attached to `SOCK_HASH`): on the first message of a socket,
//!   picks the peer (strait's socket for a connection the datapath redirected to the proxy,
//!   else the other endpoint's socket if policy allows the pair directly) and redirects every
//!   message into the peer's receive queue (`BPF_F_INGRESS`). If the peer is not there at the
//!   first message, the connection stays on TCP for good (`FALLBACK`): switching paths later
//!   could reorder bytes. Backpressure: a send that would leave more than
//!   `config::MAX_QUEUED` bytes unread in the peer's queue goes through TCP (`THROTTLED`),
//!   where the receive window makes the writer wait; the reader drains the redirected bytes
//!   before the TCP ones. Splicing resumes once the peer has read every byte sent through TCP,
//!   so nothing is reordered. Policy is re-checked when strait bumps the policy generation; a
//!   spliced endpoint pair the new policy no longer allows directly has its further sends
//!   dropped (fail closed: it cannot be moved to the proxy mid-stream).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod prog {
    use core::ffi::c_void;
    use core::ptr::{addr_of, read_volatile};

    use aya_ebpf::bindings::{
        sk_action::{SK_DROP, SK_PASS},
        BPF_ANY, BPF_F_INGRESS, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB,
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, BPF_SOCK_OPS_STATE_CB, BPF_SOCK_OPS_STATE_CB_FLAG,
    };
    use aya_ebpf::helpers::{
        bpf_get_netns_cookie, bpf_probe_read_kernel, bpf_sock_ops_cb_flags_set,
    };
    use aya_ebpf::macros::{map, sk_msg, sock_ops};
    use aya_ebpf::maps::{Array, HashMap, LruHashMap, PerCpuArray, SockHash};
    use aya_ebpf::programs::{SkMsgContext, SockOpsContext};
    use datapath_bpf::{
        addr_words, policy_keys, EndpointKey, PolicyEntry, PolicyKey, ACTION_ALLOW, ACTION_DENY,
        DIR_EGRESS, DIR_INGRESS, EP_ENFORCE_EGRESS, EP_ENFORCE_INGRESS,
    };
    use sockops_bpf::*;

    #[map]
    static SOCK_HASH: SockHash<SockKey> = SockHash::pinned(65536, 0);
    #[map]
    static SOCK_STATE: LruHashMap<SockKey, SockState> = LruHashMap::pinned(131072, 0);
    #[map]
    static SOCK_ENDPOINTS: HashMap<EndpointKey, SockEndpoint> = HashMap::pinned(4096, 0);
    #[map]
    static SOCK_CONFIG: Array<u64> = Array::pinned(config::LEN, 0);
    #[map]
    static SOCK_COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(counter::LEN, 0);
    /// What the adaptive rule learned per service (server address and port).
    #[map]
    static SOCK_SERVICES: LruHashMap<ServiceKey, ServiceStats> = LruHashMap::pinned(16384, 0);
    /// The tc datapath's policy map (same pinned map when both run; empty otherwise).
    #[map]
    static POLICY: HashMap<PolicyKey, PolicyEntry> = HashMap::pinned(65536, 0);

    const AF_INET: u32 = 2;
    const AF_INET6: u32 = 10;
    const TCP_CLOSE: u32 = 7;
    const PROTO_TCP: u8 = 6;

    #[inline(always)]
    fn count(idx: u32, n: u64) {
        if let Some(p) = SOCK_COUNTERS.get_ptr_mut(idx) {
            // SAFETY: this CPU's slot; programs do not migrate while running.
            unsafe { *p += n };
        }
    }

    #[inline(always)]
    fn config(idx: u32) -> u64 {
        match SOCK_CONFIG.get_ptr(idx) {
            // SAFETY: array values live as long as the map; copied out at once.
            Some(p) => unsafe { read_volatile(p) },
            None => 0,
        }
    }

    #[inline(always)]
    fn endpoint(family: u8, addr: &[u8; 16]) -> Option<SockEndpoint> {
        let k = EndpointKey::new(family, addr_words(addr));
        // SAFETY: hash values stay valid for the program's run (RCU); copied out at once.
        SOCK_ENDPOINTS
            .get_ptr(&k)
            .map(|p| unsafe { read_volatile(p) })
    }

    /// An address from the context's fields: IPv4, IPv6, or IPv4-mapped IPv6 (as IPv4).
    #[inline(always)]
    fn address(family: u32, ip4: u32, ip6: [u32; 4]) -> Option<([u8; 16], u8)> {
        let mut a = [0u8; 16];
        if family == AF_INET {
            a[..4].copy_from_slice(&ip4.to_ne_bytes());
            return Some((a, FAMILY_V4));
        }
        if family != AF_INET6 {
            return None;
        }
        let w2 = ip6[2].to_ne_bytes();
        if ip6[0] == 0 && ip6[1] == 0 && w2 == [0, 0, 0xff, 0xff] {
            a[..4].copy_from_slice(&ip6[3].to_ne_bytes());
            return Some((a, FAMILY_V4));
        }
        a[..4].copy_from_slice(&ip6[0].to_ne_bytes());
        a[4..8].copy_from_slice(&ip6[1].to_ne_bytes());
        a[8..12].copy_from_slice(&w2);
        a[12..].copy_from_slice(&ip6[3].to_ne_bytes());
        Some((a, FAMILY_V6))
    }

    /// Reads the tuple fields that `bpf_sock_ops` and `sk_msg_md` share (same names, u32 each:
    /// the verifier wants one 4-byte load per field). `remote_port` is the network-order port
    /// in the upper 16 bits; `local_port` is host order.
    macro_rules! sock_key {
        ($md:expr, $netns:expr) => {{
            let md = $md;
            // SAFETY: `md` is the program's context pointer; each field is a plain u32 load.
            let (family, l4, r4, l6, r6, lport, rport) = unsafe {
                (
                    read_volatile(addr_of!((*md).family)),
                    read_volatile(addr_of!((*md).local_ip4)),
                    read_volatile(addr_of!((*md).remote_ip4)),
                    [
                        read_volatile(addr_of!((*md).local_ip6[0])),
                        read_volatile(addr_of!((*md).local_ip6[1])),
                        read_volatile(addr_of!((*md).local_ip6[2])),
                        read_volatile(addr_of!((*md).local_ip6[3])),
                    ],
                    [
                        read_volatile(addr_of!((*md).remote_ip6[0])),
                        read_volatile(addr_of!((*md).remote_ip6[1])),
                        read_volatile(addr_of!((*md).remote_ip6[2])),
                        read_volatile(addr_of!((*md).remote_ip6[3])),
                    ],
                    read_volatile(addr_of!((*md).local_port)),
                    read_volatile(addr_of!((*md).remote_port)),
                )
            };
            match (address(family, l4, l6), address(family, r4, r6)) {
                (Some((local, f)), Some((remote, _))) => Some(SockKey {
                    netns: $netns,
                    local,
                    remote,
                    local_port: lport as u16,
                    remote_port: u32::from_be(rport) as u16,
                    family: f,
                    _pad: [0; 3],
                }),
                _ => None,
            }
        }};
    }

    #[sock_ops]
    pub fn strait_sockops(ctx: SockOpsContext) -> u32 {
        let op = ctx.op();
        if op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB {
            established(&ctx, op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB);
        } else if op == BPF_SOCK_OPS_STATE_CB && ctx.arg(1) == TCP_CLOSE {
            closed(&ctx);
        }
        0
    }

    #[inline(always)]
    fn established(ctx: &SockOpsContext, active: bool) {
        if config(config::ENABLED) == 0 {
            return;
        }
        // SAFETY: the context pointer, valid for this program run.
        let netns = unsafe { bpf_get_netns_cookie(ctx.ops as *mut c_void) };
        let Some(mut key) = sock_key!(ctx.ops, netns) else {
            return;
        };
        let Some(local) = endpoint(key.family, &key.local) else {
            return;
        };
        if endpoint(key.family, &key.remote).is_none() {
            return;
        }
        let kind = if netns == local.netns && local.flags & EP_SPLICE != 0 {
            KIND_ENDPOINT
        } else if netns == config(config::HOST_NETNS) && netns != 0 {
            KIND_PROXY
        } else {
            return;
        };
        // SAFETY: the context's `sk` field, one 8-byte load. The address is only stored, for
        // the peer's `bpf_probe_read_kernel` (backpressure); storing a kernel address in a map
        // needs CAP_PERFMON, which strait has as root.
        let sock = unsafe { read_volatile(addr_of!((*ctx.ops).__bindgen_anon_2.sk)) } as u64;
        let mut st = SockState {
            state: state::INSERTED,
            kind,
            active: active as u8,
            _pad: 0,
            generation: 0,
            peer: SockKey::default(),
            sends: 0,
            peer_sends: 0,
            sock,
        };
        if short_service(&service(&key, active)) {
            // Adaptive rule: this service's connections have been too short to gain from
            // splicing. Both ends see the same stats, so neither is inserted; the client's
            // socket is still watched so that its close can end the streak.
            if active {
                st.state = state::BYPASSED;
                if SOCK_STATE.insert(&key, &st, BPF_ANY as u64).is_ok() {
                    // SAFETY: `ctx.ops` is this program's context; asks for STATE_CB.
                    unsafe {
                        bpf_sock_ops_cb_flags_set(ctx.ops, BPF_SOCK_OPS_STATE_CB_FLAG as i32)
                    };
                }
                count(counter::BYPASSED, 1);
            }
            return;
        }
        // State first: a message can follow the insert at once.
        if SOCK_STATE.insert(&key, &st, BPF_ANY as u64).is_err() {
            count(counter::INSERT_FAILED, 1);
            return;
        }
        // SAFETY: `ctx.ops` is this program's context.
        if SOCK_HASH
            .update(&mut key, unsafe { &mut *ctx.ops }, BPF_ANY as u64)
            .is_err()
        {
            let _ = SOCK_STATE.remove(&key);
            count(counter::INSERT_FAILED, 1);
            return;
        }
        // SAFETY: as above; asks for STATE_CB so the close is seen.
        unsafe { bpf_sock_ops_cb_flags_set(ctx.ops, BPF_SOCK_OPS_STATE_CB_FLAG as i32) };
        count(counter::INSERTED, 1);
    }

    /// The server end of `key`'s connection.
    #[inline(always)]
    fn service(key: &SockKey, active: bool) -> ServiceKey {
        let (addr, port) = if active {
            (key.remote, key.remote_port)
        } else {
            (key.local, key.local_port)
        };
        ServiceKey {
            addr,
            port,
            family: key.family,
            _pad: 0,
        }
    }

    /// Whether the adaptive rule keeps new connections to `svc` off the sockhash.
    #[inline(always)]
    fn short_service(svc: &ServiceKey) -> bool {
        if config(config::ADAPTIVE_SHORT_MESSAGES) == 0 {
            return false;
        }
        match SOCK_SERVICES.get_ptr(svc) {
            Some(p) => {
                // SAFETY: as in `endpoint`.
                let streak = unsafe { read_volatile(addr_of!((*p).short_streak)) } as u64;
                streak >= config(config::ADAPTIVE_STREAK).max(1)
            }
            None => false,
        }
    }

    #[inline(always)]
    fn closed(ctx: &SockOpsContext) {
        // SAFETY: the context pointer, valid for this program run.
        let netns = unsafe { bpf_get_netns_cookie(ctx.ops as *mut c_void) };
        let Some(key) = sock_key!(ctx.ops, netns) else {
            return;
        };
        let Some(p) = SOCK_STATE.get_ptr(&key) else {
            return;
        };
        // SAFETY: as in `endpoint`; copied out before the entry is removed.
        let st = unsafe { read_volatile(p) };
        let _ = SOCK_STATE.remove(&key);
        if st.state != state::BYPASSED {
            count(counter::CLOSED, 1);
        }
        let short = config(config::ADAPTIVE_SHORT_MESSAGES);
        if short == 0 {
            return;
        }
        // SAFETY: plain u32 fields of this program's context (a full socket at TCP_CLOSE).
        let (segs_in, segs_out) = unsafe {
            (
                read_volatile(addr_of!((*ctx.ops).data_segs_in)),
                read_volatile(addr_of!((*ctx.ops).data_segs_out)),
            )
        };
        // A send redirected by sk_msg never becomes a TCP segment; one that took TCP may
        // become several.
        let own = st.sends.max(segs_out) as u64;
        let total = if st.peer.netns != 0 || st.peer.local_port != 0 {
            // Spliced: the peer's sends went straight into this socket's queue, unseen by
            // TCP. If the peer is still open, hand ours over; it classifies the connection.
            if let Some(pp) = SOCK_STATE.get_ptr_mut(&st.peer) {
                // SAFETY: as in `msg`; a racing close of the peer at worst loses one sample.
                unsafe { (*pp).peer_sends = (*pp).peer_sends.saturating_add(own as u32) };
                return;
            }
            own + st.peer_sends as u64
        } else {
            // Never spliced: TCP carried both directions. Counted once, at the client,
            // unless a spliced peer handed its sends over.
            if st.active == 0 && st.peer_sends == 0 {
                return;
            }
            own + segs_in as u64 + st.peer_sends as u64
        };
        let svc = service(&key, st.active != 0);
        let is_short = total <= short;
        match SOCK_SERVICES.get_ptr_mut(&svc) {
            // SAFETY: as in `msg`. Closes on other CPUs may race this update; the streak is
            // a heuristic and a lost increment only delays the rule by one connection.
            Some(s) => unsafe {
                (*s).short_streak = if is_short {
                    (*s).short_streak.saturating_add(1)
                } else {
                    0
                };
            },
            None if is_short => {
                let v = ServiceStats {
                    short_streak: 1,
                    _pad: 0,
                };
                let _ = SOCK_SERVICES.insert(&svc, &v, BPF_ANY as u64);
            }
            None => {}
        }
        count(
            if is_short {
                counter::SHORT_CONNS
            } else {
                counter::LONG_CONNS
            },
            1,
        );
    }

    /// One direction of policy, as the tc datapath decides it: deny wins, else the most
    /// specific entry; no entry is a deny.
    #[inline(always)]
    fn policy(local: u32, remote: u32, dport: u16, dir: u8) -> u8 {
        let keys = policy_keys(local, remote, dport, PROTO_TCP, dir);
        let mut action = ACTION_DENY;
        let mut have = false;
        let mut i = 0;
        while i < keys.len() {
            if let Some(p) = POLICY.get_ptr(&keys[i]) {
                // SAFETY: as in `endpoint`.
                let a = unsafe { read_volatile(addr_of!((*p).action)) };
                if a == ACTION_DENY {
                    return ACTION_DENY;
                }
                if !have {
                    have = true;
                    action = a;
                }
            }
            i += 1;
        }
        action
    }

    /// Whether policy lets the two endpoints of `key`'s connection talk without the proxy.
    #[inline(always)]
    fn allowed_directly(key: &SockKey, active: bool) -> bool {
        let (Some(local), Some(remote)) = (
            endpoint(key.family, &key.local),
            endpoint(key.family, &key.remote),
        ) else {
            return false;
        };
        let (client, server, dport) = if active {
            (local, remote, key.remote_port)
        } else {
            (remote, local, key.local_port)
        };
        if client.flags & EP_ENFORCE_EGRESS != 0
            && policy(client.identity, server.identity, dport, DIR_EGRESS) != ACTION_ALLOW
        {
            return false;
        }
        if server.flags & EP_ENFORCE_INGRESS != 0
            && policy(server.identity, client.identity, dport, DIR_INGRESS) != ACTION_ALLOW
        {
            return false;
        }
        true
    }

    #[sk_msg]
    pub fn strait_sk_msg(ctx: SkMsgContext) -> u32 {
        if msg(&ctx) {
            SK_PASS
        } else {
            SK_DROP
        }
    }

    /// Redirects or passes the message (true), or drops it (false: policy denies).
    #[inline(always)]
    fn msg(ctx: &SkMsgContext) -> bool {
        // SAFETY: the context pointer, valid for this program run.
        let netns = unsafe { bpf_get_netns_cookie(ctx.msg as *mut c_void) };
        // SAFETY: as above; `size` is a plain u32 field.
        let size = unsafe { read_volatile(addr_of!((*ctx.msg).size)) } as u64;
        let Some(key) = sock_key!(ctx.msg, netns) else {
            return true;
        };
        let Some(st) = SOCK_STATE.get_ptr_mut(&key) else {
            count(counter::PASSED_MSGS, 1);
            return true;
        };
        // SAFETY: LRU values stay valid for the program's run; this socket's messages are
        // serialised by its socket lock, so nothing else writes this entry concurrently.
        let st = unsafe { &mut *st };
        st.sends = st.sends.saturating_add(1);
        let s = st.state;
        if s == state::FALLBACK {
            count(counter::PASSED_MSGS, 1);
            return true;
        }
        if s == state::DENIED {
            count(counter::DENIED_MSGS, 1);
            return false;
        }
        let generation = config(config::POLICY_GENERATION) as u32;
        if config(config::ENABLED) == 0 {
            fallback(st, s);
            return true;
        }
        if s == state::SPLICING || s == state::THROTTLED {
            if st.generation != generation {
                // Policy changed: a direct endpoint pair must still be allowed. The proxy's
                // connections stay (strait enforces L7 policy on them).
                if st.kind == KIND_ENDPOINT
                    && st.peer.netns != config(config::HOST_NETNS)
                    && !allowed_directly(&key, st.active != 0)
                {
                    st.state = state::DENIED;
                    count(counter::DENIED_MSGS, 1);
                    return false;
                }
                st.generation = generation;
            }
            if s == state::THROTTLED {
                if !tcp_read_up(st) {
                    count(counter::PASSED_MSGS, 1);
                    return true;
                }
                // Nothing of ours is left on the TCP path: redirected bytes cannot overtake.
                st.state = state::SPLICING;
                count(counter::RESUMED, 1);
            }
            let mut peer = st.peer;
            if peer_queue_full(&peer, size) {
                // TCP until the peer catches up: its window makes the writer wait for the
                // reader. The reader gets the bytes already redirected first (tcp_bpf_recvmsg
                // drains the psock's queue before the TCP receive queue), so the order holds.
                st.state = state::THROTTLED;
                count(counter::BACKPRESSURE, 1);
                count(counter::PASSED_MSGS, 1);
                return true;
            }
            if SOCK_HASH.redirect_msg(ctx, &mut peer, BPF_F_INGRESS as u64) == SK_PASS as i64 {
                count(counter::REDIRECTED_MSGS, 1);
                count(counter::REDIRECTED_BYTES, size);
            } else {
                // The peer closed: its receive queue is gone with it.
                fallback(st, state::SPLICING);
            }
            return true;
        }
        // First message: choose the peer.
        let host = config(config::HOST_NETNS);
        let mut peer = if st.kind == KIND_PROXY {
            match endpoint(key.family, &key.remote) {
                Some(ep) => key.peer(ep.netns),
                None => {
                    miss(st);
                    return true;
                }
            }
        } else {
            // strait's socket for a connection the datapath redirected to the proxy.
            let mut proxy = key.peer(host);
            if host != 0
                && SOCK_HASH.redirect_msg(ctx, &mut proxy, BPF_F_INGRESS as u64) == SK_PASS as i64
            {
                splice(st, proxy, generation, size);
                return true;
            }
            if !allowed_directly(&key, st.active != 0) {
                count(counter::POLICY_REFUSED, 1);
                miss(st);
                return true;
            }
            match endpoint(key.family, &key.remote) {
                Some(ep) => key.peer(ep.netns),
                None => {
                    miss(st);
                    return true;
                }
            }
        };
        if SOCK_HASH.redirect_msg(ctx, &mut peer, BPF_F_INGRESS as u64) == SK_PASS as i64 {
            splice(st, peer, generation, size);
        } else {
            miss(st);
        }
        true
    }

    /// The kernel address sock_ops recorded for the socket `key`, if it is still tracked.
    #[inline(always)]
    fn sock_address(key: &SockKey) -> Option<u64> {
        let p = SOCK_STATE.get_ptr(key)?;
        // SAFETY: as in `endpoint`.
        let sock = unsafe { read_volatile(addr_of!((*p).sock)) };
        (sock != 0).then_some(sock)
    }

    /// Whether redirecting `size` more bytes would leave more than `config::MAX_QUEUED` bytes
    /// unread in `peer`'s queue: its psock's `msg_tot_len`, read at the offsets strait found
    /// in the kernel's BTF. An ingress redirect charges the receiver without limit, so without
    /// this check a writer to a slow reader is never made to wait and, under TCP memory
    /// pressure, gets ENOMEM where TCP would have blocked it.
    #[inline(always)]
    fn peer_queue_full(peer: &SockKey, size: u64) -> bool {
        let max = config(config::MAX_QUEUED);
        let off_user_data = config(config::OFF_SK_USER_DATA);
        let off_len = config(config::OFF_MSG_TOT_LEN);
        if max == 0 || off_user_data == 0 || off_len == 0 {
            return false;
        }
        let Some(sock) = sock_address(peer) else {
            return false;
        };
        // SAFETY: bpf_probe_read_kernel copies from a kernel address and fails instead of
        // faulting; a stale address (the peer just closed) reads a wrong value at worst, and
        // the redirect to a closed peer fails anyway.
        let Ok(user_data) =
            (unsafe { bpf_probe_read_kernel((sock + off_user_data) as *const u64) })
        else {
            return false;
        };
        // SK_USER_DATA_PTRMASK: the low three bits of `sk_user_data` are flags.
        let psock = user_data & !7;
        if psock == 0 {
            return false;
        }
        // SAFETY: as above.
        let Ok(queued) = (unsafe { bpf_probe_read_kernel((psock + off_len) as *const u32) }) else {
            return false;
        };
        u64::from(queued) + size > max
    }

    /// Whether the peer has read every byte this socket sent through TCP: the peer's
    /// `copied_seq` equals our `write_seq` (one sequence space; redirected bytes never enter
    /// it). This socket's lock is held, so `write_seq` cannot move meanwhile. Unknown (a read
    /// failed, offsets missing) counts as no: the connection stays on TCP, which is correct.
    #[inline(always)]
    fn tcp_read_up(st: &SockState) -> bool {
        let off_write = config(config::OFF_WRITE_SEQ);
        let off_copied = config(config::OFF_COPIED_SEQ);
        if off_write == 0 || off_copied == 0 || st.sock == 0 {
            return false;
        }
        let Some(peer) = sock_address(&st.peer) else {
            return false;
        };
        // SAFETY: as in `peer_queue_full`.
        let (Ok(written), Ok(read)) = (unsafe {
            (
                bpf_probe_read_kernel((st.sock + off_write) as *const u32),
                bpf_probe_read_kernel((peer + off_copied) as *const u32),
            )
        }) else {
            return false;
        };
        written == read
    }

    #[inline(always)]
    fn splice(st: &mut SockState, peer: SockKey, generation: u32, size: u64) {
        st.peer = peer;
        st.generation = generation;
        st.state = state::SPLICING;
        count(counter::REDIRECTED_MSGS, 1);
        count(counter::REDIRECTED_BYTES, size);
    }

    #[inline(always)]
    fn miss(st: &mut SockState) {
        st.state = state::FALLBACK;
        count(counter::MISSES, 1);
        count(counter::PASSED_MSGS, 1);
    }

    #[inline(always)]
    fn fallback(st: &mut SockState, was: u8) {
        st.state = state::FALLBACK;
        if was == state::SPLICING || was == state::THROTTLED {
            count(counter::FALLBACKS, 1);
        } else {
            count(counter::MISSES, 1);
        }
        count(counter::PASSED_MSGS, 1);
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        loop {}
    }
}
