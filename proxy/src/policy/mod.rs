//! Policy: identities from endpoint labels, CiliumNetworkPolicy files, and their compilation
//! into the datapath's map entries (`datapath_bpf` types).
//!
//! Semantics follow Cilium's where strait implements them (docs/datapath.md lists the rest):
//! an endpoint selected by a policy with `ingress`/`ingressDeny` (`egress`/`egressDeny`) is
//! default-deny in that direction; allow rules add entries; deny rules win over allows; a port
//! with L7 `rules` is redirected to strait's transparent listener for that protocol.

pub mod cnp;
pub mod l7;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use datapath_bpf::{
    PolicyEntry, PolicyKey, ACTION_ALLOW, ACTION_DENY, ACTION_REDIRECT, DIR_EGRESS, DIR_INGRESS,
    EP_ENFORCE_EGRESS, EP_ENFORCE_INGRESS, IDENTITY_FIRST_LOCAL, IDENTITY_HOST, IDENTITY_WORLD,
};

use crate::config::{Config, Diagnostic, EndpointConfig, Protocol};
use cnp::{Cnp, PortRule, Selector};

/// Labels of an endpoint, by key (source prefixes removed).
pub type Labels = BTreeMap<String, String>;

/// First numeric identity of CIDR identities (Cilium's local-scope range).
pub const IDENTITY_FIRST_CIDR: u32 = 1 << 24;
/// Most ports one `port`..`endPort` range may expand to.
const MAX_PORT_RANGE: u32 = 1024;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Numeric identities of the configured endpoints: one per distinct label set, allocated in the
/// sorted order of label sets from [`IDENTITY_FIRST_LOCAL`] (the same labels always get the same
/// number for the same set of endpoints).
#[derive(Debug, Default, Clone)]
pub struct Identities {
    by_labels: BTreeMap<Labels, u32>,
    by_addr: HashMap<IpAddr, u32>,
    /// The datapath's ipcache (host addresses, policy CIDRs), longest prefix first, as the
    /// policy in force has it: for peers that are no endpoint ([`Identities::of_peer`]).
    ipcache: Arc<ArcSwapOption<Vec<IpcacheEntry>>>,
}

impl Identities {
    pub fn from_endpoints(eps: &[EndpointConfig]) -> Self {
        let sets: BTreeSet<Labels> = eps.iter().map(|e| normalise(&e.labels)).collect();
        let by_labels: BTreeMap<Labels, u32> =
            sets.into_iter().zip(IDENTITY_FIRST_LOCAL..).collect();
        let mut by_addr = HashMap::new();
        for e in eps {
            let id = by_labels[&normalise(&e.labels)];
            for a in &e.addresses {
                by_addr.insert(*a, id);
            }
        }
        Self {
            by_labels,
            by_addr,
            ipcache: Arc::default(),
        }
    }

    /// Takes the ipcache of the policy now in force (at start and on every policy change).
    pub fn set_ipcache(&self, entries: &[IpcacheEntry]) {
        let mut v = entries.to_vec();
        v.sort_by_key(|e| std::cmp::Reverse(e.prefix));
        self.ipcache.store(Some(Arc::new(v)));
    }

    /// Identity of any peer address, as the datapath resolves it: an endpoint's, else the
    /// longest ipcache prefix that holds it (the host, a policy CIDR), else `world`; `None` for
    /// a peer that is no endpoint while no ipcache was set (no datapath: nothing resolves it).
    /// An IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) is taken as IPv4.
    pub fn of_peer(&self, ip: IpAddr) -> Option<u32> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if let Some(id) = self.of_addr(ip) {
            return Some(id);
        }
        let cache = self.ipcache.load();
        let entries = cache.as_deref()?;
        Some(
            entries
                .iter()
                .find(|e| in_prefix(ip, e.addr, e.prefix))
                .map_or(IDENTITY_WORLD, |e| e.identity),
        )
    }

    /// Identity of an endpoint address.
    pub fn of_addr(&self, ip: IpAddr) -> Option<u32> {
        self.by_addr.get(&ip).copied()
    }

    pub fn of_labels(&self, labels: &Labels) -> Option<u32> {
        self.by_labels.get(&normalise(labels)).copied()
    }

    /// Every local identity with its labels.
    pub fn iter(&self) -> impl Iterator<Item = (&Labels, u32)> {
        self.by_labels.iter().map(|(l, i)| (l, *i))
    }

    /// Human-readable name of an identity for flows and events.
    pub fn describe(&self, id: u32) -> String {
        match id {
            0 => "unknown".into(),
            IDENTITY_HOST => "reserved:host".into(),
            IDENTITY_WORLD => "reserved:world".into(),
            _ => match self.by_labels.iter().find(|(_, i)| **i == id) {
                Some((l, _)) => l
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
                None if id >= IDENTITY_FIRST_CIDR => format!("cidr:{id}"),
                None => id.to_string(),
            },
        }
    }
}

/// Whether `ip` is in `addr/prefix` (of the same family).
fn in_prefix(ip: IpAddr, addr: IpAddr, prefix: u8) -> bool {
    match (ip, addr) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn normalise(labels: &Labels) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (cnp::strip_source(k).to_owned(), v.clone()))
        .collect()
}

/// A policy document that failed to load, with its position.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// One loaded policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    pub file: PathBuf,
    /// Line where the policy's YAML document starts.
    pub line: usize,
    pub name: String,
    pub doc: Cnp,
}

