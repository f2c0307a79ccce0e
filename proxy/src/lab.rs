//! `strait lab up|down`: a config's endpoints as network namespaces on this host.
//!
//! Each [`LabEndpoint`] becomes the same-node pod topology Cilium uses: a network namespace
//! joined to the host by a veth pair, with every packet routed (not bridged) through the host,
//! so the proxy's datapath sees pod-to-pod traffic exactly as on a node. Built with the `ip`
//! command (iproute2) and `/proc/sys`; needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
//!
//! Per endpoint:
//! - netns `netns` with `lo` up, and `eth0`: the peer of the host-side veth `interface`;
//! - inside: each address as a /32 (/128) on `eth0`; `169.254.1.1 dev eth0 scope link` and
//!   `default via 169.254.1.1 dev eth0`; with v6 addresses, `default via fe80::1 dev eth0`
//!   (the addresses are added `nodad`, so they are usable at once);
//! - host side: `169.254.1.1/32` on the veth (the same address on every lab veth), plus
//!   `fe80::1/64` with v6 addresses; a /32 (/128) route to each endpoint address `dev interface`
//!   without `src`, so connections from the host to an endpoint come from the host's primary
//!   address. For that the gateway address is `scope host`: with `scope link` the kernel would
//!   pick `169.254.1.1` as the source of those routes. The host still answers ARP for it.
//! - sysctls of the host veth: `net.ipv4.conf.<if>.rp_filter=0` and `.forwarding=1`, and
//!   with v6 addresses `net.ipv6.conf.<if>.forwarding=1` (and `disable_ipv6=0`).
//!
//! Host-wide effects, set by [`up`] and never reset by [`down`] (other things on the host may
//! depend on them by then):
//! - `net.ipv4.ip_forward=1`: the host routes IPv4 between all its interfaces.
//! - only when some endpoint has a v6 address, `net.ipv6.conf.all.forwarding=1`: the host
//!   routes IPv6 between all its interfaces, and (being a router now) ignores router
//!   advertisements on interfaces whose `accept_ra` is 1, so a host that learns its IPv6
//!   default route by SLAAC loses it when that route expires.
//!
//! [`up`] and [`down`] are idempotent. A host interface that is not this lab's (not a veth,
//! or a veth whose peer is in the host netns or in a netns of another name) is never deleted:
//! both refuse with [`LabError::InterfaceInUse`].

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The endpoints' default gateway: an address of every host-side veth.
const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The endpoints' IPv6 default gateway (link-local, on every host-side veth).
const GATEWAY_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The name of the veth peer inside each netns.
const POD_INTERFACE: &str = "eth0";
/// Longest interface name the kernel accepts (IFNAMSIZ less the NUL).
const MAX_INTERFACE_LEN: usize = 15;
/// Where `ip netns` keeps its named namespaces (iproute2's NETNS_RUN_DIR).
const NETNS_RUN_DIR: &str = "/var/run/netns";

/// One endpoint of a lab: a network namespace joined to the host by a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabEndpoint {
    /// The endpoint's name in the config (used in messages only).
    pub name: String,
    /// Host-side veth name, at most 15 bytes.
    pub interface: String,
    /// Network namespace name (`ip netns`).
    pub netns: String,
    /// Addresses of the endpoint, each added as a /32 or /128 on `eth0` in the netns.
    pub addresses: Vec<IpAddr>,
}

impl LabEndpoint {
    fn has_v6(&self) -> bool {
        self.addresses.iter().any(IpAddr::is_ipv6)
    }

    fn describe_addresses(&self) -> String {
        if self.addresses.is_empty() {
            return "no addresses".to_owned();
        }
        let list: Vec<String> = self.addresses.iter().map(IpAddr::to_string).collect();
        list.join(", ")
    }
}

/// Why a lab could not be brought up or down.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab: endpoint `{endpoint}`: interface name `{interface}` is longer than 15 bytes")]
    InterfaceTooLong { endpoint: String, interface: String },
    #[error("lab: endpoint `{endpoint}`: {what} `{value}` {reason}")]
    InvalidName {
        endpoint: String,
        /// "interface name" or "netns name".
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("lab: endpoint `{endpoint}`: address {address} {reason}")]
    InvalidAddress {
        endpoint: String,
        address: IpAddr,
        reason: &'static str,
    },
    #[error("lab: endpoints `{first}` and `{second}` both use {what} `{value}`")]
    Duplicate {
        /// "netns", "interface" or "address".
        what: &'static str,
        value: String,
        first: String,
        second: String,
    },
    #[error(
        "lab: endpoint `{endpoint}`: host interface `{interface}` exists and is not this lab's \
         ({detail}); not touching it"
    )]
    InterfaceInUse {
        endpoint: String,
        interface: String,
        detail: String,
    },
    #[error("lab: cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("lab: `{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        /// "exit 2" or "signal 9".
        status: String,
        stderr: String,
    },
    #[error("lab: cannot set {} to {value}: {source}", path.display())]
    Sysctl {
        path: PathBuf,
        value: &'static str,
        source: std::io::Error,
    },
}

