//! strait's built-in HTTP/gRPC policy filter.
//!
//! strait compiles the `http` rules of CiliumNetworkPolicy files into this filter's
//! configuration (`proxy/src/policy/l7.rs`) and loads it in front of a listener's own filters.
//! The filter never reads policy YAML itself: it gets the rules that apply to each connection,
//! already selected by endpoint labels and port, and only matches requests against them.
//!
//! # Configuration (JSON, written by strait)
//!
//! ```json
//! {"sets": [{
//!     "source_identity": null, "destination_identity": null, "port": null,
//!     "directions": [{
//!         "name": "ingress of app=backend",
//!         "deny": null,
//!         "allow_all": null,
//!         "rules": [{
//!             "name": "web-policy/spec[0].ingress[0].toPorts[0].rules.http[0]",
//!             "method": "GET", "path": "/public/.*", "host": null,
//!             "headers": [{"name": "x-team", "value": "blue"}],
//!             "header_matches": [{"name": "x-env", "value": "prod", "mismatch": "REPLACE"}]
//!         }]
//!     }]
//! }]}
//! ```
//!
//! - A **set** applies to the connections whose `strait.source_identity`,
//!   `strait.destination_identity` and `destination.port` properties equal its fields (`null`
//!   matches anything). The first matching set decides; a request no set matches is denied.
//! - A set has zero or more **directions** (a policy's ingress at the server, its egress at the
//!   client). The request must pass every one: `deny` (an L3/L4 deny, or no rule allowing the
//!   pair at all) refuses it, `allow_all` (a rule allowing the port without L7 rules) passes it,
//!   otherwise some `rules` entry must match. No direction at all: nothing enforces L7 here.
//! - A **rule** matches when every field it has matches (Cilium's semantics): `method`, `path`
//!   and `host` are regular expressions that must match the whole `:method`, `:path` (with its
//!   query string) and `:authority`; each `headers` entry must be present (with exactly `value`
//!   when given); each `header_matches` entry without `mismatch` must be present with exactly
//!   `value`. A `header_matches` entry *with* `mismatch` never stops the rule from matching: when
//!   the header is absent or differs, every matching rule (not only the one that decides)
//!   applies its action — `LOG` (a log line),
//!   `ADD` (add `value`), `DELETE` (remove the header), `REPLACE` (set it to `value`).
//!
//! Denied requests get Cilium's answer: `403` with body `Access denied`, or for gRPC HTTP 200
//! with `grpc-status: 7` (PERMISSION_DENIED). Every decision sets the `strait.policy` property to
//! the rule(s) that decided, which strait writes into the request's flow record.

mod re2;

use std::cell::RefCell;

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, PatternSet};
use serde::Deserialize;
use strait_sdk::abi::RawHeaders;
use strait_sdk::prelude::*;