/// Reads every policy file of the configuration (multi-document YAML allowed).
pub fn load(paths: &[PathBuf]) -> Result<Vec<Policy>, PolicyError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let src = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        match parse(path, &src) {
            Ok(mut p) => out.append(&mut p),
            Err(PolicyError::Invalid(mut d)) => errors.append(&mut d),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(PolicyError::Invalid(errors))
    }
}

/// Parses one policy file's documents.
pub fn parse(path: &Path, src: &str) -> Result<Vec<Policy>, PolicyError> {
    let diag = |line: usize, column: usize, field: &str, message: String| Diagnostic {
        file: path.to_owned(),
        line,
        column,
        field: field.to_owned(),
        message,
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(src).enumerate() {
        let v = match serde_yaml::Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                let (l, c) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                errors.push(diag(l, c, "", strip_at(&e.to_string())));
                break;
            }
        };
        if v.is_null() {
            continue;
        }
        let doc: Cnp = match serde_yaml::from_value(v) {
            Ok(d) => d,
            Err(e) => {
                // Values lose positions: point at the offending key when the message names
                // one, else at the document's first line.
                let start = doc_start_line(src, i);
                let msg = e.to_string();
                let key = msg
                    .strip_prefix("unknown field `")
                    .or_else(|| msg.split(": unknown field `").nth(1))
                    .and_then(|r| r.split('`').next())
                    .map(|k| format!("{k}:"));
                let (line, col) = key
                    .and_then(|k| find_in_doc(src, start, &k))
                    .unwrap_or((start, 1));
                errors.push(diag(line, col, &format!("document {}", i + 1), msg));
                continue;
            }
        };
        let line = doc_start_line(src, i);
        let problems = l7::check(&doc);
        if !problems.is_empty() {
            for pr in problems {
                let (l, c) = pr
                    .needle
                    .as_deref()
                    .and_then(|n| find_in_doc(src, line, n))
                    .unwrap_or((line, 1));
                errors.push(diag(l, c, &pr.field, pr.message));
            }
            continue;
        }
        if doc.api_version != "cilium.io/v2" {
            errors.push(diag(
                line,
                1,
                "apiVersion",
                format!("`{}` is not supported; use cilium.io/v2", doc.api_version),
            ));
            continue;
        }
        if doc.kind != "CiliumNetworkPolicy" && doc.kind != "CiliumClusterwideNetworkPolicy" {
            errors.push(diag(
                line,
                1,
                "kind",
                format!(
                    "`{}` is not a CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy",
                    doc.kind
                ),
            ));
            continue;
        }
        if doc.spec.is_none() && doc.specs.is_empty() {
            errors.push(diag(line, 1, "spec", "needs `spec` or `specs`".into()));
            continue;
        }
        let name = if doc.metadata.name.is_empty() {
            format!("{}#{}", path.display(), i + 1)
        } else {
            doc.metadata.name.clone()
        };
        out.push(Policy {
            file: path.to_owned(),
            line,
            name,
            doc,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(PolicyError::Invalid(errors))
    }
}

use serde::Deserialize as _;

fn strip_at(msg: &str) -> String {
    msg.split(" at line ").next().unwrap_or(msg).to_owned()
}

/// 1-based (line, column) of the first occurrence of `needle` at or after line `from`.
fn find_in_doc(src: &str, from: usize, needle: &str) -> Option<(usize, usize)> {
    src.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find_map(|(n, l)| l.find(needle).map(|c| (n + 1, c + 1)))
}

/// 1-based line where YAML document `idx` starts (after its `---`).
fn doc_start_line(src: &str, idx: usize) -> usize {
    let mut seen = 0;
    let mut started = false;
    for (n, line) in src.lines().enumerate() {
        if line.trim_end() == "---" {
            if started {
                seen += 1;
            }
            started = true;
            continue;
        }
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            started = true;
            if seen == idx {
                return n + 1;
            }
        }
    }
    1
}

/// A CIDR → identity entry of the ipcache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcacheEntry {
    pub addr: IpAddr,
    pub prefix: u8,
    pub identity: u32,
}

/// Everything the datapath's maps hold, compiled from endpoints and policies.
#[derive(Debug, Default, Clone)]
pub struct MapState {
    /// Per endpoint: its addresses, identity and enforcement flags (`EP_ENFORCE_*`).
    pub endpoints: Vec<(EndpointConfig, u32, u32)>,
    pub ipcache: Vec<IpcacheEntry>,
    pub policy: BTreeMap<PolicyKeyOrd, PolicyEntry>,
    /// Rule descriptions, indexed by `PolicyEntry::rule`.
    pub rules: Vec<String>,
}

/// `PolicyKey` with an order, for deterministic maps and diffs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyKeyOrd(pub u32, pub u32, pub u16, pub u8, pub u8);

impl PolicyKeyOrd {
    pub fn key(&self) -> PolicyKey {
        PolicyKey {
            local_identity: self.0,
            remote_identity: self.1,
            dport: self.2,
            proto: self.3,
            direction: self.4,
        }
    }
}

