//! Policy routing for the sk_assign datapath, spoken over raw rtnetlink.
//!
//! When the tc program steers a packet to a proxy socket with `bpf_sk_assign`, the packet still
//! has to pass the routing decision as *local*, or the stack forwards or drops it before the
//! socket ever sees it. The program marks such packets, and two pieces of policy routing send
//! every marked packet to the local table:
//!
//! ```text
//! ip rule add fwmark 0x200/0xf00 lookup 2004 pref 100
//! ip route add local 0.0.0.0/0 dev lo table 2004
//! ip -6 rule add fwmark 0x200/0xf00 lookup 2004 pref 100
//! ip -6 route add local ::/0 dev lo table 2004
//! ```
//!
//! This module installs and removes exactly that, with no dependency on the `ip` binary.
//! Every operation is idempotent, so a restarted proxy can install over its own leftovers
//! and a shutdown can remove what a crash already half-removed.
//!
//! Both the rule and the route carry protocol [`RTPROT_STRAIT`] (shown by `ip` as `proto 167`;
//! `echo "167 strait" > /etc/iproute2/rt_protos.d/strait.conf` names it). That is what keeps
//! [`PolicyRoute::remove`] to our own objects: the kernel matches a delete request as a
//! wildcard, so `ip rule del fwmark 0x200/0xf00 lookup 2004 pref 100` also deletes
//! `... iif lo`, `not ...` or `from 10.0.0.0/8 ...` rules, whichever comes first, and the same
//! wildcard makes an exclusive add of a plain rule fail with EEXIST next to any of them. The
//! protocol is compared whenever the request sets it.
//!
//! Rule adds rely on the kernel honouring `NLM_F_EXCL` for fib rules (without it every add
//! appends a duplicate). That and `FRA_PROTOCOL` long predate the 5.7 kernel that
//! `bpf_sk_assign` from tc needs.

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The fwmark rule + local route that deliver sk_assign'ed packets to local sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRoute {
    pub mark: u32,
    pub mask: u32,
    pub table: u32,
    pub priority: u32,
}

/// What [`PolicyRoute::install`] managed to install. IPv4 is always installed on success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installed {
    /// False when the host has IPv6 disabled (`ipv6.disable=1`, or `disable_ipv6` on `lo`):
    /// the IPv6 rule and route were skipped and IPv6 traffic cannot be sk_assign'ed.
    pub ipv6: bool,
}

/// A failed policy-routing operation. Messages name the equivalent `ip` command.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening rtnetlink socket: {error}{}", hint(.error))]
    Socket { error: io::Error },
    #[error("looking up the loopback interface \"lo\": {error}")]
    Loopback { error: io::Error },
    /// The kernel (or the socket) refused `action`. `detail` is the kernel's extended ack.
    #[error("{action}: {error}{}{}", kernel_says(.detail), hint(.error))]
    Kernel {
        action: String,
        error: io::Error,
        detail: Option<String>,
    },
    #[error("{action}: unexpected rtnetlink reply: {reason}")]
    Protocol {
        action: String,
        reason: &'static str,
    },
}

impl NetlinkError {
    /// The errno behind the failure, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetlinkError::Socket { error }
            | NetlinkError::Loopback { error }
            | NetlinkError::Kernel { error, .. } => error.raw_os_error(),
            NetlinkError::Protocol { .. } => None,
        }
    }
}

fn hint(error: &io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EPERM) => "; strait needs CAP_NET_ADMIN",
        Some(libc::EAGAIN) => "; the kernel did not answer within the socket timeout",
        _ => "",
    }
}

fn kernel_says(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" (kernel: {d})"),
        None => String::new(),
    }
}

impl PolicyRoute {
    pub const DEFAULT: PolicyRoute = PolicyRoute {
        mark: 0x200,
        mask: 0xf00,
        table: 2004,
        priority: 100,
    };

    /// Idempotent: adds the IPv4 and IPv6 rule and local default route; EEXIST is success.
    /// IPv6 failures when IPv6 is disabled on the host (EAFNOSUPPORT etc.) are tolerated and
    /// reported in the returned value.
    ///
    /// The route goes in before the rule, so a marked packet never meets a rule whose table
    /// is still empty. The kernel answers EEXIST for any default route already in the table,
    /// whatever its type or device: such a route is left as it is.
    pub fn install(&self) -> Result<Installed, NetlinkError> {
        let lo = loopback_index()?;
        let mut nl = Rtnl::open()?;
        self.add_route(&mut nl, Family::V4, lo)?;
        self.add_rule(&mut nl, Family::V4)?;

        let ipv6 = match self.add_route(&mut nl, Family::V6, lo) {
            Err(e) if ipv6_unavailable(&e) => false,
            Err(e) => return Err(e),
            Ok(()) => match self.add_rule(&mut nl, Family::V6) {
                Err(e) if ipv6_unavailable(&e) => {
                    // Best effort: a route in an unreferenced table routes nothing.
                    let _ = self.remove_route(&mut nl, Family::V6, lo);
                    false
                }
                Err(e) => return Err(e),
                Ok(()) => true,
            },
        };
        Ok(Installed { ipv6 })
    }

