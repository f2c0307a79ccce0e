//! L7 rules of CiliumNetworkPolicy (`toPorts.rules.http` / `.kafka`): checked when a policy file
//! loads, and compiled into the configuration of the built-in HTTP policy filter
//! (`filters/http-policy`), which strait puts first in the chain of every listener with a
//! `policy:`.
//!
//! Which rules apply to a connection follows Cilium: a policy whose `endpointSelector` selects
//! the server and that has `ingress` (or `ingressDeny`) enforces ingress at the server; one
//! selecting the client with `egress` enforces egress at the client. In each enforced
//! direction the peer rules matching the other side's labels and the port are collected: any
//! matching deny rule refuses everything; a matching rule without L7 rules allows every request
//! (Cilium's L7 wildcard); otherwise the collected `http` rules are what may pass. No matching
//! rule at all means the pair is not allowed at L3/L4, and every request is refused.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::cnp::{self, HttpRule, KafkaRule, L7Rules, PortRule, Selector};
use datapath_bpf::{DIR_EGRESS, DIR_INGRESS, IDENTITY_HOST, IDENTITY_WORLD};

use super::{
    cidr_contains, cidr_identities, cidr_selects, parse_cidr, port_protocols, sections, Identities,
    Labels, Peers, Policy, IDENTITY_FIRST_CIDR, PROTO_TCP,
};

/// Name of the built-in HTTP policy filter in a listener's chain (and in flow records).
pub const HTTP_POLICY_FILTER: &str = "strait.http-policy";
/// `module:` that names the built-in HTTP policy filter.
pub const HTTP_POLICY_MODULE: &str = "builtin:http-policy";
/// Name of the built-in Kafka policy filter in a listener's chain (and in flow records).
pub const KAFKA_POLICY_FILTER: &str = "strait.kafka-policy";
/// `module:` that names the built-in Kafka policy filter.
pub const KAFKA_POLICY_MODULE: &str = "builtin:kafka-policy";

/// The API keys of Cilium's `role: produce`: Produce, Metadata, ApiVersions.
pub const ROLE_PRODUCE: &[i16] = &[0, 3, 18];
/// The API keys of Cilium's `role: consume`: Fetch, ListOffsets, Metadata, OffsetCommit,
/// OffsetFetch, FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ApiVersions.
pub const ROLE_CONSUME: &[i16] = &[1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18];

/// Largest compiled program of one regular expression; the filter uses the same limit.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Longest Kafka topic name.
const MAX_TOPIC_LEN: usize = 249;

/// The built-in HTTP policy filter's reading of RE2 patterns (Go's literals, ASCII `\d`, `\w`,
/// `\s`, `\b`): one source file for the filter and for this check, so both accept the same
/// patterns.
#[path = "../../../filters/http-policy/src/re2.rs"]
mod re2;

/// Compiles `pattern` to match a whole value, as Cilium's regexes do (and as the filter will,
/// with the same rewrite from RE2). The pattern must be a regex on its own first:
/// `/x)|(.*` is refused, where wrapped it would read as `^(?:/x)|(.*)$` and match everything.
pub fn full_match(pattern: &str) -> Result<regex::Regex, regex::Error> {
    let pattern = &*re2::from_re2(pattern);
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(2 * REGEX_SIZE_LIMIT)
            .build()
    };
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// One problem in a policy document's L7 rules: the field path, a text to find the line by (the
/// offending value), and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub needle: Option<String>,
    pub message: String,
}

/// The specs of a document in the order the compiler numbers them (`spec` first).
pub(super) fn specs(doc: &cnp::Cnp) -> Vec<&cnp::Rule> {
    let mut v: Vec<&cnp::Rule> = doc.spec.iter().collect();
    v.extend(doc.specs.iter());
    v
}