/// The CIDR identities of `policies`: every distinct CIDR their rules name as a peer
/// (`fromCIDR`/`toCIDR` and the `cidr` of the `…CIDRSet` forms, not `except`), each numbered
/// from the CIDR alone (a hash into [`IDENTITY_FIRST_CIDR`]`..`; the next free number on the
/// rare collision). The datapath's ipcache and policy map and the transparent listeners' L7
/// policy filter are built by different reloads; a number that depended on the other CIDRs
/// (their order, say) would shift when one is added, and for a moment one CIDR's peers would
/// be judged by another's rules. Stable numbers leave only a CIDR the other side does not know
/// yet, which matches no rule set and is denied.
pub fn cidr_identities(policies: &[Policy]) -> BTreeMap<(IpAddr, u8), u32> {
    let mut all = BTreeSet::new();
    for p in policies {
        for spec in l7::specs(&p.doc) {
            for sec in sections(spec) {
                for r in &sec.peers {
                    let plain = r.cidr.into_iter().flatten().map(String::as_str);
                    let sets = r.cidr_set.into_iter().flatten().flat_map(|c| {
                        std::iter::once(c.cidr.as_str()).chain(c.except.iter().map(String::as_str))
                    });
                    all.extend(plain.chain(sets).filter_map(parse_cidr));
                }
            }
        }
    }
    let span = u64::from(u32::MAX - IDENTITY_FIRST_CIDR) + 1;
    let mut out = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for (addr, prefix) in all {
        // FNV-1a over the address bytes and the prefix: the same number in every process.
        let bytes: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes.iter().chain([&prefix]) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut id = IDENTITY_FIRST_CIDR + (h % span) as u32;
        while !taken.insert(id) {
            id = id.checked_add(1).unwrap_or(IDENTITY_FIRST_CIDR);
        }
        out.insert((addr, prefix), id);
    }
    out
}

/// Compiles endpoints + policies. `host_addrs` become the host identity in the ipcache.
pub fn compile(
    config: &Config,
    identities: &Identities,
    policies: &[Policy],
    host_addrs: &[IpAddr],
) -> Result<MapState, PolicyError> {
    let mut c = Compiler {
        ids: identities,
        st: MapState::default(),
        cidrs: cidr_identities(policies),
        errors: Vec::new(),
        proxy_ports: config
            .listeners
            .iter()
            .filter(|l| l.upstream.is_transparent())
            .map(|l| {
                let proto = match l.protocol {
                    Protocol::Http => "http",
                    Protocol::Tcp => "tcp",
                    Protocol::Kafka => "kafka",
                };
                (proto, l.address.port())
            })
            .collect(),
        enforce: BTreeMap::new(),
    };
    for a in host_addrs {
        c.st.ipcache.push(IpcacheEntry {
            addr: *a,
            prefix: if a.is_ipv4() { 32 } else { 128 },
            identity: IDENTITY_HOST,
        });
    }
    for p in policies {
        let mut specs: Vec<&cnp::Rule> = p.doc.specs.iter().collect();
        if let Some(s) = &p.doc.spec {
            specs.insert(0, s);
        }
        for (si, spec) in specs.into_iter().enumerate() {
            c.spec(p, si, spec);
        }
    }
    for e in &config.endpoints {
        let id = identities.of_labels(&e.labels).unwrap_or(0);
        let flags = c.enforce.get(&id).copied().unwrap_or(0);
        c.st.endpoints.push((e.clone(), id, flags));
    }
    if c.errors.is_empty() {
        Ok(c.st)
    } else {
        Err(PolicyError::Invalid(c.errors))
    }
}

struct Compiler<'a> {
    ids: &'a Identities,
    st: MapState,
    cidrs: BTreeMap<(IpAddr, u8), u32>,
    errors: Vec<Diagnostic>,
    proxy_ports: Vec<(&'static str, u16)>,
    enforce: BTreeMap<u32, u32>,
}

/// The peers and ports of one ingress or egress rule, direction-neutral.
struct Peers<'r> {
    endpoints: Option<&'r Vec<Selector>>,
    entities: Option<&'r Vec<String>>,
    cidr: Option<&'r Vec<String>>,
    cidr_set: Option<&'r Vec<cnp::CidrRule>>,
    ports: Option<&'r Vec<PortRule>>,
}

impl<'r> Peers<'r> {
    /// The kinds of peer the rule names (`Endpoints`, `Entities`, `CIDR`, `CIDRSet`). As in
    /// Cilium (Go's `len`), an empty list names none.
    fn kinds(&self) -> impl Iterator<Item = &'static str> {
        [
            ("Endpoints", self.endpoints.map(Vec::len)),
            ("Entities", self.entities.map(Vec::len)),
            ("CIDR", self.cidr.map(Vec::len)),
            ("CIDRSet", self.cidr_set.map(Vec::len)),
        ]
        .into_iter()
        .filter(|(_, n)| n.is_some_and(|n| n > 0))
        .map(|(k, _)| k)
    }

    /// Whether the rule names peers.
    fn any_peer(&self) -> bool {
        self.kinds().next().is_some()
    }

    /// The rule's `toPorts`, `None` when absent or empty (every port).
    fn port_rules(&self) -> Option<&'r Vec<PortRule>> {
        self.ports.filter(|p| !p.is_empty())
    }

    /// Whether the rule has a (non-empty) `toPorts`. A rule with neither peers nor ports
    /// (`{}`) selects nothing: `ingress: [{}]` is Cilium's default-deny idiom.
    fn has_ports(&self) -> bool {
        self.port_rules().is_some()
    }
}