    /// Idempotent: removes both; ENOENT/ESRCH is success.
    ///
    /// Only objects carrying [`RTPROT_STRAIT`] are removed: an equivalent rule or route
    /// someone added by hand stays. Rules go first, so no marked packet is sent to a table
    /// that is being emptied.
    pub fn remove(&self) -> Result<(), NetlinkError> {
        let lo = loopback_index()?;
        let mut nl = Rtnl::open()?;
        self.remove_rule(&mut nl, Family::V4)?;
        self.remove_route(&mut nl, Family::V4, lo)?;
        let tolerate_no_ipv6 = |step: Result<(), NetlinkError>| match step {
            Err(e) if ipv6_unavailable(&e) => Ok(()),
            other => other,
        };
        tolerate_no_ipv6(self.remove_rule(&mut nl, Family::V6))?;
        tolerate_no_ipv6(self.remove_route(&mut nl, Family::V6, lo))
    }

    /// Whether the IPv4 rule (with this mark/mask/table/priority) is present (dump
    /// RTM_GETRULE and match). A rule with extra selectors (`from`, `iif`, `not`, ...) does not
    /// count: it does not catch every marked packet. The rule's protocol does not matter, so
    /// an equivalent rule added by hand counts.
    pub fn is_installed(&self) -> Result<bool, NetlinkError> {
        let mut nl = Rtnl::open()?;
        let mut hdr = FibRuleHdr::new(Family::V4);
        hdr.action = 0;
        let rules = nl
            .dump(RTM_GETRULE, &hdr.encode())
            .map_err(|f| f.into_error("listing ip rules".to_owned()))?;
        Ok(rules
            .iter()
            .any(|(ty, payload)| *ty == RTM_NEWRULE && self.matches_rule(payload)))
    }