/// Checks a policy document where Cilium would refuse it: label selectors (`In`/`NotIn` need
/// values, `Exists`/`DoesNotExist` take none), one kind of peer per rule, and every L7 rule:
/// regexes compile within the size limit, header and Kafka fields are valid, deny rules carry
/// none, the port is not 0 (every port).
pub fn check(doc: &cnp::Cnp) -> Vec<Problem> {
    let mut out = Vec::new();
    for (si, spec) in specs(doc).into_iter().enumerate() {
        if let Some(sel) = &spec.endpoint_selector {
            check_selector(&format!("spec[{si}].endpointSelector"), sel, &mut out);
        }
        for sec in sections(spec) {
            let (section, deny) = (sec.name, sec.deny);
            let side = if sec.dir == DIR_INGRESS { "from" } else { "to" };
            for (ri, r) in sec.peers.iter().enumerate() {
                let rule = format!("spec[{si}].{section}[{ri}]");
                for (i, sel) in r.endpoints.into_iter().flatten().enumerate() {
                    check_selector(&format!("{rule}.{side}Endpoints[{i}]"), sel, &mut out);
                }
                // Cilium: "combining FromEndpoints and FromCIDR is not supported".
                let kinds: Vec<String> = r.kinds().map(|k| format!("{side}{k}")).collect();
                if let [first, second, ..] = kinds.as_slice() {
                    out.push(Problem {
                        field: rule.clone(),
                        needle: Some(format!("{second}:")),
                        message: format!(
                            "a rule selects peers one way: `{first}` and `{second}` cannot be combined (write two rules)"
                        ),
                    });
                }
                for (pi, pr) in r
                    .ports
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let Some(rules) = &pr.rules else { continue };
                    let field = format!("spec[{si}].{section}[{ri}].toPorts[{pi}].rules");
                    if deny && rules.protocol().is_some() {
                        out.push(Problem {
                            field,
                            needle: None,
                            message: "deny rules cannot carry L7 rules".into(),
                        });
                        continue;
                    }
                    let zero = pr.ports.iter().any(|pp| {
                        port_protocols(pp).is_ok_and(|v| v.iter().any(|&(port, _)| port == 0))
                    });
                    if zero && rules.protocol().is_some() {
                        out.push(Problem {
                            field: format!("spec[{si}].{section}[{ri}].toPorts[{pi}].ports"),
                            needle: None,
                            message: "L7 rules need a port: port 0 (every port) cannot carry them"
                                .into(),
                        });
                    }
                    if rules.has_http() && rules.has_kafka() {
                        out.push(Problem {
                            field: field.clone(),
                            needle: Some("kafka".into()),
                            message: "a port has one L7 protocol: `http` or `kafka`, not both"
                                .into(),
                        });
                    }
                    for (hi, h) in rules.http.iter().flatten().enumerate() {
                        check_http(&format!("{field}.http[{hi}]"), h, &mut out);
                    }
                    for (ki, k) in rules.kafka.iter().flatten().enumerate() {
                        check_kafka(&format!("{field}.kafka[{ki}]"), k, &mut out);
                    }
                }
            }
        }
    }
    out
}

/// A label selector Kubernetes would accept: `In`/`NotIn` with values, `Exists`/
/// `DoesNotExist` without (an empty `NotIn` would select every peer).
fn check_selector(field: &str, sel: &Selector, out: &mut Vec<Problem>) {
    for (i, r) in sel.match_expressions.iter().enumerate() {
        let needs_values = matches!(r.operator, cnp::Operator::In | cnp::Operator::NotIn);
        if needs_values == r.values.is_empty() {
            out.push(Problem {
                field: format!("{field}.matchExpressions[{i}]"),
                needle: Some(r.key.clone()),
                message: format!(
                    "operator {:?} {} values",
                    r.operator,
                    if needs_values { "needs" } else { "takes no" }
                ),
            });
        }
    }
}