impl Compiler<'_> {
    fn err(&mut self, p: &Policy, field: &str, message: String) {
        self.errors.push(Diagnostic {
            file: p.file.clone(),
            line: p.line,
            column: 1,
            field: format!("{}: {field}", p.name),
            message,
        });
    }

    fn spec(&mut self, p: &Policy, si: usize, spec: &cnp::Rule) {
        let base = format!("spec[{si}]");
        if spec.node_selector.is_some() {
            self.err(
                p,
                &format!("{base}.nodeSelector"),
                "host policies (nodeSelector) are not supported".into(),
            );
            return;
        }
        let Some(sel) = &spec.endpoint_selector else {
            self.err(p, &format!("{base}.endpointSelector"), "is required".into());
            return;
        };
        let selected: Vec<u32> = self
            .ids
            .iter()
            .filter(|(l, _)| sel.matches(l))
            .map(|(_, i)| i)
            .collect();
        for Section {
            name,
            dir,
            deny,
            present,
            peers: rules,
        } in sections(spec)
        {
            if !present {
                continue;
            }
            let flag = if dir == DIR_INGRESS {
                EP_ENFORCE_INGRESS
            } else {
                EP_ENFORCE_EGRESS
            };
            for id in &selected {
                *self.enforce.entry(*id).or_default() |= flag;
            }
            for (ri, r) in rules.iter().enumerate() {
                let field = format!("{base}.{name}[{ri}]");
                self.rule(p, &field, &selected, dir, deny, r);
            }
        }
    }

    fn rule(
        &mut self,
        p: &Policy,
        field: &str,
        locals: &[u32],
        dir: u8,
        deny: bool,
        r: &Peers<'_>,
    ) {
        let Some(remotes) = self.remotes(p, field, r) else {
            return;
        };
        let rule_idx = self.st.rules.len() as u32;
        self.st.rules.push(format!("{}/{field}", p.name));
        // (dport, proto, action, proxy port)
        let mut l4: Vec<(u16, u8, u8, u16)> = Vec::new();
        match r.port_rules() {
            None => l4.push((0, 0, if deny { ACTION_DENY } else { ACTION_ALLOW }, 0)),
            Some(prs) => {
                for (pi, pr) in prs.iter().enumerate() {
                    let pf = format!("{field}.toPorts[{pi}]");
                    let (action, proxy) = match &pr.rules {
                        Some(l7) if deny => {
                            let _ = l7;
                            self.err(
                                p,
                                &format!("{pf}.rules"),
                                "deny rules cannot carry L7 rules".into(),
                            );
                            return;
                        }
                        Some(l7) => match l7.protocol() {
                            None => (ACTION_ALLOW, 0),
                            Some(proto) => match self.proxy_ports.iter().find(|(p, _)| *p == proto)
                            {
                                Some((_, port)) => (ACTION_REDIRECT, *port),
                                None => {
                                    self.err(
                                        p,
                                        &format!("{pf}.rules"),
                                        format!(
                                            "{proto} rules need a listener with `transparent: true` and `protocol: {proto}` to redirect to"
                                        ),
                                    );
                                    return;
                                }
                            },
                        },
                        None if deny => (ACTION_DENY, 0),
                        None => (ACTION_ALLOW, 0),
                    };
                    // An entry without `ports` covers no port (as in Cilium).
                    for (ppi, pp) in pr.ports.iter().enumerate() {
                        let ppf = format!("{pf}.ports[{ppi}]");
                        let Some(ports) = self.ports(p, &ppf, pp) else {
                            return;
                        };
                        for (port, proto) in ports {
                            if action == ACTION_REDIRECT && proto == PROTO_UDP {
                                self.err(
                                    p,
                                    &ppf,
                                    "L7 rules apply to TCP ports only; set `protocol: TCP`".into(),
                                );
                                return;
                            }
                            l4.push((port, proto, action, proxy));
                        }
                    }
                }
            }
        }
        for &local in locals {
            for &remote in &remotes {
                for &(dport, proto, action, proxy_port) in &l4 {
                    let key = PolicyKeyOrd(local, remote, dport, proto, dir);
                    let new = PolicyEntry {
                        action,
                        _pad: 0,
                        proxy_port,
                        rule: rule_idx,
                    };
                    let e = self.st.policy.entry(key).or_insert(new);
                    // Deny wins; a redirect (L7 rules) wins over a plain allow.
                    if new.action == ACTION_DENY
                        || (new.action == ACTION_REDIRECT && e.action == ACTION_ALLOW)
                    {
                        *e = new;
                    }
                }
            }
        }
    }

    /// Remote identities of a rule; `0` is the wildcard (all).
    fn remotes(&mut self, p: &Policy, field: &str, r: &Peers<'_>) -> Option<Vec<u32>> {
        let mut out = BTreeSet::new();
        if !r.any_peer() {
            // Only toPorts: every peer. Neither (`{}`): none.
            return Some(if r.has_ports() { vec![0] } else { Vec::new() });
        }
        if let Some(sels) = r.endpoints {
            for s in sels {
                out.extend(
                    self.ids
                        .iter()
                        .filter(|(l, _)| s.matches(l))
                        .map(|(_, i)| i),
                );
            }
        }
        if let Some(ents) = r.entities {
            for (i, e) in ents.iter().enumerate() {
                match e.as_str() {
                    "all" => {
                        out.insert(0);
                    }
                    "world" => {
                        out.insert(IDENTITY_WORLD);
                        out.extend(self.cidrs.values().copied());
                    }
                    "host" => {
                        out.insert(IDENTITY_HOST);
                    }
                    "cluster" => {
                        out.insert(IDENTITY_HOST);
                        out.extend(self.ids.iter().map(|(_, i)| i));
                    }
                    other => {
                        self.err(
                            p,
                            &format!("{field}.entities[{i}]"),
                            format!(
                                "entity `{other}` is not supported (all, world, host, cluster)"
                            ),
                        );
                        return None;
                    }
                }
            }
        }
        let mut cidrs: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(cs) = r.cidr {
            cidrs.extend(cs.iter().map(|c| (c.clone(), Vec::new())));
        }
        if let Some(cs) = r.cidr_set {
            cidrs.extend(cs.iter().map(|c| (c.cidr.clone(), c.except.clone())));
        }
        for (i, (cidr, except)) in cidrs.into_iter().enumerate() {
            let f = format!("{field}.cidr[{i}]");
            let (addr, prefix) = self.cidr_prefix(p, &f, &cidr)?;
            let mut excepts = Vec::with_capacity(except.len());
            for ex in except {
                let e = self.cidr_prefix(p, &format!("{f}.except"), &ex)?;
                if !cidr_contains((addr, prefix), e) {
                    // As Cilium's `CIDRRule.sanitize`.
                    self.err(
                        p,
                        &format!("{f}.except"),
                        format!("`{ex}` is not inside `{cidr}`"),
                    );
                    return None;
                }
                excepts.push(e);
            }
            // `/0` also selects `world`: the addresses no policy CIDR covers (Cilium's
            // `MatchesAll`).
            if prefix == 0 {
                out.insert(IDENTITY_WORLD);
            }
            // As Cilium's `cidr:` labels: a CIDR selects every CIDR identity inside it (its
            // own, the more specific ones other rules name, and excepts of other rules), but
            // none inside one of its own excepts.
            out.extend(
                self.cidrs
                    .iter()
                    .filter(|(inner, _)| cidr_selects((addr, prefix), &excepts, **inner))
                    .map(|(_, id)| *id),
            );
        }
        Some(out.into_iter().collect())
    }

    /// A CIDR or except prefix of a rule, parsed, with its identity (numbered for every prefix
    /// of the policies up front, `cidr_identities`) entered in the ipcache. An except has an
    /// identity of its own, as in Cilium: the addresses in it land on that, which its rule does
    /// not select and any other CIDR containing them does. `/0` is `world` itself (see
    /// `remotes`): no entry, so the addresses no other prefix covers stay `world`.
    fn cidr_prefix(&mut self, p: &Policy, field: &str, text: &str) -> Option<(IpAddr, u8)> {
        let Some((addr, prefix)) = parse_cidr(text) else {
            self.err(
                p,
                field,
                format!("`{text}` is not a CIDR (e.g. 10.0.0.0/8)"),
            );
            return None;
        };
        let Some(&id) = self.cidrs.get(&(addr, prefix)) else {
            self.err(
                p,
                field,
                format!("`{text}` has no CIDR identity (internal error)"),
            );
            return None;
        };
        if prefix > 0 {
            self.ipcache_entry(addr, prefix, id);
        }
        Some((addr, prefix))
    }

    /// Adds `addr/prefix → identity` to the ipcache once. Every prefix has one identity (its
    /// CIDR identity), so a second entry would only repeat it.
    fn ipcache_entry(&mut self, addr: IpAddr, prefix: u8, identity: u32) {
        if !self
            .st
            .ipcache
            .iter()
            .any(|e| e.addr == addr && e.prefix == prefix)
        {
            self.st.ipcache.push(IpcacheEntry {
                addr,
                prefix,
                identity,
            });
        }
    }

    /// `(port, proto)` pairs of one ports entry; port 0 means all ports of the protocol(s).
    fn ports(&mut self, p: &Policy, field: &str, pp: &cnp::PortProtocol) -> Option<Vec<(u16, u8)>> {
        match port_protocols(pp) {
            Ok(v) => Some(v),
            Err((sub, message)) => {
                self.err(p, &format!("{field}.{sub}"), message);
                None
            }
        }
    }
}