    fn add_rule(&self, nl: &mut Rtnl, family: Family) -> Result<(), NetlinkError> {
        let msg = self.rule_msg(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family);
        match nl.ack(msg) {
            Err(Fail::Os(e, _)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map_err(|f| f.into_error(format!("adding {}", self.describe_rule(family)))),
        }
    }

    fn remove_rule(&self, nl: &mut Rtnl, family: Family) -> Result<(), NetlinkError> {
        let msg = self.rule_msg(RTM_DELRULE, 0, family);
        match nl.ack(msg) {
            Err(Fail::Os(e, _)) if is_absent(&e) => Ok(()),
            r => r.map_err(|f| f.into_error(format!("removing {}", self.describe_rule(family)))),
        }
    }

    fn add_route(&self, nl: &mut Rtnl, family: Family, lo: u32) -> Result<(), NetlinkError> {
        let msg = self.route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, family, lo);
        match nl.ack(msg) {
            Err(Fail::Os(e, _)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map_err(|f| f.into_error(format!("adding {}", self.describe_route(family)))),
        }
    }

    fn remove_route(&self, nl: &mut Rtnl, family: Family, lo: u32) -> Result<(), NetlinkError> {
        let msg = self.route_msg(RTM_DELROUTE, 0, family, lo);
        match nl.ack(msg) {
            Err(Fail::Os(e, _)) if is_absent(&e) => Ok(()),
            r => r.map_err(|f| f.into_error(format!("removing {}", self.describe_route(family)))),
        }
    }

    /// `RTM_NEWRULE`/`RTM_DELRULE`: fwmark/mask → lookup table, at this priority.
    fn rule_msg(&self, ty: u16, flags: u16, family: Family) -> Msg {
        let mut hdr = FibRuleHdr::new(family);
        // Tables past 255 only fit the attribute; keep the header in step like iproute2.
        hdr.table = u8::try_from(self.table).unwrap_or(RT_TABLE_UNSPEC);
        let mut msg = Msg::new(ty, flags);
        msg.payload(&hdr.encode());
        msg.attr_u32(FRA_PRIORITY, self.priority);
        msg.attr_u32(FRA_FWMARK, self.mark);
        msg.attr_u32(FRA_FWMASK, self.mask);
        msg.attr_u32(FRA_TABLE, self.table);
        msg.attr(FRA_PROTOCOL, &[RTPROT_STRAIT]);
        msg
    }

    /// `RTM_NEWROUTE`/`RTM_DELROUTE`: `local <any>/0 dev lo table <table>`.
    fn route_msg(&self, ty: u16, flags: u16, family: Family, lo: u32) -> Msg {
        let adding = ty == RTM_NEWROUTE;
        let rtm = RtMsg {
            family: family.af(),
            table: u8::try_from(self.table).unwrap_or(RT_TABLE_UNSPEC),
            // On delete the protocol limits the match to our route; "nowhere" scope matches
            // any scope, as `ip route del` does.
            protocol: RTPROT_STRAIT,
            scope: if adding {
                RT_SCOPE_HOST
            } else {
                RT_SCOPE_NOWHERE
            },
            kind: RTN_LOCAL,
        };
        let mut msg = Msg::new(ty, flags);
        msg.payload(&rtm.encode());
        // dst_len 0 and no RTA_DST: the default route of the family.
        msg.attr_u32(RTA_TABLE, self.table);
        msg.attr_u32(RTA_OIF, lo);
        msg
    }

    fn describe_rule(&self, family: Family) -> String {
        format!(
            "ip{} rule fwmark {:#x}/{:#x} lookup {} pref {}",
            family.ip_flag(),
            self.mark,
            self.mask,
            self.table,
            self.priority
        )
    }

    fn describe_route(&self, family: Family) -> String {
        let any = match family {
            Family::V4 => "0.0.0.0/0",
            Family::V6 => "::/0",
        };
        format!(
            "ip{} route local {any} dev lo table {}",
            family.ip_flag(),
            self.table
        )
    }

    /// Whether one `RTM_NEWRULE` payload from a dump is this (IPv4) rule.
    fn matches_rule(&self, payload: &[u8]) -> bool {
        let Some(hdr) = FibRuleHdr::decode(payload) else {
            return false;
        };
        if hdr.family != Family::V4.af()
            || hdr.action != FR_ACT_TO_TBL
            || hdr.src_len != 0
            || hdr.dst_len != 0
            || hdr.tos != 0
            || hdr.flags & FIB_RULE_INVERT != 0
        {
            return false;
        }
        let mut table = u32::from(hdr.table);
        let (mut mark, mut mask, mut priority) = (None, None, 0);
        for (ty, value) in attrs(payload.get(FibRuleHdr::LEN..).unwrap_or_default()) {
            let as_u32 = || read_u32(value, 0);
            match ty {
                FRA_TABLE => table = as_u32().unwrap_or(table),
                FRA_FWMARK => mark = as_u32(),
                FRA_FWMASK => mask = as_u32(),
                FRA_PRIORITY => priority = as_u32().unwrap_or(0),
                // "No suppression" is dumped as all ones.
                FRA_SUPPRESS_PREFIXLEN | FRA_SUPPRESS_IFGROUP if as_u32() == Some(u32::MAX) => {}
                t if RULE_SELECTORS.contains(&t) => return false,
                _ => {}
            }
        }
        mark == Some(self.mark)
            && mask == Some(self.mask)
            && table == self.table
            && priority == self.priority
    }
}

/// The kernel has no IPv6 (`ipv6.disable=1`: no AF_INET6 handlers), or it is disabled on `lo`.
fn ipv6_unavailable(e: &NetlinkError) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::EACCES)
    )
}

/// Deleting something that is not there: ENOENT for rules, ESRCH for routes and tables.
fn is_absent(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH))
}

fn loopback_index() -> Result<u32, NetlinkError> {
    const LO: &CStr = c"lo";
    // SAFETY: LO is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(LO.as_ptr()) };
    if index == 0 {
        return Err(NetlinkError::Loopback {
            error: io::Error::last_os_error(),
        });
    }
    Ok(index)
}

// ---- uapi constants (linux/netlink.h, linux/rtnetlink.h, linux/fib_rules.h) ----

const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x100 | 0x200; // NLM_F_ROOT | NLM_F_MATCH
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
// Flags on NLMSG_ERROR acks.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const RTM_GETRULE: u16 = 34;

const RTA_OIF: u16 = 4;
const RTA_TABLE: u16 = 15;

const RT_TABLE_UNSPEC: u8 = 0;
const RT_SCOPE_HOST: u8 = 254;
const RT_SCOPE_NOWHERE: u8 = 255;
const RTN_LOCAL: u8 = 2;

const FR_ACT_TO_TBL: u8 = 1;
const FIB_RULE_INVERT: u32 = 0x2;