/// Creates every endpoint, in order. Idempotent: an endpoint already fully present is left as
/// is, a partial one (e.g. its netns without its veth, or a route missing) is removed and
/// created again. Returns what it did, one line per endpoint.
///
/// Validates every endpoint first. If creating an endpoint fails, what was made of that
/// endpoint is removed again; the endpoints before it stay up (run [`down`] to remove them).
pub fn up(eps: &[LabEndpoint]) -> Result<Vec<String>, LabError> {
    validate(eps)?;
    if eps.is_empty() {
        return Ok(Vec::new());
    }
    sysctl("net/ipv4/ip_forward", "1")?;
    if eps.iter().any(LabEndpoint::has_v6) {
        sysctl("net/ipv6/conf/all/forwarding", "1")?;
    }
    let mut lines = Vec::with_capacity(eps.len());
    for ep in eps {
        let line = match presence(ep)? {
            Presence::Full => {
                host_sysctls(ep)?;
                format!(
                    "{}: already present (netns `{}`, host veth `{}`, {})",
                    ep.name,
                    ep.netns,
                    ep.interface,
                    ep.describe_addresses()
                )
            }
            Presence::Absent => {
                create_or_roll_back(ep)?;
                format!(
                    "{}: created netns `{}` and host veth `{}` <-> {POD_INTERFACE} ({})",
                    ep.name,
                    ep.netns,
                    ep.interface,
                    ep.describe_addresses()
                )
            }
            Presence::Partial(why) => {
                remove(ep)?;
                create_or_roll_back(ep)?;
                format!(
                    "{}: recreated netns `{}` and host veth `{}` <-> {POD_INTERFACE} ({}); it \
                     was partial: {why}",
                    ep.name,
                    ep.netns,
                    ep.interface,
                    ep.describe_addresses()
                )
            }
        };
        tracing::debug!("{line}");
        lines.push(line);
    }
    Ok(lines)
}

/// Removes every endpoint's netns and host veth. Idempotent: what is absent already is not an
/// error. Tries every endpoint and returns the first error after trying them all. Returns what
/// it did, one line per endpoint. Host-wide sysctls set by [`up`] stay as they are.
pub fn down(eps: &[LabEndpoint]) -> Result<Vec<String>, LabError> {
    validate(eps)?;
    let mut lines = Vec::with_capacity(eps.len());
    let mut first_error = None;
    for ep in eps {
        match remove(ep) {
            Ok(removed) => {
                let line = match (removed.netns, removed.interface) {
                    (true, true) => format!(
                        "{}: removed netns `{}` and host veth `{}`",
                        ep.name, ep.netns, ep.interface
                    ),
                    (true, false) => format!(
                        "{}: removed netns `{}` (its veth went with it)",
                        ep.name, ep.netns
                    ),
                    (false, true) => format!(
                        "{}: removed host veth `{}` (netns `{}` was already absent)",
                        ep.name, ep.interface, ep.netns
                    ),
                    (false, false) => format!(
                        "{}: already absent (netns `{}`, host veth `{}`)",
                        ep.name, ep.netns, ep.interface
                    ),
                };
                tracing::debug!("{line}");
                lines.push(line);
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.name, error = %e, "lab: cannot remove endpoint");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(lines),
    }
}

/// RAII guard for tests and benches: [`Lab::up`] creates the endpoints, dropping the guard
/// removes them with [`down`] (logging errors), also when unwinding from a panic.
///
/// The guard removes all its endpoints, also those that were already up before [`Lab::up`].
#[derive(Debug)]
pub struct Lab {
    endpoints: Vec<LabEndpoint>,
}

impl Lab {
    /// Creates the endpoints like [`up`]. On failure removes them all again before returning
    /// the error.
    pub fn up(eps: Vec<LabEndpoint>) -> Result<Lab, LabError> {
        validate(&eps)?;
        match up(&eps) {
            Ok(_) => Ok(Lab { endpoints: eps }),
            Err(e) => {
                if let Err(cleanup) = down(&eps) {
                    tracing::warn!(error = %cleanup, "lab: cleanup after a failed `up` failed");
                }
                Err(e)
            }
        }
    }

    /// The endpoints this guard created.
    pub fn endpoints(&self) -> &[LabEndpoint] {
        &self.endpoints
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = down(&self.endpoints) {
            tracing::error!(error = %e, "lab: teardown failed");
            // Tests and benches rarely install a subscriber: say it on stderr too, a leaked
            // netns would otherwise go unnoticed.
            eprintln!("strait lab: teardown failed: {e}");
        }
    }
}

/// A command that runs `program` inside the network namespace `netns`
/// (`ip netns exec NETNS PROGRAM`); add arguments with [`Command::arg`] / [`Command::args`].
pub fn exec_in(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]);
    cmd
}

// ---- validation --------------------------------------------------------------------------

fn validate(eps: &[LabEndpoint]) -> Result<(), LabError> {
    let mut netns: HashMap<&str, &str> = HashMap::new();
    let mut interfaces: HashMap<&str, &str> = HashMap::new();
    let mut addresses: HashMap<IpAddr, &str> = HashMap::new();
    for ep in eps {
        let invalid = |what, value: &str, reason| LabError::InvalidName {
            endpoint: ep.name.clone(),
            what,
            value: value.to_owned(),
            reason,
        };
        if let Some(reason) = name_problem(&ep.interface) {
            return Err(invalid("interface name", &ep.interface, reason));
        }
        if ep
            .interface
            .contains(|c: char| c == ':' || c.is_whitespace())
        {
            return Err(invalid(
                "interface name",
                &ep.interface,
                "contains `:` or whitespace",
            ));
        }
        if ep.interface.len() > MAX_INTERFACE_LEN {
            return Err(LabError::InterfaceTooLong {
                endpoint: ep.name.clone(),
                interface: ep.interface.clone(),
            });
        }
        if let Some(reason) = name_problem(&ep.netns) {
            return Err(invalid("netns name", &ep.netns, reason));
        }
        if ep.netns.contains(char::is_whitespace) {
            return Err(invalid("netns name", &ep.netns, "contains whitespace"));
        }
        for &address in &ep.addresses {
            if let Some(reason) = address_problem(address) {
                return Err(LabError::InvalidAddress {
                    endpoint: ep.name.clone(),
                    address,
                    reason,
                });
            }
        }
        let duplicate = |what, value: String, first: &str| LabError::Duplicate {
            what,
            value,
            first: first.to_owned(),
            second: ep.name.clone(),
        };
        if let Some(first) = netns.insert(&ep.netns, &ep.name) {
            return Err(duplicate("netns", ep.netns.clone(), first));
        }
        if let Some(first) = interfaces.insert(&ep.interface, &ep.name) {
            return Err(duplicate("interface", ep.interface.clone(), first));
        }
        for &address in &ep.addresses {
            if let Some(first) = addresses.insert(address, &ep.name) {
                return Err(duplicate("address", address.to_string(), first));
            }
        }
    }
    Ok(())
}