/// The (port, IP protocol) pairs of a `toPorts.ports` entry (port 0: every port); on error the
/// sub-field (`port`, `protocol`, `endPort`) and the message.
fn port_protocols(pp: &cnp::PortProtocol) -> Result<Vec<(u16, u8)>, (&'static str, String)> {
    let port: u16 = match &pp.port {
        None => 0,
        Some(serde_yaml::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| ("port", format!("`{n}` is not a port number")))?,
        Some(serde_yaml::Value::String(s)) => s.parse::<u16>().map_err(|_| {
            (
                "port",
                format!("`{s}` is not a port number (named ports are not supported)"),
            )
        })?,
        Some(_) => return Err(("port", "must be a port number".into())),
    };
    let protos: Vec<u8> = match pp
        .protocol
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ANY") => vec![PROTO_TCP, PROTO_UDP],
        Some("TCP") => vec![PROTO_TCP],
        Some("UDP") => vec![PROTO_UDP],
        Some(other) => {
            return Err((
                "protocol",
                format!("`{other}` is not supported (TCP, UDP, ANY)"),
            ))
        }
    };
    let end = pp.end_port.unwrap_or(port);
    if end < port || (port == 0 && pp.end_port.is_some()) {
        return Err((
            "endPort",
            "must be at least `port` (and `port` non-zero)".into(),
        ));
    }
    if u32::from(end - port) + 1 > MAX_PORT_RANGE {
        return Err((
            "endPort",
            format!("ranges of more than {MAX_PORT_RANGE} ports are not supported"),
        ));
    }
    let mut out = Vec::new();
    for port in port..=end {
        for &proto in &protos {
            out.push((port, proto));
        }
    }
    Ok(out)
}