const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_FLOW: u16 = 11;
const FRA_TUN_ID: u16 = 12;
const FRA_SUPPRESS_IFGROUP: u16 = 13;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_OIFNAME: u16 = 17;
const FRA_L3MDEV: u16 = 19;
const FRA_UID_RANGE: u16 = 20;
const FRA_PROTOCOL: u16 = 21;
const FRA_IP_PROTO: u16 = 22;
const FRA_SPORT_RANGE: u16 = 23;
const FRA_DPORT_RANGE: u16 = 24;
const FRA_DSCP: u16 = 25;
const FRA_FLOWLABEL: u16 = 26;

/// The routing protocol id strait's rule and route carry, so that it removes only its own.
/// Unassigned in linux/rtnetlink.h and iproute2's rt_protos.
pub const RTPROT_STRAIT: u8 = 167;

/// Rule attributes that narrow what a rule matches (or, for the suppressors, what it
/// returns); ours has none of them. A denylist, because kernels dump some attributes with
/// their neutral value (suppress_prefixlength -1, protocol) and may add more of those.
const RULE_SELECTORS: [u16; 15] = [
    FRA_DST,
    FRA_SRC,
    FRA_IIFNAME,
    FRA_FLOW,
    FRA_TUN_ID,
    FRA_SUPPRESS_IFGROUP,
    FRA_SUPPRESS_PREFIXLEN,
    FRA_OIFNAME,
    FRA_L3MDEV,
    FRA_UID_RANGE,
    FRA_IP_PROTO,
    FRA_SPORT_RANGE,
    FRA_DPORT_RANGE,
    FRA_DSCP,
    FRA_FLOWLABEL,
];

/// How long to wait for the kernel's answer before giving up on a request.
const REPLY_TIMEOUT_SECS: libc::time_t = 5;
/// How often a dump is restarted when the rule set changes under it (NLM_F_DUMP_INTR).
const DUMP_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn af(self) -> u8 {
        // AF_INET = 2, AF_INET6 = 10: both fit the u8 family fields.
        match self {
            Family::V4 => libc::AF_INET as u8,
            Family::V6 => libc::AF_INET6 as u8,
        }
    }

    fn ip_flag(self) -> &'static str {
        match self {
            Family::V4 => "",
            Family::V6 => " -6",
        }
    }
}

// ---- message encoding ----

const fn nla_align(len: usize) -> usize {
    (len + 3) & !3
}

/// `struct fib_rule_hdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FibRuleHdr {
    family: u8,
    dst_len: u8,
    src_len: u8,
    tos: u8,
    table: u8,
    action: u8,
    flags: u32,
}

impl FibRuleHdr {
    const LEN: usize = 12;

    fn new(family: Family) -> Self {
        FibRuleHdr {
            family: family.af(),
            dst_len: 0,
            src_len: 0,
            tos: 0,
            table: RT_TABLE_UNSPEC,
            action: FR_ACT_TO_TBL,
            flags: 0,
        }
    }

    fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.family;
        b[1] = self.dst_len;
        b[2] = self.src_len;
        b[3] = self.tos;
        b[4] = self.table;
        // b[5], b[6]: res1, res2
        b[7] = self.action;
        b[8..12].copy_from_slice(&self.flags.to_ne_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Some(FibRuleHdr {
            family: *b.first()?,
            dst_len: *b.get(1)?,
            src_len: *b.get(2)?,
            tos: *b.get(3)?,
            table: *b.get(4)?,
            action: *b.get(7)?,
            flags: read_u32(b, 8)?,
        })
    }
}

/// `struct rtmsg` with dst_len, src_len, tos and flags all zero.
struct RtMsg {
    family: u8,
    table: u8,
    protocol: u8,
    scope: u8,
    kind: u8,
}

impl RtMsg {
    fn encode(&self) -> [u8; 12] {
        // family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32)
        [
            self.family,
            0,
            0,
            0,
            self.table,
            self.protocol,
            self.scope,
            self.kind,
            0,
            0,
            0,
            0,
        ]
    }
}

/// One request being built: `nlmsghdr`, fixed header, then 4-byte aligned attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        Msg { buf }
    }

    fn pad(&mut self) {
        self.buf.resize(nla_align(self.buf.len()), 0);
    }

    fn payload(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    fn attr(&mut self, ty: u16, value: &[u8]) {
        // Attribute values here are a few bytes: the length always fits nla_len.
        let len = (NLA_HDRLEN + value.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    fn attr_u32(&mut self, ty: u16, value: u32) {
        self.attr(ty, &value.to_ne_bytes());
    }

    /// Seals length and sequence number; the kernel fills in the port id.
    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

// ---- message decoding ----

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn read_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

struct NlMsg<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

/// Splits one datagram into its netlink messages.
fn messages(mut buf: &[u8]) -> Result<Vec<NlMsg<'_>>, &'static str> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = read_u32(buf, 0).ok_or("short header")? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err("message length out of bounds");
        }
        out.push(NlMsg {
            ty: read_u16(buf, 4).ok_or("short header")?,
            flags: read_u16(buf, 6).ok_or("short header")?,
            seq: read_u32(buf, 8).ok_or("short header")?,
            payload: buf.get(NLMSG_HDRLEN..len).ok_or("short message")?,
        });
        buf = buf.get(nla_align(len)..).unwrap_or_default();
    }
    Ok(out)
}