fn check_http(field: &str, h: &HttpRule, out: &mut Vec<Problem>) {
    for (name, v) in [("method", &h.method), ("path", &h.path), ("host", &h.host)] {
        if let Some(p) = v.as_deref().filter(|p| !p.is_empty()) {
            if let Err(e) = full_match(p) {
                out.push(Problem {
                    field: format!("{field}.{name}"),
                    needle: Some(p.to_owned()),
                    message: format!("invalid regular expression: {}", one_line(&e.to_string())),
                });
            }
        }
    }
    for (i, hd) in h.headers.iter().enumerate() {
        if parse_header(hd).is_none() {
            out.push(Problem {
                field: format!("{field}.headers[{i}]"),
                needle: Some(hd.clone()),
                message: format!("`{hd}` is not `Name` or `Name: value`"),
            });
        }
    }
    for (i, m) in h.header_matches.iter().enumerate() {
        let f = format!("{field}.headerMatches[{i}]");
        if !valid_header_name(&m.name) {
            out.push(Problem {
                field: format!("{f}.name"),
                needle: Some(m.name.clone()),
                message: format!("`{}` is not an HTTP header name", m.name),
            });
        }
        if m.secret.is_some() {
            out.push(Problem {
                field: format!("{f}.secret"),
                needle: Some("secret".into()),
                message: "secret references are not supported (strait has no Kubernetes API); put the value in `value`".into(),
            });
        }
        if let Some(mm) = &m.mismatch {
            if !matches!(mm.as_str(), "LOG" | "ADD" | "DELETE" | "REPLACE") {
                out.push(Problem {
                    field: format!("{f}.mismatch"),
                    needle: Some(mm.clone()),
                    message: format!("`{mm}` is not one of LOG, ADD, DELETE, REPLACE"),
                });
            }
        }
    }
}

fn check_kafka(field: &str, k: &KafkaRule, out: &mut Vec<Problem>) {
    let mut bad = |sub: &str, needle: &str, message: String| {
        out.push(Problem {
            field: format!("{field}.{sub}"),
            needle: Some(needle.to_owned()),
            message,
        })
    };
    if let Some(role) = &k.role {
        if !matches!(role.to_ascii_lowercase().as_str(), "produce" | "consume") {
            bad(
                "role",
                role,
                format!("`{role}` is not `produce` or `consume`"),
            );
        }
        if k.api_key.is_some() {
            bad(
                "apiKey",
                "apiKey",
                "`role` and `apiKey` are exclusive".into(),
            );
        }
    }
    if let Some(key) = &k.api_key {
        if kafka_api_key(key).is_none() {
            bad(
                "apiKey",
                key,
                format!(
                    "`{key}` is not a Kafka API name (e.g. produce, fetch, metadata) or number"
                ),
            );
        }
    }
    if let Some(v) = &k.api_version {
        if !v.parse::<i16>().is_ok_and(|v| v >= 0) {
            bad(
                "apiVersion",
                v,
                format!("`{v}` is not an API version number"),
            );
        }
    }
    if let Some(t) = &k.topic {
        let ok = !t.is_empty()
            && t.len() <= MAX_TOPIC_LEN
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            bad(
                "topic",
                t,
                format!("`{t}` is not a Kafka topic name (1–{MAX_TOPIC_LEN} of [a-zA-Z0-9._-])"),
            );
        }
    }
}

/// A Kafka API key from a name (Cilium's lower-case names such as `produce`, `offsetcommit`,
/// or Kafka's `OffsetCommit`) or a number.
pub fn kafka_api_key(s: &str) -> Option<i16> {
    if let Ok(n) = s.parse::<i16>() {
        return crate::kafka::api(n).map(|a| a.key);
    }
    let want = s.replace(['-', '_'], "").to_ascii_lowercase();
    // Cilium's name for ListOffsets.
    if want == "offsets" {
        return Some(2);
    }
    crate::kafka::apis()
        .iter()
        .find(|a| a.name.to_ascii_lowercase() == want)
        .map(|a| a.key)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `Name` → (name, None); `Name: value` → (name, Some(value)).
fn parse_header(h: &str) -> Option<(String, Option<String>)> {
    let (name, value) = match h.split_once(':') {
        Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
        None => (h.trim(), None),
    };
    valid_header_name(name).then(|| (name.to_ascii_lowercase(), value))
}

// ---- compilation for the HTTP policy filter ---------------------------------------------

/// How a listener's clients and upstream are identified for policy (explicit listeners).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerPolicy {
    /// Labels assumed for every client of the listener.
    pub client: Labels,
    /// Labels of the upstream (what `endpointSelector`s of ingress policies select).
    pub server: Labels,
    /// Only these policies (by `metadata.name`); empty: every loaded policy.
    pub names: Vec<String>,
}