/// Why `name` cannot be an interface or netns name (both become file names and arguments).
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is `.` or `..`")
    } else if name.contains('/') {
        Some("contains `/`")
    } else if name.contains('\0') {
        Some("contains a NUL byte")
    } else if name.starts_with('-') {
        Some("starts with `-`")
    } else {
        None
    }
}

fn address_problem(address: IpAddr) -> Option<&'static str> {
    if address.is_unspecified() || address.is_loopback() || address.is_multicast() {
        return Some("is not a unicast address");
    }
    match address {
        IpAddr::V4(v4) if v4 == GATEWAY_V4 => Some("is the lab's gateway address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("is not a unicast address"),
        IpAddr::V6(v6) if v6 == GATEWAY_V6 => Some("is the lab's gateway address"),
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some("is link-local"),
        _ => None,
    }
}

// ---- state of an endpoint ----------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Presence {
    Absent,
    Full,
    /// Something is there, not all of it; says what is missing.
    Partial(String),
}

fn netns_exists(netns: &str) -> bool {
    Path::new(NETNS_RUN_DIR).join(netns).exists()
}

/// Fails when the host interface exists and is not (or no longer) this endpoint's veth.
fn check_ours(ep: &LabEndpoint, link: &Link) -> Result<(), LabError> {
    let in_use = |detail: String| LabError::InterfaceInUse {
        endpoint: ep.name.clone(),
        interface: ep.interface.clone(),
        detail,
    };
    if !link.veth {
        return Err(in_use("not a veth".to_owned()));
    }
    match &link.peer_netns {
        PeerNetns::Same => Err(in_use("a veth whose peer is in the host netns".to_owned())),
        PeerNetns::Named(other) if *other != ep.netns => {
            Err(in_use(format!("its peer is in netns `{other}`")))
        }
        _ => Ok(()),
    }
}

fn presence(ep: &LabEndpoint) -> Result<Presence, LabError> {
    let netns = netns_exists(&ep.netns);
    let host = link(None, &ep.interface)?;
    if let Some(host) = &host {
        check_ours(ep, host)?;
    }
    let host = match (netns, host) {
        (false, None) => return Ok(Presence::Absent),
        (false, Some(_)) => return Ok(Presence::Partial(format!("no netns `{}`", ep.netns))),
        (true, None) => {
            return Ok(Presence::Partial(format!(
                "no host veth `{}`",
                ep.interface
            )))
        }
        (true, Some(host)) => host,
    };
    let partial = |why: String| Ok(Presence::Partial(why));
    if host.peer_netns != PeerNetns::Named(ep.netns.clone()) {
        return partial(format!(
            "the peer of `{}` is not in its netns",
            ep.interface
        ));
    }
    if !host.up {
        return partial(format!("host veth `{}` is down", ep.interface));
    }
    let Some(pod) = link(Some(&ep.netns), POD_INTERFACE)? else {
        return partial(format!("no {POD_INTERFACE} in the netns"));
    };
    if pod.peer_index != Some(host.index) || host.peer_index != Some(pod.index) {
        return partial(format!(
            "{POD_INTERFACE} is not the peer of `{}`",
            ep.interface
        ));
    }
    if !pod.up {
        return partial(format!("{POD_INTERFACE} is down"));
    }
    match link(Some(&ep.netns), "lo")? {
        Some(lo) if lo.up => {}
        _ => return partial("lo is down".to_owned()),
    }

    let want: HashSet<(IpAddr, u8)> = ep
        .addresses
        .iter()
        .map(|&a| (a, if a.is_ipv4() { 32 } else { 128 }))
        .collect();
    let have: HashSet<(IpAddr, u8)> = addresses(Some(&ep.netns), POD_INTERFACE)?
        .into_iter()
        .filter(|(a, _)| !is_v6_link_local(*a))
        .collect();
    if have != want {
        return partial(format!("the addresses of {POD_INTERFACE} differ"));
    }
    let v4_routes = ip(&format!("-n {} -4 -o route show", ep.netns))?;
    let gateway_route = format!("{GATEWAY_V4} dev {POD_INTERFACE} ");
    let default_v4 = format!("default via {GATEWAY_V4} dev {POD_INTERFACE} ");
    if !has_route(&v4_routes, &gateway_route) || !has_route(&v4_routes, &default_v4) {
        return partial("an IPv4 route in the netns is missing".to_owned());
    }
    if ep.has_v6() {
        let v6_routes = ip(&format!("-n {} -6 -o route show", ep.netns))?;
        let default_v6 = format!("default via {GATEWAY_V6} dev {POD_INTERFACE} ");
        if !has_route(&v6_routes, &default_v6) {
            return partial("the IPv6 default route in the netns is missing".to_owned());
        }
    }

    let host_addresses = addresses(None, &ep.interface)?;
    if !host_addresses.contains(&(IpAddr::V4(GATEWAY_V4), 32))
        || (ep.has_v6() && !host_addresses.contains(&(IpAddr::V6(GATEWAY_V6), 64)))
    {
        return partial(format!(
            "a gateway address on `{}` is missing",
            ep.interface
        ));
    }
    let mut routed = host_routes(&ep.interface, "-4")?;
    if ep.has_v6() || Path::new("/proc/sys/net/ipv6").exists() {
        routed.extend(host_routes(&ep.interface, "-6")?);
    }
    // A subset: routes others add via the veth are theirs.
    if let Some(missing) = ep.addresses.iter().find(|a| !routed.contains(a)) {
        return partial(format!("no host route to {missing} via `{}`", ep.interface));
    }
    Ok(Presence::Full)
}