/// Largest compiled program of one regular expression (a "regex bomb" is refused, not run).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Cilium's body for denied HTTP requests.
pub const ACCESS_DENIED: &str = "Access denied\r\n";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sets: Vec<SetConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetConfig {
    source_identity: Option<u64>,
    destination_identity: Option<u64>,
    port: Option<u16>,
    #[serde(default)]
    directions: Vec<DirectionConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectionConfig {
    name: String,
    deny: Option<String>,
    allow_all: Option<String>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    name: String,
    method: Option<String>,
    path: Option<String>,
    host: Option<String>,
    #[serde(default)]
    headers: Vec<HeaderConfig>,
    #[serde(default)]
    header_matches: Vec<HeaderMatchConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderConfig {
    name: String,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderMatchConfig {
    name: String,
    #[serde(default)]
    value: String,
    mismatch: Option<Mismatch>,
}

/// What a `headerMatches` entry does when the header is absent or has another value.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mismatch {
    /// Log it; the request goes on unchanged.
    Log,
    /// Add the header with the configured value.
    Add,
    /// Remove the header.
    Delete,
    /// Set the header to the configured value.
    Replace,
}

/// A compiled `method` or `host` pattern. Most are plain words (`GET`, `GET|HEAD`,
/// `api\.example\.com`): those are compared as bytes, without the regex engine's cache lookup
/// and search setup. In the 100-rule bench (benches/README.md, 2026-11-23), the one candidate
/// rule's `GET|HEAD` regex took about 0.15 µs of guest time per request.
enum Pattern {
    /// The whole value must equal one of these.
    Literals(Box<[Box<[u8]>]>),
    Regex(Regex),
}

impl Pattern {
    fn compile(rule: &str, field: &str, pattern: &str) -> Result<Pattern, ConfigError> {
        // Compiled either way: an error names the rule, and a literal is a valid regex too.
        let re = compile_regex(rule, field, pattern)?;
        Ok(match literal_alternatives(pattern) {
            Some(words) => Pattern::Literals(words),
            None => Pattern::Regex(re),
        })
    }

    fn is_match(&self, value: &[u8]) -> bool {
        match self {
            Pattern::Literals(words) => words.iter().any(|w| **w == *value),
            Pattern::Regex(re) => re.is_match(value),
        }
    }
}

/// The words of `pattern` when, as a regex matching a whole value, it means "exactly one of
/// these words": alternatives of ASCII letters, digits, `-`, `_`, `:` and escaped dots (`\.`),
/// none empty. Anything else (classes, repetition, groups, flags, other escapes) is `None` and
/// stays a regex.
pub fn literal_alternatives(pattern: &str) -> Option<Box<[Box<[u8]>]>> {
    pattern
        .split('|')
        .map(|alt| {
            let mut word = Vec::with_capacity(alt.len());
            let mut bytes = alt.bytes();
            while let Some(b) = bytes.next() {
                match b {
                    b'\\' if bytes.next() == Some(b'.') => word.push(b'.'),
                    b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':') => {
                        word.push(b)
                    }
                    _ => return None,
                }
            }
            (!word.is_empty()).then(|| word.into_boxed_slice())
        })
        .collect()
}

/// A compiled rule.
struct Rule {
    name: String,
    method: Option<Pattern>,
    host: Option<Pattern>,
    /// (lower-case name, exact value or presence only)
    headers: Vec<(String, Option<Vec<u8>>)>,
    /// (lower-case name, value, action on mismatch; `None`: must match)
    header_matches: Vec<(String, Vec<u8>, Option<Mismatch>)>,
    /// The rule's own `path` regex, kept only for a rule with mismatch actions: those run for
    /// every matching rule, not only the one that decides (the others are matched in the
    /// direction's path set).
    own_path: Option<Regex>,
}

/// A compiled direction: its rules' paths in one regex set.
struct Direction {
    name: String,
    deny: Option<String>,
    allow_all: Option<String>,
    rules: Vec<Rule>,
    /// Rule indices with a `path`, in the order of `paths`' patterns.
    with_path: Vec<usize>,
    paths: PathSet,
    /// Rule indices without a `path` (they match every path).
    any_path: Vec<usize>,
    /// Rule indices with mismatch actions, in policy order.
    with_actions: Vec<usize>,
}

/// The `path` patterns of a direction's rules. Built as `regex::bytes::RegexSet` builds its
/// sets (same syntax and matching), twice: `first` with leftmost-first priority, which finds
/// the lowest-numbered pattern that matches in one search (every pattern is `^(?:…)$`, so
/// every match starts at 0 and the earliest pattern that can reach the end wins); `all` with
/// every match, only for when that pattern's rule fails on another field. Walking a whole
/// match set cost one step per pattern on every request (about 0.3 µs for 100 rules in the
/// profile). Caches and the match set are kept across requests.
struct PathSet {
    first: meta::Regex,
    all: meta::Regex,
    /// A module instance is single-threaded.
    scratch: RefCell<Scratch>,
}

struct Scratch {
    first: meta::Cache,
    all: meta::Cache,
    set: PatternSet,
}

impl PathSet {
    /// `direction` names the set in an error (each pattern compiled alone first, so what
    /// fails here is the set as a whole: its size).
    fn new(direction: &str, patterns: &[String]) -> Result<PathSet, ConfigError> {
        // `first` reports a match span, which needs the implicit group of each pattern.
        let build = |kind: MatchKind, captures: WhichCaptures| {
            meta::Builder::new()
                .configure(
                    meta::Config::new()
                        .match_kind(kind)
                        .utf8_empty(false)
                        .which_captures(captures)
                        .nfa_size_limit(Some(REGEX_SIZE_LIMIT * patterns.len().max(1)))
                        .hybrid_cache_capacity(2 * REGEX_SIZE_LIMIT),
                )
                .syntax(syntax::Config::new().utf8(false))
                .build_many(patterns)
                .map_err(|e| {
                    ConfigError::new(match e.size_limit() {
                        Some(n) => format!(
                            "{direction}: paths: the rules' paths together exceed the size limit of {n} bytes"
                        ),
                        None => format!("{direction}: paths: {e}"),
                    })
                })
        };
        let first = build(MatchKind::LeftmostFirst, WhichCaptures::Implicit)?;
        let all = build(MatchKind::All, WhichCaptures::None)?;
        let scratch = RefCell::new(Scratch {
            first: first.create_cache(),
            all: all.create_cache(),
            set: PatternSet::new(all.pattern_len()),
        });
        Ok(PathSet {
            first,
            all,
            scratch,
        })
    }

    /// Calls `f` with the index of each pattern matching the whole of `path`, in ascending
    /// order, until `f` returns true.
    fn first(&self, path: &[u8], mut f: impl FnMut(usize) -> bool) {
        let mut scratch = self.scratch.borrow_mut();
        let s = &mut *scratch;
        let input = Input::new(path).anchored(Anchored::Yes);
        let Some(m) = self.first.search_with(&mut s.first, &input) else {
            return;
        };
        let k = m.pattern().as_usize();
        if f(k) {
            return;
        }
        s.set.clear();
        self.all
            .which_overlapping_matches_with(&mut s.all, &input, &mut s.set);
        for pid in s.set.iter().skip_while(|p| p.as_usize() <= k) {
            if f(pid.as_usize()) {
                break;
            }
        }
    }
}

struct Set {
    source_identity: Option<u64>,
    destination_identity: Option<u64>,
    port: Option<u16>,
    directions: Vec<Direction>,
}

/// The filter: the compiled sets of its configuration.
pub struct HttpPolicy {
    sets: Vec<Set>,
    /// Whether any set looks at identities or the port (else the properties are not read).
    keyed: bool,
    denied: Counter,
    allowed: Counter,
}

/// Compiles `pattern` to match a whole value, as Cilium's regexes do (read as RE2 reads them:
/// Go's literals, `\d`, `\w`, `\s`, `\b` in ASCII; `re2.rs`). The pattern must be a
/// regex on its own first: `/x)|(.*` is refused, where wrapped it would read as
/// `^(?:/x)|(.*)$` and match everything.
pub fn full_match(pattern: &str) -> Result<Regex, regex::Error> {
    let pattern = &*re2::from_re2(pattern);
    let build = |p: &str| {
        RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(2 * REGEX_SIZE_LIMIT)
            .build()
    };
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// Whether a header's value is `want`: its field lines joined with `,` first, as Envoy (and so
/// Cilium) matches headers since CVE-2020-25017, so `x: blue` plus `x: red` is `blue,red`.
fn value_is<'a>(mut vals: impl Iterator<Item = &'a [u8]>, want: &[u8]) -> bool {
    let Some(first) = vals.next() else {
        return false;
    };
    let Some(second) = vals.next() else {
        return first == want;
    };
    let mut joined = [first, b",", second].concat();
    for v in vals {
        joined.push(b',');
        joined.extend_from_slice(v);
    }
    joined == want
}

fn compile_regex(rule: &str, field: &str, pattern: &str) -> Result<Regex, ConfigError> {
    full_match(pattern).map_err(|e| ConfigError::new(format!("{rule}: `{field}`: {e}")))
}

fn compile_rule(r: RuleConfig) -> Result<(Rule, Option<String>), ConfigError> {
    let compile = |field: &str, p: &Option<String>| -> Result<Option<Pattern>, ConfigError> {
        match p.as_deref() {
            None | Some("") => Ok(None),
            Some(p) => Pattern::compile(&r.name, field, p).map(Some),
        }
    };
    let method = compile("method", &r.method)?;
    let host = compile("host", &r.host)?;
    // Checked alone first, so an error names the rule rather than the set.
    let own_path = match r.path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(compile_regex(&r.name, "path", p)?),
        None => None,
    };
    let mut headers = Vec::with_capacity(r.headers.len());
    for h in r.headers {
        if h.name.is_empty() {
            return Err(ConfigError::new(format!("{}: empty header name", r.name)));
        }
        headers.push((h.name.to_ascii_lowercase(), h.value.map(String::into_bytes)));
    }
    let mut header_matches = Vec::with_capacity(r.header_matches.len());
    for h in r.header_matches {
        if h.name.is_empty() {
            return Err(ConfigError::new(format!(
                "{}: empty headerMatches name",
                r.name
            )));
        }
        header_matches.push((
            h.name.to_ascii_lowercase(),
            h.value.into_bytes(),
            h.mismatch,
        ));
    }
    let path = r.path.filter(|p| !p.is_empty());
    let mut rule = Rule {
        name: r.name,
        method,
        host,
        headers,
        header_matches,
        own_path,
    };
    if !rule.has_actions() {
        rule.own_path = None;
    }
    Ok((rule, path))
}