/// Iterates `(type, value)` over a run of attributes, stopping at the first malformed one.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(read_u16(buf, 0)?);
        let ty = read_u16(buf, 2)? & NLA_TYPE_MASK;
        let value = buf.get(NLA_HDRLEN..len)?;
        buf = buf.get(nla_align(len)..).unwrap_or_default();
        Some((ty, value))
    })
}

/// The payload of an `NLMSG_ERROR`: errno (0 for a plain ack) and the extended-ack text.
fn parse_error(flags: u16, payload: &[u8]) -> Result<(i32, Option<String>), &'static str> {
    let errno = read_i32(payload, 0).ok_or("short error message")?;
    let mut detail = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // struct nlmsgerr { int error; struct nlmsghdr msg; } + the echoed request body
        // unless capped, then the TLVs.
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            read_u32(payload, 4).map_or(NLMSG_HDRLEN, |l| l as usize)
        };
        let tlvs = payload.get(4 + nla_align(echoed)..).unwrap_or_default();
        detail = attrs(tlvs)
            .find(|(ty, _)| *ty == NLMSGERR_ATTR_MSG)
            .map(|(_, v)| {
                let text = v.split(|b| *b == 0).next().unwrap_or_default();
                String::from_utf8_lossy(text).into_owned()
            })
            .filter(|s| !s.is_empty());
    }
    Ok((errno, detail))
}

// ---- the socket ----