/// One of the four rule sections of a spec (`ingress`, `ingressDeny`, `egress`, `egressDeny`).
struct Section<'r> {
    name: &'static str,
    dir: u8,
    deny: bool,
    /// Written in the spec with at least one rule (Cilium: `len(rule.Ingress) > 0`; an empty
    /// list is as if it were not there): the selected endpoints enforce this direction.
    present: bool,
    peers: Vec<Peers<'r>>,
}

fn sections(spec: &cnp::Rule) -> [Section<'_>; 4] {
    let section = |name, dir, deny, present, peers| Section {
        name,
        dir,
        deny,
        present,
        peers,
    };
    [
        section(
            "ingress",
            DIR_INGRESS,
            false,
            spec.ingress.as_ref().is_some_and(|v| !v.is_empty()),
            ingress_peers(spec.ingress.as_deref()),
        ),
        section(
            "ingressDeny",
            DIR_INGRESS,
            true,
            spec.ingress_deny.as_ref().is_some_and(|v| !v.is_empty()),
            ingress_peers(spec.ingress_deny.as_deref()),
        ),
        section(
            "egress",
            DIR_EGRESS,
            false,
            spec.egress.as_ref().is_some_and(|v| !v.is_empty()),
            egress_peers(spec.egress.as_deref()),
        ),
        section(
            "egressDeny",
            DIR_EGRESS,
            true,
            spec.egress_deny.as_ref().is_some_and(|v| !v.is_empty()),
            egress_peers(spec.egress_deny.as_deref()),
        ),
    ]
}

fn ingress_peers(rules: Option<&[cnp::IngressRule]>) -> Vec<Peers<'_>> {
    rules
        .unwrap_or_default()
        .iter()
        .map(|r| Peers {
            endpoints: r.from_endpoints.as_ref(),
            entities: r.from_entities.as_ref(),
            cidr: r.from_cidr.as_ref(),
            cidr_set: r.from_cidr_set.as_ref(),
            ports: r.to_ports.as_ref(),
        })
        .collect()
}

fn egress_peers(rules: Option<&[cnp::EgressRule]>) -> Vec<Peers<'_>> {
    rules
        .unwrap_or_default()
        .iter()
        .map(|r| Peers {
            endpoints: r.to_endpoints.as_ref(),
            entities: r.to_entities.as_ref(),
            cidr: r.to_cidr.as_ref(),
            cidr_set: r.to_cidr_set.as_ref(),
            ports: r.to_ports.as_ref(),
        })
        .collect()
}

/// `10.0.0.0/8`, `fd00::/64` or a bare address (host prefix). Host bits are cleared, as Go's
/// `net.ParseCIDR` (Cilium) does: `10.1.2.3/16` is `10.1.0.0/16`.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = a.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match p {
        Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((network(addr, prefix), prefix))
}

/// `addr` with the bits after the first `prefix` cleared.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(a) & mask).to_be_bytes())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(a) & mask).to_be_bytes())
        }
    }
}

/// Whether the prefix `inner` lies inside `outer` (or is it). Different families never nest.
pub fn cidr_contains(outer: (IpAddr, u8), inner: (IpAddr, u8)) -> bool {
    outer.0.is_ipv4() == inner.0.is_ipv4()
        && outer.1 <= inner.1
        && network(inner.0, outer.1) == network(outer.0, outer.1)
}