fn has_route(table: &str, prefix: &str) -> bool {
    table
        .lines()
        .any(|l| format!("{} ", l.trim_end()).starts_with(prefix))
}

fn is_v6_link_local(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

// ---- create and remove -------------------------------------------------------------------

fn create_or_roll_back(ep: &LabEndpoint) -> Result<(), LabError> {
    let result = create(ep);
    if result.is_err() {
        if let Err(e) = remove(ep) {
            tracing::warn!(endpoint = %ep.name, error = %e, "lab: cannot roll back endpoint");
        }
    }
    result
}

fn create(ep: &LabEndpoint) -> Result<(), LabError> {
    let (ns, host_if, pod_if) = (&ep.netns, &ep.interface, POD_INTERFACE);
    let v6 = ep.has_v6();
    ip(&format!("netns add {ns}"))?;
    ip(&format!("-n {ns} link set lo up"))?;
    ip(&format!(
        "link add {host_if} type veth peer name {pod_if} netns {ns}"
    ))?;
    if v6 {
        // Hosts with `net.ipv6.conf.default.disable_ipv6=1` create the veth without IPv6.
        sysctl(&format!("net/ipv6/conf/{host_if}/disable_ipv6"), "0")?;
    }
    // Both ends up first: no route can be added via a device that is down.
    ip(&format!("link set {host_if} up"))?;
    ip(&format!("-n {ns} link set {pod_if} up"))?;

    for address in &ep.addresses {
        match address {
            IpAddr::V4(a) => ip(&format!("-n {ns} -4 addr add {a}/32 dev {pod_if}"))?,
            // No duplicate address detection: usable at once, not "tentative" for a second.
            IpAddr::V6(a) => ip(&format!("-n {ns} -6 addr add {a}/128 dev {pod_if} nodad"))?,
        };
    }
    ip(&format!(
        "-n {ns} -4 route add {GATEWAY_V4} dev {pod_if} scope link"
    ))?;
    ip(&format!(
        "-n {ns} -4 route add default via {GATEWAY_V4} dev {pod_if}"
    ))?;
    if v6 {
        ip(&format!(
            "-n {ns} -6 route add default via {GATEWAY_V6} dev {pod_if}"
        ))?;
    }

    // `scope host`, not `link`: see the module doc (source address of host-to-endpoint traffic).
    ip(&format!(
        "-4 addr add {GATEWAY_V4}/32 dev {host_if} scope host"
    ))?;
    if v6 {
        ip(&format!("-6 addr add {GATEWAY_V6}/64 dev {host_if} nodad"))?;
    }
    for address in &ep.addresses {
        match address {
            IpAddr::V4(a) => ip(&format!("-4 route add {a}/32 dev {host_if}"))?,
            IpAddr::V6(a) => ip(&format!("-6 route add {a}/128 dev {host_if}"))?,
        };
    }
    host_sysctls(ep)
}

fn host_sysctls(ep: &LabEndpoint) -> Result<(), LabError> {
    let host_if = &ep.interface;
    sysctl(&format!("net/ipv4/conf/{host_if}/rp_filter"), "0")?;
    sysctl(&format!("net/ipv4/conf/{host_if}/forwarding"), "1")?;
    if ep.has_v6() {
        sysctl(&format!("net/ipv6/conf/{host_if}/forwarding"), "1")?;
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Removed {
    netns: bool,
    interface: bool,
}

/// Deletes the netns and the host veth of `ep` (each only if present), trying both.
fn remove(ep: &LabEndpoint) -> Result<Removed, LabError> {
    let mut removed = Removed::default();
    let mut first_error = None;
    if netns_exists(&ep.netns) {
        match ip(&format!("netns del {}", ep.netns)) {
            Ok(_) => removed.netns = true,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // Deleting the netns deletes the veth pair, but asynchronously, and not at all while a
    // process still runs in the netns: delete the host end (and so the pair) explicitly.
    match link(None, &ep.interface) {
        Ok(None) => {}
        Ok(Some(host)) => match check_ours(ep, &host) {
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(()) => match ip(&format!("link del {}", ep.interface)) {
                Ok(_) => removed.interface = true,
                // Gone meanwhile with its netns: fine.
                Err(e) => match link(None, &ep.interface) {
                    Ok(None) => {}
                    Ok(Some(_)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                },
            },
        },
        Err(e) => {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

// ---- iproute2 and sysctl ---------------------------------------------------------------------

/// Runs `ip ARGS` (`args` split at whitespace: the validated names contain none); its stdout
/// when it succeeds.
fn ip(args: &str) -> Result<String, LabError> {
    let (status, stdout, stderr) = run_ip(args)?;
    if status.success() {
        Ok(stdout)
    } else {
        Err(command_error(args, status, &stderr))
    }
}

fn run_ip(args: &str) -> Result<(ExitStatus, String, String), LabError> {
    tracing::debug!(command = %format!("ip {args}"), "lab: running");
    let output = Command::new("ip")
        .args(args.split_whitespace())
        // English messages: `link` recognizes "does not exist".
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            command: format!("ip {args}"),
            source,
        })?;
    Ok((
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

fn command_error(args: &str, status: ExitStatus, stderr: &str) -> LabError {
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    };
    let stderr = stderr.trim();
    LabError::Command {
        command: format!("ip {args}"),
        status,
        stderr: if stderr.is_empty() {
            "no error output".to_owned()
        } else {
            stderr.to_owned()
        },
    }
}

/// Sets `/proc/sys/KEY` (e.g. `net/ipv4/ip_forward`) to `value` unless it has it already.
fn sysctl(key: &str, value: &'static str) -> Result<(), LabError> {
    let path = Path::new("/proc/sys").join(key);
    if fs::read_to_string(&path).is_ok_and(|current| current.trim() == value) {
        return Ok(());
    }
    tracing::debug!(path = %path.display(), value, "lab: sysctl");
    fs::write(&path, format!("{value}\n")).map_err(|source| LabError::Sysctl {
        path,
        value,
        source,
    })
}

/// Where the peer of a veth is, from `ip -d link`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PeerNetns {
    /// No peer netns shown: the peer is in the same netns (or the link is no veth).
    Same,
    /// `link-netns NAME`.
    Named(String),
    /// `link-netnsid N`: a netns without a name (e.g. deleted while a process holds it).
    Unnamed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    index: u32,
    /// `NAME@ifN`: the ifindex of the peer (in the peer's netns).
    peer_index: Option<u32>,
    up: bool,
    veth: bool,
    peer_netns: PeerNetns,
}

/// `-n NETNS ` or nothing.
fn netns_option(netns: Option<&str>) -> String {
    netns.map(|ns| format!("-n {ns} ")).unwrap_or_default()
}

/// The link `name` in `netns` (the host's when `None`), or `None` when it does not exist.
fn link(netns: Option<&str>, name: &str) -> Result<Option<Link>, LabError> {
    let args = format!("{}-o -d link show dev {name}", netns_option(netns));
    let (status, stdout, stderr) = run_ip(&args)?;
    if !status.success() {
        if stderr.contains("does not exist") {
            return Ok(None);
        }
        return Err(command_error(&args, status, &stderr));
    }
    Ok(stdout.lines().next().and_then(parse_link))
}

/// Parses one line of `ip -o -d link show`, e.g.
/// `5: lt1@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 ... link-netns ns1 ... veth ...`.
fn parse_link(line: &str) -> Option<Link> {
    let (index, rest) = line.split_once(": ")?;
    let index = index.trim().parse().ok()?;
    let (name, rest) = rest.split_once(": ")?;
    let peer_index = name
        .split_once('@')
        .and_then(|(_, peer)| peer.strip_prefix("if"))
        .and_then(|n| n.parse().ok());
    let flags = rest.trim_start().strip_prefix('<')?.split_once('>')?.0;
    let up = flags.split(',').any(|f| f == "UP");
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let after = |key: &str| {
        tokens
            .iter()
            .position(|t| *t == key)
            .and_then(|i| tokens.get(i + 1))
    };
    let peer_netns = if let Some(name) = after("link-netns") {
        PeerNetns::Named((*name).to_owned())
    } else if after("link-netnsid").is_some() {
        PeerNetns::Unnamed
    } else {
        PeerNetns::Same
    };
    Some(Link {
        index,
        peer_index,
        up,
        veth: tokens.contains(&"veth"),
        peer_netns,
    })
}

/// The addresses (with prefix length) on `dev` in `netns` (the host's when `None`).
fn addresses(netns: Option<&str>, dev: &str) -> Result<Vec<(IpAddr, u8)>, LabError> {
    let args = format!("{}-o addr show dev {dev}", netns_option(netns));
    Ok(parse_addresses(&ip(&args)?))
}

/// Parses `ip -o addr show`: the `inet A/N` and `inet6 A/N` of every line.
fn parse_addresses(output: &str) -> Vec<(IpAddr, u8)> {
    let mut found = Vec::new();
    for line in output.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for pair in tokens.windows(2) {
            if pair[0] != "inet" && pair[0] != "inet6" {
                continue;
            }
            let Some((address, len)) = pair[1].split_once('/') else {
                continue;
            };
            if let (Ok(address), Ok(len)) = (address.parse(), len.parse()) {
                found.push((address, len));
            }
        }
    }
    found
}

/// The single-address routes (`A dev IF`) of the host's main table via `dev`.
fn host_routes(dev: &str, family: &str) -> Result<HashSet<IpAddr>, LabError> {
    let output = ip(&format!("{family} -o route show dev {dev}"))?;
    Ok(parse_host_routes(&output))
}

fn parse_host_routes(output: &str) -> HashSet<IpAddr> {
    output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|dst| dst.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    fn ep(name: &str, interface: &str, netns: &str, addresses: &[&str]) -> LabEndpoint {
        LabEndpoint {
            name: name.to_owned(),
            interface: interface.to_owned(),
            netns: netns.to_owned(),
            addresses: addresses
                .iter()
                .map(|a| a.parse().expect("test address"))
                .collect(),
        }
    }

    // ---- without root: validation and parsing ----

    #[test]
    fn rejects_an_interface_name_longer_than_15_bytes() {
        let e = up(&[ep("client", "abcdefghijklmnop", "lab-t-x", &[])]).expect_err("too long");
        assert!(matches!(e, LabError::InterfaceTooLong { .. }));
        assert_eq!(
            e.to_string(),
            "lab: endpoint `client`: interface name `abcdefghijklmnop` is longer than 15 bytes"
        );
        // 15 bytes is fine.
        assert!(validate(&[ep("client", "abcdefghijklmno", "lab-t-x", &[])]).is_ok());
    }

    #[test]
    fn rejects_bad_names_and_addresses_before_touching_anything() {
        let cases = [
            ep("a", "lt0", "", &[]),
            ep("a", "lt0", "lab/t", &[]),
            ep("a", "lt0", "..", &[]),
            ep("a", "lt0", "-lab", &[]),
            ep("a", "lt0", "lab t", &[]),
            ep("a", "", "lab-t", &[]),
            ep("a", "lt/0", "lab-t", &[]),
            ep("a", "lt 0", "lab-t", &[]),
            ep("a", "lt:0", "lab-t", &[]),
            ep("a", "lt0", "lab-t", &["169.254.1.1"]),
            ep("a", "lt0", "lab-t", &["fe80::1"]),
            ep("a", "lt0", "lab-t", &["fe80::7"]),
            ep("a", "lt0", "lab-t", &["0.0.0.0"]),
            ep("a", "lt0", "lab-t", &["127.0.0.1"]),
            ep("a", "lt0", "lab-t", &["224.0.0.1"]),
        ];
        for case in cases {
            let e = validate(std::slice::from_ref(&case)).expect_err("invalid");
            assert!(
                e.to_string().starts_with("lab: endpoint `a`: "),
                "{case:?}: {e}"
            );
            // `down` validates too.
            assert!(down(&[case]).is_err());
        }
        let e = up(&[ep("a", "lt0", "", &[])]).expect_err("empty netns");
        assert_eq!(e.to_string(), "lab: endpoint `a`: netns name `` is empty");
    }

    #[test]
    fn rejects_duplicates_across_endpoints() {
        let a = ep("a", "lt0", "lab-t-0", &["10.251.0.2"]);
        let e = validate(&[a.clone(), ep("b", "lt1", "lab-t-0", &[])]).expect_err("dup");
        assert_eq!(
            e.to_string(),
            "lab: endpoints `a` and `b` both use netns `lab-t-0`"
        );
        assert!(validate(&[a.clone(), ep("b", "lt0", "lab-t-1", &[])]).is_err());
        let e = validate(&[a.clone(), ep("b", "lt1", "lab-t-1", &["10.251.0.2"])]);
        assert!(matches!(
            e,
            Err(LabError::Duplicate {
                what: "address",
                ..
            })
        ));
        assert!(validate(&[a, ep("b", "lt1", "lab-t-1", &["10.251.0.3"])]).is_ok());
        assert_eq!(up(&[]).expect("empty").len(), 0);
    }

    #[test]
    fn command_errors_name_the_command_and_exit_status() {
        let e = command_error(
            "netns add strait-client",
            ExitStatus::from_raw(2 << 8),
            "Cannot create namespace file: File exists\n",
        );
        assert_eq!(
            e.to_string(),
            "lab: `ip netns add strait-client` failed (exit 2): Cannot create namespace file: \
             File exists"
        );
    }

    #[test]
    fn parses_ip_link_lines() {
        let host = "5: lt1a@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state \
                    UP mode DEFAULT group default qlen 1000\\    link/ether 0e:5b:e2:69:36:47 brd \
                    ff:ff:ff:ff:ff:ff link-netns lab-t-a promiscuity 0  allmulti 0 minmtu 68 \
                    maxmtu 65535 \\    veth addrgenmode eui64 numtxqueues 2";
        assert_eq!(
            parse_link(host),
            Some(Link {
                index: 5,
                peer_index: Some(2),
                up: true,
                veth: true,
                peer_netns: PeerNetns::Named("lab-t-a".to_owned()),
            })
        );
        let pod = "2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue \
                   state UP\\    link/ether 7e:ee:45:34:68:aa brd ff:ff:ff:ff:ff:ff \
                   link-netnsid 0 promiscuity 0 \\    veth addrgenmode eui64";
        let pod = parse_link(pod).expect("pod line");
        assert_eq!((pod.index, pod.peer_index), (2, Some(5)));
        assert_eq!(pod.peer_netns, PeerNetns::Unnamed);
        let plain = "4: eth0: <BROADCAST,MULTICAST> mtu 1400 qdisc pfifo_fast state DOWN \
                     mode DEFAULT\\    link/ether 02:fc:00:00:00:01 brd ff:ff:ff:ff:ff:ff \
                     promiscuity 0";
        let plain = parse_link(plain).expect("plain line");
        assert!(!plain.up && !plain.veth && plain.peer_index.is_none());
        assert_eq!(plain.peer_netns, PeerNetns::Same);
        assert_eq!(parse_link("garbage"), None);
    }

    #[test]
    fn parses_addresses_and_routes() {
        let addrs = "2: eth0    inet 10.251.9.2/32 scope global eth0\\       valid_lft forever\n\
                     2: eth0    inet6 fd51::2/128 scope global nodad \\       valid_lft forever\n\
                     2: eth0    inet6 fe80::7cee:45ff:fe34:68aa/64 scope link \\   valid_lft\n";
        assert_eq!(
            parse_addresses(addrs),
            vec![
                ("10.251.9.2".parse().expect("v4"), 32),
                ("fd51::2".parse().expect("v6"), 128),
                ("fe80::7cee:45ff:fe34:68aa".parse().expect("ll"), 64),
            ]
        );
        let routes = "10.251.9.2 scope link \nfd51::2 metric 1024 pref medium\n\
                      fe80::/64 proto kernel metric 256 pref medium\n";
        let want: HashSet<IpAddr> = ["10.251.9.2", "fd51::2"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        assert_eq!(parse_host_routes(routes), want);
        let table = "default via 169.254.1.1 dev eth0 \n169.254.1.1 dev eth0 scope link \n";
        assert!(has_route(table, "default via 169.254.1.1 dev eth0 "));
        assert!(has_route(table, "169.254.1.1 dev eth0 "));
        assert!(!has_route(table, "169.254.1.1 dev eth01 "));
    }

    // ---- as root: real namespaces ----

    /// Whether the lab tests can run here; prints why not.
    fn can_run() -> bool {
        let root = fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
                .unwrap_or(false)
        });
        if !root {
            println!("SKIPPED: lab tests need root (network namespaces and veths)");
            return false;
        }
        let ip_ok = Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ip_ok {
            println!("SKIPPED: lab tests need the `ip` command (iproute2)");
            return false;
        }
        true
    }

    /// Two endpoints with names and addresses unique to this process and test (`tag`).
    fn pair(tag: u8, v6: bool) -> Vec<LabEndpoint> {
        let pid = std::process::id();
        let tag_char = char::from(b'a' + tag);
        (0..2u8)
            .map(|side| {
                let side_char = char::from(b'a' + side);
                let mut addresses = vec![IpAddr::V4(Ipv4Addr::new(
                    10,
                    251,
                    (pid % 256) as u8,
                    tag * 8 + side + 2,
                ))];
                if v6 {
                    addresses.push(IpAddr::V6(Ipv6Addr::new(
                        0xfd5a,
                        (pid >> 16) as u16,
                        pid as u16,
                        u16::from(tag),
                        0,
                        0,
                        0,
                        u16::from(side) + 2,
                    )));
                }
                LabEndpoint {
                    name: format!("lab-test-{tag_char}{side_char}"),
                    interface: format!("lt{pid}{tag_char}{side_char}"),
                    netns: format!("lab-t-{tag_char}{side_char}-{pid}"),
                    addresses,
                }
            })
            .collect()
    }

    fn netns_listed(netns: &str) -> bool {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(netns))
    }

    fn host_link_exists(interface: &str) -> bool {
        Command::new("ip")
            .args(["link", "show", "dev", interface])
            .output()
            .expect("ip link show")
            .status
            .success()
    }

    fn assert_gone(eps: &[LabEndpoint]) {
        for ep in eps {
            assert!(!netns_listed(&ep.netns), "netns {} left", ep.netns);
            assert!(!host_link_exists(&ep.interface), "{} left", ep.interface);
        }
    }

    /// Switches the calling thread into the named netns (for sockets opened afterwards).
    fn enter_netns(netns: &str) -> std::io::Result<()> {
        unsafe extern "C" {
            fn setns(fd: std::os::raw::c_int, nstype: std::os::raw::c_int) -> std::os::raw::c_int;
        }
        const CLONE_NEWNET: std::os::raw::c_int = 0x4000_0000;
        let file = fs::File::open(Path::new(NETNS_RUN_DIR).join(netns))?;
        // SAFETY: setns(2) only reads the descriptor, which `file` keeps open during the call,
        // and changes nothing but the calling thread's network namespace.
        if unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Opens a TCP connection from `client_netns` (the host when `None`) to `server` listening
    /// in `server_netns`, exchanges a few bytes, and returns the client address the server saw.
    fn tcp_check(client_netns: Option<&str>, server_netns: &str, server: IpAddr) -> SocketAddr {
        let (port_tx, port_rx) = mpsc::channel();
        let server_netns = server_netns.to_owned();
        let server_thread = thread::spawn(move || {
            enter_netns(&server_netns).expect("enter server netns");
            let listener = TcpListener::bind(SocketAddr::new(server, 0)).expect("bind");
            port_tx
                .send(listener.local_addr().expect("local addr"))
                .expect("send");
            listener.set_nonblocking(true).expect("nonblocking");
            let deadline = Instant::now() + Duration::from_secs(5);
            let (mut stream, peer) = loop {
                match listener.accept() {
                    Ok(accepted) => break accepted,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(Instant::now() < deadline, "no connection to {server}");
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            stream.set_nonblocking(false).expect("blocking");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut hello = [0; 5];
            stream.read_exact(&mut hello).expect("read hello");
            assert_eq!(&hello, b"hello");
            stream.write_all(b"ok").expect("write");
            peer
        });
        let to = port_rx.recv().expect("server address");
        let client_netns = client_netns.map(str::to_owned);
        let client_thread = thread::spawn(move || {
            if let Some(ns) = &client_netns {
                enter_netns(ns).expect("enter client netns");
            }
            let mut stream =
                TcpStream::connect_timeout(&to, Duration::from_secs(3)).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            stream.write_all(b"hello").expect("write");
            let mut reply = [0; 2];
            stream.read_exact(&mut reply).expect("read reply");
            assert_eq!(&reply, b"ok");
        });
        client_thread.join().expect("client thread");
        server_thread.join().expect("server thread")
    }

    fn have_ping() -> bool {
        let ok = Command::new("ping")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            println!("SKIPPED: `ping` is not installed: ICMP checks skipped (TCP checks ran)");
        }
        ok
    }

    fn ping(from: &LabEndpoint, to: IpAddr) -> bool {
        let out = exec_in(&from.netns, "ping")
            .args(["-c1", "-W1", &to.to_string()])
            .output()
            .expect("ip netns exec ping");
        out.status.success()
    }

    #[test]
    fn lab_up_connects_endpoints_through_the_host_and_down_removes_them() {
        if !can_run() {
            return;
        }
        let eps = pair(0, false);
        let (a, b) = (&eps[0], &eps[1]);
        let guard = Lab {
            endpoints: eps.clone(),
        }; // cleans up should an assertion fail
        let lines = up(&eps).expect("up");
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("created"), "{lines:?}");

        // Endpoint to endpoint, routed by the host.
        if have_ping() {
            assert!(ping(a, b.addresses[0]), "ping a -> b");
            assert!(ping(b, a.addresses[0]), "ping b -> a");
        }
        let seen = tcp_check(Some(&a.netns), &b.netns, b.addresses[0]);
        assert_eq!(seen.ip(), a.addresses[0]);
        // Host to endpoint: from the host's own address, not the gateway's.
        let seen = tcp_check(None, &a.netns, a.addresses[0]);
        assert_ne!(seen.ip(), IpAddr::V4(GATEWAY_V4));

        // Idempotent.
        let again = up(&eps).expect("second up");
        assert!(
            again.iter().all(|l| l.contains("already present")),
            "{again:?}"
        );
        tcp_check(Some(&b.netns), &a.netns, a.addresses[0]);
        for ep in &eps {
            let forwarding = format!("/proc/sys/net/ipv4/conf/{}/forwarding", ep.interface);
            assert_eq!(fs::read_to_string(forwarding).expect("sysctl").trim(), "1");
        }

        // Taking one endpoint down leaves the other working (the shared gateway address).
        let one = down(&eps[..1]).expect("down a");
        assert!(one[0].contains("removed"), "{one:?}");
        assert_gone(&eps[..1]);
        tcp_check(None, &b.netns, b.addresses[0]);

        let lines = down(&eps).expect("down");
        assert!(lines[0].contains("already absent"), "{lines:?}");
        assert!(lines[1].contains("removed"), "{lines:?}");
        assert_gone(&eps);
        assert!(down(&eps).expect("down again")[1].contains("already absent"));
        drop(guard);
    }

    #[test]
    fn lab_recreates_a_partial_endpoint() {
        if !can_run() {
            return;
        }
        let eps = pair(1, false);
        let lab = Lab::up(eps.clone()).expect("lab up");
        let a = &lab.endpoints()[0];
        let b = &lab.endpoints()[1];
        // Lose the host route to `a`.
        let route = format!("{}/32", a.addresses[0]);
        let out = Command::new("ip")
            .args(["route", "del", &route, "dev", &a.interface])
            .output()
            .expect("ip route del");
        assert!(out.status.success());
        // Lose `b`'s host veth (and with it the pair).
        let out = Command::new("ip")
            .args(["link", "del", &b.interface])
            .output()
            .expect("ip link del");
        assert!(out.status.success());

        let lines = up(lab.endpoints()).expect("up again");
        assert!(
            lines[0].contains("was partial: no host route to"),
            "{lines:?}"
        );
        assert!(lines[1].contains("was partial: no host veth"), "{lines:?}");
        tcp_check(Some(&a.netns), &b.netns, b.addresses[0]);
        drop(lab);
        assert_gone(&eps);
    }

    #[test]
    fn lab_guard_cleans_up_after_a_panic() {
        if !can_run() {
            return;
        }
        let eps = pair(2, false);
        let inside = eps.clone();
        let result = std::panic::catch_unwind(move || {
            let lab = Lab::up(inside).expect("lab up");
            assert!(netns_listed(&lab.endpoints()[0].netns));
            assert!(host_link_exists(&lab.endpoints()[1].interface));
            panic!("deliberate panic with a lab up");
        });
        assert!(result.is_err());
        assert_gone(&eps);
    }

    #[test]
    fn lab_dual_stack() {
        if !can_run() {
            return;
        }
        if !Path::new("/proc/sys/net/ipv6").exists() {
            println!("SKIPPED: IPv6 is disabled on this host");
            return;
        }
        // `up` sets net.ipv6.conf.all.forwarding=1 for good; give the host back what it had.
        let all_forwarding = "/proc/sys/net/ipv6/conf/all/forwarding";
        let before = fs::read_to_string(all_forwarding).expect("read forwarding");
        let eps = pair(3, true);
        let lab = Lab::up(eps.clone()).expect("lab up");
        let (a, b) = (&lab.endpoints()[0], &lab.endpoints()[1]);
        let result = std::panic::catch_unwind(|| {
            assert_eq!(
                fs::read_to_string(all_forwarding).expect("read").trim(),
                "1"
            );
            if have_ping() {
                assert!(ping(a, b.addresses[1]), "ping6 a -> b");
            }
            let seen = tcp_check(Some(&a.netns), &b.netns, b.addresses[1]);
            assert_eq!(seen.ip(), a.addresses[1]);
            tcp_check(Some(&b.netns), &a.netns, a.addresses[0]);
            let seen = tcp_check(None, &b.netns, b.addresses[1]);
            assert!(!is_v6_link_local(seen.ip()), "{seen}");
            let again = up(lab.endpoints()).expect("second up");
            assert!(
                again.iter().all(|l| l.contains("already present")),
                "{again:?}"
            );
        });
        drop(lab);
        fs::write(all_forwarding, before).expect("restore forwarding");
        assert_gone(&eps);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn lab_never_deletes_an_interface_that_is_not_its_own() {
        if !can_run() {
            return;
        }
        // A veth pair with both ends on the host, named like a lab interface.
        let pid = std::process::id();
        let (mine, peer) = (format!("lt{pid}ex"), format!("lt{pid}ey"));
        let out = Command::new("ip")
            .args(["link", "add", &mine, "type", "veth", "peer", "name", &peer])
            .output()
            .expect("ip link add");
        assert!(out.status.success(), "{out:?}");
        let eps = vec![LabEndpoint {
            name: "intruder".to_owned(),
            interface: mine.clone(),
            netns: format!("lab-t-ex-{pid}"),
            addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 251, (pid % 256) as u8, 200))],
        }];
        let up_result = up(&eps);
        let down_result = down(&eps);
        let survived = host_link_exists(&mine);
        let _ = Command::new("ip").args(["link", "del", &mine]).output();
        assert!(
            matches!(up_result, Err(LabError::InterfaceInUse { .. })),
            "{up_result:?}"
        );
        assert!(
            matches!(down_result, Err(LabError::InterfaceInUse { .. })),
            "{down_result:?}"
        );
        assert!(survived);
        assert!(!netns_listed(&eps[0].netns));
    }
}