/// A policy filter's configuration; the filter crates' `Config` read the same JSON. `R` is
/// the rule of the filter's protocol: [`RuleConfig`] (HTTP) or [`KafkaRuleConfig`].
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct FilterConfig<R = RuleConfig> {
    pub sets: Vec<SetConfig<R>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SetConfig<R = RuleConfig> {
    pub source_identity: Option<u64>,
    pub destination_identity: Option<u64>,
    pub port: Option<u16>,
    pub directions: Vec<DirectionConfig<R>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct DirectionConfig<R = RuleConfig> {
    pub name: String,
    pub deny: Option<String>,
    pub allow_all: Option<String>,
    pub rules: Vec<R>,
}

/// One `kafka` rule for the Kafka policy filter: `role` and `apiKey` resolved to API keys
/// (empty: any), the rest as written (absent or empty: any).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KafkaRuleConfig {
    pub name: String,
    pub api_keys: Vec<i16>,
    pub api_version: Option<i16>,
    pub client_id: Option<String>,
    pub topic: Option<String>,
}

/// Which L7 protocol a policy filter enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L7Protocol {
    Http,
    Kafka,
}

/// A protocol's rules of one port rule, named `<port rule>.rules.<protocol>[i]`.
pub trait L7Rule: Sized {
    const PROTOCOL: L7Protocol;
    fn collect(port_rule: &str, l7: &L7Rules, out: &mut Vec<Self>);
}

impl L7Rule for RuleConfig {
    const PROTOCOL: L7Protocol = L7Protocol::Http;
    fn collect(port_rule: &str, l7: &L7Rules, out: &mut Vec<Self>) {
        for (i, h) in l7.http.iter().flatten().enumerate() {
            out.push(http_rule(format!("{port_rule}.rules.http[{i}]"), h));
        }
    }
}

impl L7Rule for KafkaRuleConfig {
    const PROTOCOL: L7Protocol = L7Protocol::Kafka;
    fn collect(port_rule: &str, l7: &L7Rules, out: &mut Vec<Self>) {
        for (i, k) in l7.kafka.iter().flatten().enumerate() {
            out.push(kafka_rule(format!("{port_rule}.rules.kafka[{i}]"), k));
        }
    }
}