/// Whether a CIDR peer (`cidr` with its `except` prefixes) selects the CIDR identity of
/// `inner`: as Cilium's `cidr:` labels, every identity whose prefix lies inside the CIDR and
/// inside none of the excepts.
pub fn cidr_selects(cidr: (IpAddr, u8), excepts: &[(IpAddr, u8)], inner: (IpAddr, u8)) -> bool {
    cidr_contains(cidr, inner) && !excepts.iter().any(|e| cidr_contains(*e, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        Config::parse(Path::new("strait.yaml"), yaml).expect("config")
    }

    const BASE: &str = "listeners:\n  - name: l7\n    address: 127.0.0.1:15001\n    protocol: http\n    transparent: true\nendpoints:\n  - name: client\n    interface: lxc-c\n    addresses: [10.200.0.2]\n    labels: {app: client}\n  - name: server\n    interface: lxc-s\n    addresses: [10.200.0.3]\n    labels: {app: server}\n  - name: server2\n    interface: lxc-s2\n    addresses: [10.200.0.4]\n    labels: {app: server}\n";

    const POLICY: &str = r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
spec:
  endpointSelector:
    matchLabels: {app: server}
  ingress:
    - fromEndpoints:
        - matchLabels: {"k8s:app": client}
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules:
            http: [{method: GET}]
        - ports: [{port: "8080", protocol: TCP}]
  ingressDeny:
    - fromEntities: [world]
"#;

    #[test]
    fn same_labels_same_identity() {
        let c = cfg(BASE);
        let ids = Identities::from_endpoints(&c.endpoints);
        let a = ids.of_addr("10.200.0.3".parse().unwrap_or(IpAddr::from([0; 4])));
        let b = ids.of_addr("10.200.0.4".parse().unwrap_or(IpAddr::from([0; 4])));
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(
            a,
            ids.of_addr("10.200.0.2".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        assert!(a.is_some_and(|a| a >= IDENTITY_FIRST_LOCAL));
    }

    #[test]
    fn compiles_l4_l7_and_deny() {
        let c = cfg(BASE);
        let ids = Identities::from_endpoints(&c.endpoints);
        let pols = parse(Path::new("p.yaml"), POLICY).expect("policy");
        let st = compile(&c, &ids, &pols, &[]).expect("compile");
        let client = ids
            .of_labels(&[("app".into(), "client".into())].into())
            .unwrap_or(0);
        let server = ids
            .of_labels(&[("app".into(), "server".into())].into())
            .unwrap_or(0);
        let get = |k: PolicyKeyOrd| st.policy.get(&k).copied();
        let e80 = get(PolicyKeyOrd(server, client, 80, PROTO_TCP, DIR_INGRESS));
        assert_eq!(
            e80.map(|e| (e.action, e.proxy_port)),
            Some((ACTION_REDIRECT, 15001))
        );
        let e8080 = get(PolicyKeyOrd(server, client, 8080, PROTO_TCP, DIR_INGRESS));
        assert_eq!(e8080.map(|e| e.action), Some(ACTION_ALLOW));
        let w = get(PolicyKeyOrd(server, IDENTITY_WORLD, 0, 0, DIR_INGRESS));
        assert_eq!(w.map(|e| e.action), Some(ACTION_DENY));
        let flags: Vec<u32> = st.endpoints.iter().map(|(_, _, f)| *f).collect();
        assert_eq!(flags, vec![0, EP_ENFORCE_INGRESS, EP_ENFORCE_INGRESS]);
    }

    /// CIDR peers nest as Cilium's `cidr:` labels do: a CIDR selects the identities of the more
    /// specific CIDRs other rules name, but not those inside one of its excepts; an except a
    /// rule names keeps that rule's identity in the ipcache (one entry per prefix), and host
    /// bits are cleared. The L7 filter's sets agree with the policy map.
    #[test]
    fn cidr_peers_nest_as_in_cilium() {
        let c = cfg(BASE);
        let ids = Identities::from_endpoints(&c.endpoints);
        let server = ids
            .of_labels(&[("app".into(), "server".into())].into())
            .unwrap_or(0);
        let head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: n\nspec:\n  endpointSelector:\n    matchLabels: {app: server}\n  ingress:\n";
        let port = |p: u16| {
            format!(
                "      toPorts: [{{ports: [{{port: \"{p}\", protocol: TCP}}], rules: {{http: [{{method: GET}}]}}}}]\n"
            )
        };
        // The except comes first, so its prefix is seen before the rule that names it.
        // 10.9.0.0/16 is an except no rule names; 0.0.0.0/0 takes in `world` too.
        let body = format!(
            "    - fromCIDRSet: [{{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]\n{}\
             \x20   - fromCIDR: [10.1.0.0/16]\n{}\
             \x20   - fromCIDR: [10.2.3.4/16]\n{}\
             \x20   - fromCIDRSet: [{{cidr: 10.0.0.0/8, except: [10.9.0.0/16]}}]\n{}\
             \x20   - fromCIDR: [0.0.0.0/0]\n{}",
            port(80),
            port(81),
            port(82),
            port(83),
            port(84)
        );
        let pols = parse(Path::new("p.yaml"), &format!("{head}{body}")).expect("policy");
        let cidrs = cidr_identities(&pols);
        let id = |a: [u8; 4], p: u8| cidrs.get(&(IpAddr::from(a), p)).copied().unwrap_or(0);
        let (wide, excepted, inner) = (
            id([10, 0, 0, 0], 8),
            id([10, 1, 0, 0], 16),
            id([10, 2, 0, 0], 16),
        );
        assert!(
            [wide, excepted, inner]
                .iter()
                .all(|i| *i >= IDENTITY_FIRST_CIDR),
            "{cidrs:?}"
        );
        let st = compile(&c, &ids, &pols, &[]).expect("compile");
        let allows = |remote: u32, dport: u16| {
            st.policy
                .get(&PolicyKeyOrd(server, remote, dport, PROTO_TCP, DIR_INGRESS))
                .is_some_and(|e| e.action == ACTION_REDIRECT)
        };
        // 10.0.0.0/8 except 10.1.0.0/16: its own identity and 10.2.0.0/16's, not 10.1's.
        assert!(allows(wide, 80) && allows(inner, 80) && !allows(excepted, 80));
        // The narrower rules select only their own prefix.
        assert!(allows(excepted, 81) && !allows(wide, 81) && !allows(inner, 81));
        assert!(allows(inner, 82) && !allows(wide, 82) && !allows(excepted, 82));
        // An except no rule names has an identity of its own: the other CIDRs containing it
        // still select it (port 80's), its own rule does not.
        let nine = id([10, 9, 0, 0], 16);
        assert!(nine >= IDENTITY_FIRST_CIDR, "{cidrs:?}");
        assert!(allows(nine, 80) && !allows(nine, 83) && allows(excepted, 83));
        // 0.0.0.0/0: world and every IPv4 CIDR identity.
        for remote in [IDENTITY_WORLD, wide, excepted, inner, nine] {
            assert!(allows(remote, 84), "{remote}");
        }
        assert!(!allows(IDENTITY_WORLD, 80));
        // One ipcache entry per prefix, with the CIDR's identity (not `world` from the except).
        let mut entries: Vec<_> = st
            .ipcache
            .iter()
            .map(|e| (e.addr, e.prefix, e.identity))
            .collect();
        entries.sort();
        assert_eq!(
            entries,
            [
                (IpAddr::from([10, 0, 0, 0]), 8, wide),
                (IpAddr::from([10, 1, 0, 0]), 16, excepted),
                (IpAddr::from([10, 2, 0, 0]), 16, inner),
                (IpAddr::from([10, 9, 0, 0]), 16, nine),
            ]
        );
        // The transparent listener's L7 sets judge the same peers the same way.
        let l7 = l7::filter_config_transparent::<l7::RuleConfig>(&pols, &ids);
        let has_set = |src: u32, port: u16| {
            l7.sets.iter().any(|s| {
                s.source_identity == Some(u64::from(src))
                    && s.port == Some(port)
                    && s.directions.iter().any(|d| d.deny.is_none())
            })
        };
        for (src, port, want) in [
            (wide, 80, true),
            (inner, 80, true),
            (excepted, 80, false),
            (excepted, 81, true),
            (inner, 81, false),
            (nine, 80, true),
            (nine, 83, false),
            (IDENTITY_WORLD, 84, true),
            (IDENTITY_WORLD, 80, false),
        ] {
            assert_eq!(
                has_set(src, port),
                want,
                "source {src}, port {port}: {:?}",
                l7.sets
            );
        }
        // A peer address lands on the longest prefix.
        ids.set_ipcache(&st.ipcache);
        let peer = |s: &str| ids.of_peer(s.parse().unwrap_or(IpAddr::from([0; 4])));
        assert_eq!(peer("10.1.9.9"), Some(excepted));
        assert_eq!(peer("10.2.9.9"), Some(inner));
        assert_eq!(peer("10.3.9.9"), Some(wide));
        assert_eq!(peer("11.0.0.1"), Some(IDENTITY_WORLD));
        assert_eq!(peer("10.9.0.1"), Some(nine));
        // An except outside its CIDR is refused, as Cilium's `CIDRRule.sanitize` does.
        for except in ["10.0.0.0/7", "192.168.0.0/16", "fd00::/64"] {
            let bad = format!(
                "{head}    - fromCIDRSet: [{{cidr: 10.0.0.0/8, except: [\"{except}\"]}}]\n{}",
                port(80)
            );
            let pols = parse(Path::new("p.yaml"), &bad).expect("policy");
            let e = compile(&c, &ids, &pols, &[]).expect_err(except);
            assert!(
                e.to_string().contains("is not inside `10.0.0.0/8`"),
                "{except}: {e}"
            );
        }
        assert_eq!(
            parse_cidr("fd00::1/64"),
            Some(("fd00::".parse().unwrap_or(IpAddr::from([0; 4])), 64))
        );
        assert_eq!(
            parse_cidr("10.1.2.3/0"),
            Some((IpAddr::from([0, 0, 0, 0]), 0))
        );
        assert!(!cidr_contains(
            (IpAddr::from([0; 4]), 0),
            ("::".parse().unwrap_or(IpAddr::from([0; 4])), 0)
        ));
    }

    /// The datapath reads the empty forms as Cilium does: `ingress: [{}]` enforces ingress
    /// and allows nothing; `toPorts: [{}]` adds no port; `ingressDeny: [{}]` denies nothing.
    #[test]
    fn empty_rules_allow_and_deny_nothing() {
        let c = cfg(BASE);
        let ids = Identities::from_endpoints(&c.endpoints);
        let head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: e\nspec:\n  endpointSelector:\n    matchLabels: {app: server}\n";
        for body in [
            "  ingress: [{}]\n",
            "  ingress:\n    - fromEndpoints: [{matchLabels: {app: client}}]\n      toPorts: [{}]\n",
            "  ingress: [{}]\n  ingressDeny: [{}]\n",
        ] {
            let pols = parse(Path::new("p.yaml"), &format!("{head}{body}")).expect("policy");
            let st = compile(&c, &ids, &pols, &[]).expect("compile");
            assert!(st.policy.is_empty(), "{body}: {:?}", st.policy);
            let flags: Vec<u32> = st.endpoints.iter().map(|(_, _, f)| *f).collect();
            assert_eq!(flags, vec![0, EP_ENFORCE_INGRESS, EP_ENFORCE_INGRESS], "{body}");
        }
        // An empty section is as if it were not there.
        let pols = parse(Path::new("p.yaml"), &format!("{head}  ingress: []\n")).expect("policy");
        let st = compile(&c, &ids, &pols, &[]).expect("compile");
        assert!(st.endpoints.iter().all(|(_, _, f)| *f == 0));
    }

    #[test]
    fn unknown_fields_and_missing_listener_are_refused() {
        let bad = POLICY.replace("toPorts", "toPortz");
        let e = parse(Path::new("p.yaml"), &bad).expect_err("unknown field");
        assert!(e.to_string().contains("toPortz"), "{e}");
        let no_l7 = BASE.replace("    transparent: true\n", "    upstream: 127.0.0.1:1\n");
        let c = cfg(&no_l7);
        let ids = Identities::from_endpoints(&c.endpoints);
        let pols = parse(Path::new("p.yaml"), POLICY).expect("policy");
        let e = compile(&c, &ids, &pols, &[]).expect_err("no transparent listener");
        assert!(e.to_string().contains("transparent: true"), "{e}");
    }
}