fn compile_direction(d: DirectionConfig) -> Result<Direction, ConfigError> {
    let mut rules = Vec::with_capacity(d.rules.len());
    let mut patterns = Vec::new();
    let mut with_path = Vec::new();
    let mut any_path = Vec::new();
    let mut with_actions = Vec::new();
    for (i, r) in d.rules.into_iter().enumerate() {
        let (rule, path) = compile_rule(r)?;
        if rule.has_actions() {
            with_actions.push(i);
        }
        match path {
            Some(p) => {
                patterns.push(format!("^(?:{})$", re2::from_re2(&p)));
                with_path.push(i);
            }
            None => any_path.push(i),
        }
        rules.push(rule);
    }
    let paths = PathSet::new(&d.name, &patterns)?;
    Ok(Direction {
        name: d.name,
        deny: d.deny,
        allow_all: d.allow_all,
        rules,
        with_path,
        paths,
        any_path,
        with_actions,
    })
}

/// The request as the rules see it: pseudo-headers and headers, read in place in the host's
/// serialised map (no allocation).
struct View<'a> {
    method: &'a [u8],
    path: &'a [u8],
    authority: &'a [u8],
    /// All pairs; [`Self::values`] reads the regular headers. strait hands header names over
    /// in lower case (HTTP/2's form; HTTP/1.1 names are normalised), so they are compared as
    /// they are.
    raw: &'a RawHeaders,
}