fn kafka_rule(name: String, k: &KafkaRule) -> KafkaRuleConfig {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let api_keys = match (k.role.as_deref().map(str::to_ascii_lowercase), &k.api_key) {
        (Some(r), _) if r == "produce" => ROLE_PRODUCE.to_vec(),
        (Some(r), _) if r == "consume" => ROLE_CONSUME.to_vec(),
        (_, Some(key)) if !key.is_empty() => kafka_api_key(key).into_iter().collect(),
        _ => Vec::new(),
    };
    KafkaRuleConfig {
        name,
        api_keys,
        api_version: k.api_version.as_deref().and_then(|v| v.parse().ok()),
        client_id: nonempty(&k.client_id),
        topic: nonempty(&k.topic),
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct RuleConfig {
    pub name: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub headers: Vec<HeaderConfig>,
    pub header_matches: Vec<HeaderMatchConfig>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HeaderConfig {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HeaderMatchConfig {
    pub name: String,
    pub value: String,
    pub mismatch: Option<String>,
}

fn describe(labels: &Labels) -> String {
    if labels.is_empty() {
        return "(no labels)".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The client of a connection as the rules see it.
#[derive(Debug, Clone, Copy)]
enum Remote<'a> {
    /// A local endpoint with these labels.
    Endpoint(&'a Labels),
    /// Not an endpoint (another node's address, the host): its identity (`world`, `host`, or a
    /// CIDR identity with its prefix), as the datapath resolves it.
    Other {
        identity: u32,
        cidr: Option<(IpAddr, u8)>,
    },
}

impl Remote<'_> {
    fn describe(&self) -> String {
        match self {
            Remote::Endpoint(labels) => describe(labels),
            Remote::Other {
                cidr: Some((a, p)), ..
            } => format!("cidr:{a}/{p}"),
            Remote::Other { identity, .. } if *identity == IDENTITY_HOST => "reserved:host".into(),
            Remote::Other { .. } => "reserved:world".into(),
        }
    }
}

/// Whether a rule's peer part selects `remote`, as the datapath's policy map does: CIDR peers
/// and the `world` / `host` entities never select a labelled endpoint; a CIDR selects the
/// addresses that resolve to a CIDR identity inside it and outside its excepts; `world` takes
/// in every CIDR identity.
fn peer_matches(r: &Peers<'_>, remote: Remote<'_>) -> bool {
    if !r.any_peer() {
        // Only `toPorts`: every peer on those ports. Nothing at all (`{}`): no peer, as in
        // Cilium, where `ingress: [{}]` is the default-deny idiom.
        return r.has_ports();
    }
    match remote {
        Remote::Endpoint(labels) => {
            r.endpoints
                .is_some_and(|sels| sels.iter().any(|s: &Selector| s.matches(labels)))
                || r.entities
                    .is_some_and(|es| es.iter().any(|e| e == "all" || e == "cluster"))
        }
        Remote::Other { identity, cidr } => {
            let entity = |e: &String| match e.as_str() {
                "all" => true,
                "world" => identity == IDENTITY_WORLD || identity >= IDENTITY_FIRST_CIDR,
                "host" | "cluster" => identity == IDENTITY_HOST,
                _ => false,
            };
            // As `remotes()`: a CIDR selects the CIDR identities inside it, but none inside
            // one of its excepts; `/0` also selects `world`. An entry `remotes()` would refuse
            // (a CIDR or except that does not parse, an except outside its CIDR) selects
            // nothing: fail closed.
            let selects = |c: &str, except: &[String]| {
                let Some(sel) = parse_cidr(c) else {
                    return false;
                };
                let excepts: Option<Vec<_>> = except
                    .iter()
                    .map(|e| parse_cidr(e).filter(|e| cidr_contains(sel, *e)))
                    .collect();
                let Some(excepts) = excepts else {
                    return false;
                };
                match cidr {
                    Some(inner) => cidr_selects(sel, &excepts, inner),
                    None => sel.1 == 0 && identity == IDENTITY_WORLD,
                }
            };
            r.entities.is_some_and(|es| es.iter().any(entity))
                || r.cidr.is_some_and(|cs| cs.iter().any(|c| selects(c, &[])))
                || r.cidr_set
                    .is_some_and(|cs| cs.iter().any(|c| selects(&c.cidr, &c.except)))
        }
    }
}

/// What the matching port rules of a peer rule say about `port`.
enum PortVerdict<'r> {
    /// The rule does not cover the port.
    Miss,
    /// Allowed without L7 rules.
    AllowAll,
    /// Allowed for requests matching these L7 rules (possibly none of the listener's protocol).
    L7(&'r L7Rules),
}

fn port_verdicts<'r>(ports: Option<&'r Vec<PortRule>>, port: u16) -> Vec<(usize, PortVerdict<'r>)> {
    // No `toPorts` (`None`, also for an empty list): every port. An entry without `ports`
    // covers none.
    let Some(prs) = ports else {
        return vec![(0, PortVerdict::AllowAll)];
    };
    let mut out = Vec::new();
    for (pi, pr) in prs.iter().enumerate() {
        let covers = pr.ports.iter().any(|pp| {
            port_protocols(pp).is_ok_and(|v| {
                v.iter()
                    .any(|&(p, proto)| (p == 0 || p == port) && proto == PROTO_TCP)
            })
        });
        if !covers {
            continue;
        }
        match &pr.rules {
            Some(l7) if l7.protocol().is_some() => out.push((pi, PortVerdict::L7(l7))),
            _ => out.push((pi, PortVerdict::AllowAll)),
        }
    }
    if out.is_empty() {
        out.push((0, PortVerdict::Miss));
    }
    out
}

fn http_rule(name: String, h: &HttpRule) -> RuleConfig {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    RuleConfig {
        name,
        method: nonempty(&h.method),
        path: nonempty(&h.path),
        host: nonempty(&h.host),
        headers: h
            .headers
            .iter()
            .filter_map(|x| parse_header(x))
            .map(|(name, value)| HeaderConfig { name, value })
            .collect(),
        header_matches: h
            .header_matches
            .iter()
            .map(|m| HeaderMatchConfig {
                name: m.name.to_ascii_lowercase(),
                // Empty: a presence check (Cilium's entry without `value`).
                value: m.value.clone().unwrap_or_default(),
                mismatch: m.mismatch.clone(),
            })
            .collect(),
    }
}

/// A policy filter's configuration for an explicit listener whose clients carry `lp.client`
/// labels and whose upstream (port `port`) carries `lp.server` labels.
pub fn filter_config<R: L7Rule>(
    policies: &[Policy],
    lp: &ListenerPolicy,
    port: u16,
) -> FilterConfig<R> {
    let selected: Vec<&Policy> = policies
        .iter()
        .filter(|p| lp.names.is_empty() || lp.names.contains(&p.name))
        .collect();
    FilterConfig {
        sets: vec![SetConfig {
            source_identity: None,
            destination_identity: None,
            port: None,
            directions: directions(&selected, Remote::Endpoint(&lp.client), &lp.server, port),
        }],
    }
}

/// A policy filter's configuration for a transparent listener: one set per (source identity,
/// destination identity, port) that some rule of the filter's protocol covers, in that order
/// (sets for rules without ports last). Destinations are local endpoints; sources are local
/// endpoints and, for connections from other nodes (`datapath.uplinks`), `world`, `host` and
/// the policies' CIDR identities. Connections no set covers — a destination that is not a
/// local endpoint, for instance — are denied by the filter.
pub fn filter_config_transparent<R: L7Rule>(
    policies: &[Policy],
    ids: &Identities,
) -> FilterConfig<R> {
    // Ports that carry rules of the protocol (an entry without `ports` covers none).
    let mut ports = std::collections::BTreeSet::new();
    for p in policies {
        for spec in specs(&p.doc) {
            for sec in sections(spec) {
                for r in &sec.peers {
                    for pr in r.port_rules().map(Vec::as_slice).unwrap_or_default() {
                        let carries = pr.rules.as_ref().is_some_and(|l| match R::PROTOCOL {
                            L7Protocol::Http => l.has_http(),
                            L7Protocol::Kafka => l.has_kafka(),
                        });
                        if !carries {
                            continue;
                        }
                        for pp in &pr.ports {
                            for (port, proto) in port_protocols(pp).unwrap_or_default() {
                                if proto == PROTO_TCP {
                                    ports.insert(port);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let all: Vec<&Policy> = policies.iter().collect();
    let others: Vec<(Remote<'_>, u32)> = [IDENTITY_WORLD, IDENTITY_HOST]
        .into_iter()
        .map(|identity| (identity, None))
        .chain(
            cidr_identities(policies)
                .into_iter()
                .map(|(c, identity)| (identity, Some(c))),
        )
        .map(|(identity, cidr)| (Remote::Other { identity, cidr }, identity))
        .collect();
    let mut sets = Vec::new();
    // Specific ports first: the filter takes the first set that matches.
    for &port in ports.iter().filter(|p| **p != 0).chain(ports.get(&0)) {
        let sources = ids
            .iter()
            .map(|(labels, id)| (Remote::Endpoint(labels), id))
            .chain(others.iter().copied());
        for (src_remote, src) in sources {
            for (dst_labels, dst) in ids.iter() {
                let directions = directions(&all, src_remote, dst_labels, port);
                if directions.is_empty() {
                    continue;
                }
                sets.push(SetConfig {
                    source_identity: Some(u64::from(src)),
                    destination_identity: Some(u64::from(dst)),
                    port: (port != 0).then_some(port),
                    directions,
                });
            }
        }
    }
    FilterConfig { sets }
}

/// The enforced directions (ingress at the server, egress at the client) for requests from
/// `client` to `server` on `port`.
fn directions<R: L7Rule>(
    policies: &[&Policy],
    client: Remote<'_>,
    server: &Labels,
    port: u16,
) -> Vec<DirectionConfig<R>> {
    let mut directions = Vec::new();
    let mut sides = vec![(DIR_INGRESS, server, client)];
    // Egress is enforced at a local client only.
    if let Remote::Endpoint(labels) = client {
        sides.push((DIR_EGRESS, labels, Remote::Endpoint(server)));
    }
    for (dir, local, remote) in sides {
        let mut enforced = false;
        let mut deny: Option<String> = None;
        let mut allow_all: Option<String> = None;
        let mut rules = Vec::new();
        for p in policies {
            for (si, spec) in specs(&p.doc).into_iter().enumerate() {
                if !spec
                    .endpoint_selector
                    .as_ref()
                    .is_some_and(|s| s.matches(local))
                {
                    continue;
                }
                for sec in sections(spec) {
                    if sec.dir != dir {
                        continue;
                    }
                    let (section, is_deny) = (sec.name, sec.deny);
                    enforced |= sec.present;
                    for (ri, r) in sec.peers.iter().enumerate() {
                        if !peer_matches(r, remote) {
                            continue;
                        }
                        for (pi, v) in port_verdicts(r.port_rules(), port) {
                            let name = if r.has_ports() {
                                format!("{}/spec[{si}].{section}[{ri}].toPorts[{pi}]", p.name)
                            } else {
                                format!("{}/spec[{si}].{section}[{ri}]", p.name)
                            };
                            match v {
                                PortVerdict::Miss => {}
                                _ if is_deny => {
                                    deny.get_or_insert(name);
                                }
                                PortVerdict::AllowAll => {
                                    allow_all.get_or_insert(name);
                                }
                                PortVerdict::L7(l7) => R::collect(&name, l7, &mut rules),
                            }
                        }
                    }
                }
            }
        }
        if !enforced {
            continue;
        }
        let side = if dir == DIR_INGRESS {
            "ingress"
        } else {
            "egress"
        };
        let name = format!("{side} of {}", describe(local));
        if deny.is_none() && allow_all.is_none() && rules.is_empty() {
            deny = Some(format!(
                "{name}: no rule allows {} to port {port}",
                remote.describe()
            ));
        }
        directions.push(DirectionConfig {
            name,
            deny,
            allow_all,
            rules,
        });
    }
    directions
}

/// Policy names that `lp.names` asks for but no loaded policy has.
pub fn missing_names<'a>(policies: &[Policy], lp: &'a ListenerPolicy) -> Vec<&'a str> {
    lp.names
        .iter()
        .filter(|n| !policies.iter().any(|p| p.name == **n))
        .map(String::as_str)
        .collect()
}

/// Labels from a YAML mapping of strings (source prefixes such as `k8s:` removed).
pub fn labels(map: &BTreeMap<String, String>) -> Labels {
    map.iter()
        .map(|(k, v)| (cnp::strip_source(k).to_owned(), v.clone()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