/// Why a request failed, before it is tied to a human-readable action.
enum Fail {
    Os(io::Error, Option<String>),
    Protocol(&'static str),
}

impl Fail {
    fn into_error(self, action: String) -> NetlinkError {
        match self {
            Fail::Os(error, detail) => NetlinkError::Kernel {
                action,
                error,
                detail,
            },
            Fail::Protocol(reason) => NetlinkError::Protocol { action, reason },
        }
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Os(e, None)
    }
}

/// A NETLINK_ROUTE socket talking to the kernel, one request at a time.
struct Rtnl {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    fn open() -> Result<Self, NetlinkError> {
        // SAFETY: socket(2) with constant arguments; it returns a new descriptor or -1.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(NetlinkError::Socket {
                error: io::Error::last_os_error(),
            });
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let timeout = libc::timeval {
            tv_sec: REPLY_TIMEOUT_SECS,
            tv_usec: 0,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)
            .map_err(|error| NetlinkError::Socket { error })?;
        // Best effort (Linux 4.12+/4.3+): the kernel's reason text, and acks without an echo
        // of the request.
        let on: libc::c_int = 1;
        let _ = setsockopt(&fd, libc::SOL_NETLINK, NETLINK_EXT_ACK, &on);
        let _ = setsockopt(&fd, libc::SOL_NETLINK, NETLINK_CAP_ACK, &on);
        Ok(Rtnl {
            fd,
            seq: 0,
            buf: vec![0; 32 * 1024],
        })
    }

    fn send(&mut self, msg: Msg) -> Result<u32, Fail> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        loop {
            // SAFETY: `bytes` is a live, initialised buffer of `bytes.len()` bytes. An
            // unconnected netlink socket sends to the kernel (port id 0).
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            if n as usize != bytes.len() {
                return Err(Fail::Protocol("short send"));
            }
            return Ok(seq);
        }
    }

    /// Receives one datagram from the kernel into `self.buf`, returning its length.
    fn recv(&mut self) -> Result<usize, Fail> {
        loop {
            // Peek at the real size first so a large dump datagram is never truncated.
            let want = self.recv_from(libc::MSG_PEEK | libc::MSG_TRUNC)?.0;
            if want > self.buf.len() {
                self.buf.resize(want, 0);
            }
            let (n, from_kernel) = self.recv_from(0)?;
            // Only the kernel speaks for the kernel (iproute2 applies the same filter).
            if from_kernel {
                return Ok(n.min(self.buf.len()));
            }
        }
    }

    fn recv_from(&mut self, flags: libc::c_int) -> Result<(usize, bool), Fail> {
        // SAFETY: sockaddr_nl is a plain C struct; all-zero bytes are a valid value.
        let mut from: libc::sockaddr_nl = unsafe { mem::zeroed() };
        loop {
            let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
            // SAFETY: the buffer and the address are live and writable for the lengths given,
            // and `from_len` holds the size of `from`.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    flags,
                    (&mut from as *mut libc::sockaddr_nl).cast(),
                    &mut from_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            return Ok((n as usize, from.nl_pid == 0));
        }
    }

    /// Sends a request with NLM_F_ACK and waits for its ack.
    fn ack(&mut self, mut msg: Msg) -> Result<(), Fail> {
        let flags = read_u16(&msg.buf, 6).unwrap_or(NLM_F_REQUEST) | NLM_F_ACK;
        msg.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        let seq = self.send(msg)?;
        loop {
            let n = self.recv()?;
            for m in messages(&self.buf[..n]).map_err(Fail::Protocol)? {
                if m.seq != seq || m.ty != NLMSG_ERROR {
                    continue; // a stale reply to an earlier request
                }
                return match parse_error(m.flags, m.payload).map_err(Fail::Protocol)? {
                    (0, _) => Ok(()),
                    (errno, detail) => Err(Fail::Os(
                        io::Error::from_raw_os_error(errno.saturating_neg()),
                        detail,
                    )),
                };
            }
        }
    }

    /// Dumps `ty` (an RTM_GET*), returning `(type, payload)` of every object, restarting when
    /// the kernel reports the dump was interrupted by a concurrent change.
    fn dump(&mut self, ty: u16, header: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, Fail> {
        for _ in 0..DUMP_ATTEMPTS {
            let mut msg = Msg::new(ty, NLM_F_DUMP);
            msg.payload(header);
            let seq = self.send(msg)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            'datagrams: loop {
                let n = self.recv()?;
                for m in messages(&self.buf[..n]).map_err(Fail::Protocol)? {
                    if m.seq != seq {
                        continue;
                    }
                    interrupted |= m.flags & NLM_F_DUMP_INTR != 0;
                    match m.ty {
                        NLMSG_DONE => {
                            // The kernel may append an errno to NLMSG_DONE.
                            match read_i32(m.payload, 0) {
                                Some(errno) if errno < 0 => {
                                    let (_, detail) =
                                        parse_error(m.flags, m.payload).unwrap_or((errno, None));
                                    return Err(Fail::Os(
                                        io::Error::from_raw_os_error(errno.saturating_neg()),
                                        detail,
                                    ));
                                }
                                _ => break 'datagrams,
                            }
                        }
                        NLMSG_ERROR => {
                            let (errno, detail) =
                                parse_error(m.flags, m.payload).map_err(Fail::Protocol)?;
                            return Err(Fail::Os(
                                io::Error::from_raw_os_error(errno.saturating_neg()),
                                detail,
                            ));
                        }
                        ty => out.push((ty, m.payload.to_vec())),
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(Fail::Protocol(
            "dump kept being interrupted by concurrent changes",
        ))
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of exactly the length passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A route that can never collide with the real one.
    const TEST: PolicyRoute = PolicyRoute {
        mark: 0x300,
        mask: 0xf00,
        table: 2999,
        priority: 29999,
    };

    fn is_root() -> bool {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    fn ip(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("running ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn rule_lines(family: &str, route: &PolicyRoute) -> usize {
        let prefix = format!("{}:", route.priority);
        let want = format!(
            "fwmark {:#x}/{:#x} lookup {}",
            route.mark, route.mask, route.table
        );
        ip(&[family, "rule", "show"])
            .lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(&want))
            .count()
    }

    fn routes(family: &str, route: &PolicyRoute) -> String {
        ip(&[family, "route", "show", "table", &route.table.to_string()])
    }

    /// Removes the route even when an assertion fails halfway.
    struct Cleanup(PolicyRoute);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }

    /// Install twice, check through `ip`, remove twice, check again.
    fn round_trip(route: PolicyRoute, expect_ipv6: bool) {
        let _cleanup = Cleanup(route);
        route.remove().expect("clearing leftovers");
        assert!(!route.is_installed().expect("is_installed"));

        let first = route.install().expect("first install");
        let second = route.install().expect("second install is a no-op");
        assert_eq!(first, second);
        assert_eq!(first.ipv6, expect_ipv6);
        assert!(route.is_installed().expect("is_installed"));

        assert_eq!(
            rule_lines("-4", &route),
            1,
            "{}",
            ip(&["-4", "rule", "show"])
        );
        let v4 = routes("-4", &route);
        assert!(v4.contains("local default dev lo"), "{v4}");
        assert_eq!(v4.lines().count(), 1, "{v4}");
        if expect_ipv6 {
            assert_eq!(
                rule_lines("-6", &route),
                1,
                "{}",
                ip(&["-6", "rule", "show"])
            );
            let v6 = routes("-6", &route);
            assert!(v6.contains("local default dev lo"), "{v6}");
            assert_eq!(v6.lines().count(), 1, "{v6}");
        }
        for family in ["-4", "-6"] {
            println!("ip {family} rule show:\n{}", ip(&[family, "rule", "show"]));
            println!(
                "ip {family} route show table {}:\n{}",
                route.table,
                routes(family, &route)
            );
        }

        route.remove().expect("first remove");
        route.remove().expect("second remove is a no-op");
        assert!(!route.is_installed().expect("is_installed"));
        assert_eq!(rule_lines("-4", &route), 0);
        assert_eq!(routes("-4", &route), "");
        if expect_ipv6 {
            assert_eq!(rule_lines("-6", &route), 0);
            assert_eq!(routes("-6", &route), "");
        }
    }

    /// Runs `f` on a thread of its own inside a fresh network namespace with only `lo` (up).
    /// Children the thread spawns (`ip`) inherit the namespace; /proc/sys/net follows it too.
    fn in_private_netns(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            // SAFETY: unshare(2) only detaches this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                // E.g. root in a container without CAP_SYS_ADMIN.
                let err = io::Error::last_os_error();
                println!("skipped: unshare(CLONE_NEWNET): {err}");
                return;
            }
            // IPv6 refuses a route via a down device (ENETDOWN); IPv4 does not care.
            ip(&["link", "set", "lo", "up"]);
            f()
        })
        .join()
        .expect("netns thread panicked")
    }

    #[test]
    fn installs_and_removes_idempotently() {
        if !is_root() {
            println!("skipped: managing policy routing needs root (CAP_NET_ADMIN)");
            return;
        }
        // The host's IPv6 state decides whether the IPv6 half can be installed here.
        let ipv6 = std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
            .is_ok_and(|s| s.trim() == "0");
        round_trip(TEST, ipv6);
    }

    #[test]
    fn default_route_in_private_netns() {
        if !is_root() {
            println!("skipped: needs root for unshare(CLONE_NEWNET)");
            return;
        }
        // The real mark and table, where nothing else can see them.
        in_private_netns(|| round_trip(PolicyRoute::DEFAULT, true));
    }

    #[test]
    fn ipv6_disabled_is_tolerated() {
        if !is_root() {
            println!("skipped: needs root for unshare(CLONE_NEWNET)");
            return;
        }
        in_private_netns(|| {
            for conf in ["all", "default", "lo"] {
                let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
                std::fs::write(&path, "1").expect(&path);
            }
            round_trip(TEST, false);
            assert_eq!(
                rule_lines("-6", &TEST),
                0,
                "{}",
                ip(&["-6", "rule", "show"])
            );
        });
    }

    #[test]
    fn leaves_other_rules_alone() {
        if !is_root() {
            println!("skipped: needs root for unshare(CLONE_NEWNET)");
            return;
        }
        let args = || {
            (
                format!("{:#x}/{:#x}", TEST.mark, TEST.mask),
                TEST.table.to_string(),
                TEST.priority.to_string(),
            )
        };
        in_private_netns(move || {
            let (mark, table, pref) = args();
            let base = [
                "rule", "add", "fwmark", &mark, "lookup", &table, "pref", &pref,
            ];
            // Narrower rules with the same mark, table and priority are not ours...
            ip(&[&base[..], &["iif", "lo"]].concat());
            ip(&[&base[..], &["not"]].concat());
            assert!(!TEST.is_installed().expect("is_installed"));
            // ...do not stop install (a plain `ip rule add` gets EEXIST here)...
            assert!(TEST.install().expect("install").ipv6);
            assert!(TEST.is_installed().expect("is_installed"));
            // ...and survive remove (a plain `ip rule del` would delete the `iif lo` one).
            TEST.remove().expect("remove");
            assert!(!TEST.is_installed().expect("is_installed"));
            let left = ip(&["-4", "rule", "show"]);
            assert!(left.contains("iif lo lookup 2999"), "{left}");
            assert!(left.contains("not from all fwmark"), "{left}");
        });
        in_private_netns(move || {
            let (mark, table, pref) = args();
            let base = [
                "rule", "add", "fwmark", &mark, "lookup", &table, "pref", &pref,
            ];
            // An equivalent rule and route added by hand count as installed, and stay.
            ip(&base);
            let v4 = [
                "route",
                "add",
                "local",
                "0.0.0.0/0",
                "dev",
                "lo",
                "table",
                &table,
            ];
            ip(&v4);
            assert!(TEST.is_installed().expect("is_installed"));
            TEST.install().expect("install next to a hand-made route");
            TEST.remove().expect("remove");
            assert!(TEST.is_installed().expect("is_installed"));
            let routes = routes("-4", &TEST);
            assert!(routes.contains("local default dev lo"), "{routes}");
        });
    }

    #[test]
    fn encodes_rule_like_iproute2() {
        let msg = PolicyRoute::DEFAULT
            .rule_msg(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, Family::V4)
            .finish(7);
        assert_eq!(msg.len(), NLMSG_HDRLEN + FibRuleHdr::LEN + 5 * 8);
        assert_eq!(read_u32(&msg, 0), Some(msg.len() as u32));
        assert_eq!(read_u16(&msg, 4), Some(RTM_NEWRULE));
        assert_eq!(
            read_u16(&msg, 6),
            Some(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)
        );
        assert_eq!(read_u32(&msg, 8), Some(7));
        let body = &msg[NLMSG_HDRLEN..];
        let hdr = FibRuleHdr::decode(body).expect("header");
        assert_eq!(hdr.family, libc::AF_INET as u8);
        assert_eq!(hdr.action, FR_ACT_TO_TBL);
        assert_eq!(hdr.table, RT_TABLE_UNSPEC, "2004 does not fit the header");
        let got: Vec<_> = attrs(&body[FibRuleHdr::LEN..]).collect();
        let u32s = |v: u32| v.to_ne_bytes();
        assert_eq!(
            got,
            [
                (FRA_PRIORITY, &u32s(100)[..]),
                (FRA_FWMARK, &u32s(0x200)[..]),
                (FRA_FWMASK, &u32s(0xf00)[..]),
                (FRA_TABLE, &u32s(2004)[..]),
                (FRA_PROTOCOL, &[RTPROT_STRAIT][..]),
            ]
        );
        // A dump of what we add is recognised as ours; another table is not.
        assert!(PolicyRoute::DEFAULT.matches_rule(body));
        let other = PolicyRoute {
            table: 2005,
            ..PolicyRoute::DEFAULT
        };
        assert!(!other.matches_rule(body));
    }

    #[test]
    fn encodes_route_with_table_attribute() {
        let msg = TEST
            .route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, Family::V6, 1)
            .finish(1);
        let body = &msg[NLMSG_HDRLEN..];
        assert_eq!(
            body[..12],
            [
                libc::AF_INET6 as u8,
                0,
                0,
                0,
                RT_TABLE_UNSPEC,
                RTPROT_STRAIT,
                RT_SCOPE_HOST,
                RTN_LOCAL,
                0,
                0,
                0,
                0
            ]
        );
        let got: Vec<_> = attrs(&body[12..])
            .map(|(t, v)| (t, read_u32(v, 0)))
            .collect();
        assert_eq!(got, [(RTA_TABLE, Some(2999)), (RTA_OIF, Some(1))]);
        assert_eq!(msg.len() % 4, 0);
    }

    #[test]
    fn parses_extended_ack() {
        // nlmsgerr{error=-EACCES, capped nlmsghdr} + NLMSGERR_ATTR_MSG "IPv6 is disabled".
        let mut payload = (-libc::EACCES).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
        let text = b"IPv6 is disabled\0";
        payload.extend_from_slice(&((NLA_HDRLEN + text.len()) as u16).to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(text);
        payload.resize(nla_align(payload.len()), 0);
        let (errno, detail) = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).expect("parses");
        assert_eq!(errno, -libc::EACCES);
        assert_eq!(detail.as_deref(), Some("IPv6 is disabled"));
    }

    #[test]
    fn errors_tell_the_operator_what_to_do() {
        let err = Fail::Os(io::Error::from_raw_os_error(libc::EPERM), None).into_error(format!(
            "adding {}",
            PolicyRoute::DEFAULT.describe_rule(Family::V4)
        ));
        assert_eq!(
            err.to_string(),
            "adding ip rule fwmark 0x200/0xf00 lookup 2004 pref 100: \
             Operation not permitted (os error 1); strait needs CAP_NET_ADMIN"
        );
        let err = Fail::Os(
            io::Error::from_raw_os_error(libc::EACCES),
            Some("IPv6 is disabled on nexthop device".into()),
        )
        .into_error(format!(
            "adding {}",
            PolicyRoute::DEFAULT.describe_route(Family::V6)
        ));
        assert_eq!(
            err.to_string(),
            "adding ip -6 route local ::/0 dev lo table 2004: Permission denied (os error 13) \
             (kernel: IPv6 is disabled on nexthop device)"
        );
        assert!(ipv6_unavailable(&err));
    }
}