impl<'a> View<'a> {
    fn read(raw: &'a RawHeaders) -> View<'a> {
        let mut v = View {
            method: b"",
            path: b"",
            authority: b"",
            raw,
        };
        for (k, val) in raw.iter() {
            match k {
                b":method" => v.method = val,
                b":path" => v.path = val,
                b":authority" => v.authority = val,
                _ => {}
            }
        }
        v
    }

    /// The values of regular header `name` (pseudo-headers never match).
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        let raw: &'a RawHeaders = self.raw;
        raw.iter()
            .filter(move |(k, _)| k.first() != Some(&b':') && *k == name.as_bytes())
            .map(|(_, v)| v)
    }
}

/// Whether header `name` is present (`value` `None`: a presence check, as a Cilium
/// `headerMatches` entry without a value) or has the value `value` ([`value_is`]).
fn header_is(v: &View<'_>, name: &str, value: Option<&[u8]>) -> bool {
    match value {
        None => v.values(name).next().is_some(),
        Some(want) => value_is(v.values(name), want),
    }
}

impl Rule {
    fn matches(&self, v: &View<'_>) -> bool {
        if self.method.as_ref().is_some_and(|m| !m.is_match(v.method)) {
            return false;
        }
        if self.host.as_ref().is_some_and(|h| !h.is_match(v.authority)) {
            return false;
        }
        self.headers
            .iter()
            .all(|(n, val)| header_is(v, n, val.as_deref()))
            && self
                .header_matches
                .iter()
                .filter(|(_, _, m)| m.is_none())
                .all(|(n, val, _)| header_is(v, n, (!val.is_empty()).then_some(val)))
    }

    fn has_actions(&self) -> bool {
        self.header_matches.iter().any(|(_, _, m)| m.is_some())
    }

    /// Applies the mismatch actions of this (matching) rule.
    fn apply_mismatches(&self, v: &View<'_>, req: &mut Request<'_>) {
        for (name, value, action) in &self.header_matches {
            let Some(action) = action else { continue };
            if header_is(v, name, (!value.is_empty()).then_some(value)) {
                continue;
            }
            match action {
                Mismatch::Log => strait_sdk::log(
                    Level::Info,
                    &format!("{}: header {name} mismatch (request allowed)", self.name),
                ),
                Mismatch::Add => req.add_header(name, value),
                Mismatch::Delete => req.remove_header(name),
                Mismatch::Replace => req.set_header(name, value),
            }
        }
    }
}

impl Direction {
    /// The first rule (in policy order) that matches.
    fn first_match(&self, v: &View<'_>) -> Option<&Rule> {
        let mut best = self
            .any_path
            .iter()
            .copied()
            .find(|&i| self.rules[i].matches(v));
        // Pattern indices come in ascending order, and so do their rule indices.
        self.paths.first(v.path, |k| {
            let i = self.with_path[k];
            if best.is_some_and(|b| b < i) {
                return true;
            }
            if self.rules[i].matches(v) {
                best = Some(i);
                return true;
            }
            false
        });
        best.map(|i| &self.rules[i])
    }

    /// Applies the mismatch actions of every rule that matches, in policy order: Cilium runs
    /// them for each matching rule, not only the one that decided.
    fn apply_mismatches(&self, v: &View<'_>, req: &mut Request<'_>) {
        for r in self.with_actions.iter().map(|&i| &self.rules[i]) {
            if r.own_path.as_ref().is_none_or(|p| p.is_match(v.path)) && r.matches(v) {
                r.apply_mismatches(v, req);
            }
        }
    }
}

fn deny(req: &mut Request<'_>, why: &str) -> Decision {
    req.set_property(&["strait", "policy"], why);
    if req.is_grpc() {
        Decision::deny_grpc(grpc::PERMISSION_DENIED, "Access denied")
    } else {
        Decision::deny_with(403, ACCESS_DENIED)
    }
}

impl Filter for HttpPolicy {
    fn configure(config: &[u8]) -> Result<Self, ConfigError> {
        let cfg: Config = strait_sdk::config::from_json(config)?;
        let mut sets = Vec::with_capacity(cfg.sets.len());
        for s in cfg.sets {
            let mut directions = Vec::with_capacity(s.directions.len());
            for d in s.directions {
                directions.push(compile_direction(d)?);
            }
            sets.push(Set {
                source_identity: s.source_identity,
                destination_identity: s.destination_identity,
                port: s.port,
                directions,
            });
        }
        let keyed = sets.iter().any(|s| {
            s.source_identity.is_some() || s.destination_identity.is_some() || s.port.is_some()
        });
        Ok(HttpPolicy {
            sets,
            keyed,
            denied: Counter::define("http_policy_denied")?,
            allowed: Counter::define("http_policy_allowed")?,
        })
    }

    fn on_request(&self, req: &mut Request<'_>) -> Decision {
        let set = if self.keyed {
            let id = |name: &str| {
                req.property_string(&["strait", name])
                    .and_then(|s| s.parse::<u64>().ok())
            };
            let (src, dst) = (id("source_identity"), id("destination_identity"));
            let port = req
                .property_i64(&["destination", "port"])
                .and_then(|p| u16::try_from(p).ok());
            self.sets.iter().find(|s| {
                (s.source_identity.is_none() || s.source_identity == src)
                    && (s.destination_identity.is_none() || s.destination_identity == dst)
                    && (s.port.is_none() || s.port == port)
            })
        } else {
            self.sets.first()
        };
        let Some(set) = set else {
            self.denied.increment(1);
            return deny(req, "no policy covers this connection");
        };
        if set.directions.is_empty() {
            return Decision::Allow;
        }
        let raw = req.headers_raw();
        let view = View::read(&raw);
        // What decided, joined with " + " for the flow record. Allocated only when more than
        // one direction decides (a policy at each end of the connection); so is `apply`, only
        // for directions with mismatch actions.
        let mut first: Option<&str> = None;
        let mut joined = String::new();
        let mut apply: Vec<&Direction> = Vec::new();
        for d in &set.directions {
            if let Some(why) = &d.deny {
                self.denied.increment(1);
                return deny(req, why);
            }
            let name = if let Some(rule) = &d.allow_all {
                rule.as_str()
            } else {
                match d.first_match(&view) {
                    Some(rule) => {
                        if !d.with_actions.is_empty() {
                            apply.push(d);
                        }
                        rule.name.as_str()
                    }
                    None => {
                        self.denied.increment(1);
                        return deny(req, &format!("{}: no rule matches", d.name));
                    }
                }
            };
            match first {
                None => first = Some(name),
                Some(f) => {
                    if joined.is_empty() {
                        joined.push_str(f);
                    }
                    joined.push_str(" + ");
                    joined.push_str(name);
                }
            }
        }
        for d in apply {
            d.apply_mismatches(&view, req);
        }
        self.allowed.increment(1);
        let decided = if joined.is_empty() {
            first.unwrap_or_default()
        } else {
            &joined
        };
        req.set_property(&["strait", "policy"], decided);
        Decision::Allow
    }
}

strait_sdk::export_filter!(HttpPolicy, requests_only);

#[cfg(test)]
mod tests;
