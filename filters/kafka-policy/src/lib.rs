//! strait's built-in Kafka policy filter.
//!
//! strait compiles the `kafka` rules of CiliumNetworkPolicy files into this filter's
//! configuration and loads it in front of a `protocol: kafka` listener's own filters. The filter
//! never reads policy YAML itself: it gets the rules that apply to each connection, already
//! selected by endpoint labels and port, and only matches requests against them.
//!
//! # Configuration (JSON, written by strait)
//!
//! ```json
//! {"sets": [{
//!     "source_identity": 123, "destination_identity": 456, "port": 9092,
//!     "directions": [{
//!         "name": "ingress of app=kafka",
//!         "deny": null,
//!         "allow_all": null,
//!         "rules": [{
//!             "name": "pol/spec[0].ingress[0].toPorts[0].rules.kafka[0]",
//!             "api_keys": [0, 3, 18], "api_version": null, "client_id": null,
//!             "topic": "orders"
//!         }]
//!     }]
//! }]}
//! ```
//!
//! - A **set** applies to the connections whose `strait.source_identity`,
//!   `strait.destination_identity` and `destination.port` properties equal its fields (`null`
//!   matches anything). The first matching set decides; a request no set matches is denied.
//! - A set has zero or more **directions** (a policy's ingress at the broker, its egress at the
//!   client). The request must pass every one: `deny` (an L3/L4 deny, or no rule allowing the
//!   pair at all) refuses it, `allow_all` (a rule allowing the port without L7 rules) passes it,
//!   otherwise the `rules` decide. No direction at all: nothing enforces L7 here.
//! - A **rule** matches a request's header when the API key is in `api_keys` (empty: any),
//!   `api_version` is `null` or equal, and `client_id` is `null` or equal to the request's
//!   client id. Its `topic` (`null`: any) then limits the topics, as Cilium's Kafka rules do:
//!   - a header-matching rule without `topic` allows the request, whatever its topics;
//!   - a request naming no topic (ApiVersions, FindCoordinator, JoinGroup, …, or a topic list
//!     that is empty) is allowed by any header-matching rule (Cilium's
//!     `matchNonTopicRequests`);
//!   - a request listing topics is allowed when each of them is the `topic` of some
//!     header-matching rule;
//!   - a request reaching every topic (Metadata with a null list, …) or topics strait cannot
//!     name is allowed only by a rule without `topic`.
//!
//! Denials use error code 0 (strait answers `TOPIC_AUTHORIZATION_FAILED` when the request names
//! topics, `CLUSTER_AUTHORIZATION_FAILED` otherwise) with a reason naming the direction and what
//! failed. Every decision sets the `strait.policy` property, which strait writes into the
//! request's flow record: the rule(s) that allowed it (several joined with ` + `), the `deny`
//! of a denying direction, or the reason.
//!
//! HTTP requests are denied (500): this filter only judges Kafka.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Deserialize;
use strait_sdk::prelude::*;

/// The body of the 500 this filter answers HTTP requests with.
pub const KAFKA_ONLY: &str = "strait.kafka-policy judges Kafka requests only";

const POLICY: &[&str] = &["strait", "policy"];

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
    #[serde(default)]
    api_keys: Vec<i16>,
    api_version: Option<i16>,
    client_id: Option<String>,
    topic: Option<String>,
}

/// FNV-1a: topic lookups hash short strings, need no random keys (none on
/// `wasm32-unknown-unknown`), and the table is fixed by the configuration.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

type TopicMap = HashMap<String, Vec<usize>, BuildHasherDefault<Fnv>>;

/// A compiled rule (its `topic` lives in the direction's topic map).
struct Rule {
    name: String,
    /// Empty: any API key.
    api_keys: Vec<i16>,
    api_version: Option<i16>,
    client_id: Option<String>,
}

impl Rule {
    /// Whether the request header is one this rule is about (topics aside).
    fn header_matches(&self, req: &KafkaRequest<'_>) -> bool {
        (self.api_keys.is_empty() || self.api_keys.contains(&req.api_key()))
            && self.api_version.is_none_or(|v| v == req.api_version())
            && self
                .client_id
                .as_deref()
                .is_none_or(|c| req.client_id() == Some(c))
    }
}

/// A compiled direction: rules without a topic apart, the others by topic.
struct Direction {
    name: String,
    /// (the `deny` to name in `strait.policy`, the reason).
    deny: Option<(String, String)>,
    allow_all: Option<String>,
    rules: Vec<Rule>,
    /// Indices of the rules without `topic`, in policy order.
    topicless: Vec<usize>,
    /// Topic → indices of the rules with that `topic`, in policy order.
    by_topic: TopicMap,
}

/// Why a request was denied.
struct Denial<'a> {
    /// What `strait.policy` names; `None`: the reason.
    policy: Option<&'a str>,
    reason: Cow<'a, str>,
}

impl<'a> Denial<'a> {
    fn because(reason: String) -> Self {
        Denial {
            policy: None,
            reason: Cow::Owned(reason),
        }
    }
}

impl Direction {
    fn first_header_match(&self, req: &KafkaRequest<'_>) -> Option<&Rule> {
        self.rules.iter().find(|r| r.header_matches(req))
    }

    /// Judges `req`; on a pass, appends the deciding rule names to `decided`.
    fn judge<'a>(
        &'a self,
        req: &KafkaRequest<'_>,
        decided: &mut Vec<&'a str>,
    ) -> Result<(), Denial<'a>> {
        if let Some((policy, reason)) = &self.deny {
            return Err(Denial {
                policy: Some(policy),
                reason: Cow::Borrowed(reason),
            });
        }
        if let Some(rule) = &self.allow_all {
            decided.push(rule);
            return Ok(());
        }
        if let Some(&i) = self
            .topicless
            .iter()
            .find(|&&i| self.rules[i].header_matches(req))
        {
            decided.push(&self.rules[i].name);
            return Ok(());
        }
        match req.topics() {
            KafkaTopics::Listed(topics) if !topics.is_empty() => {
                let start = decided.len();
                for topic in topics {
                    let allowing = self.by_topic.get(topic.as_str()).and_then(|candidates| {
                        candidates
                            .iter()
                            .map(|&i| &self.rules[i])
                            .find(|r| r.header_matches(req))
                    });
                    match allowing {
                        Some(rule) => {
                            if !decided[start..].contains(&rule.name.as_str()) {
                                decided.push(&rule.name);
                            }
                        }
                        None => {
                            decided.truncate(start);
                            return Err(self.refuse(req, || {
                                format!(
                                    "{}: topic `{topic}` not allowed for {} (api key {})",
                                    self.name,
                                    req.api_name(),
                                    req.api_key()
                                )
                            }));
                        }
                    }
                }
                Ok(())
            }
            // No topic named: topic rules do not constrain it (Cilium's matchNonTopicRequests).
            KafkaTopics::None | KafkaTopics::Listed(_) => match self.first_header_match(req) {
                Some(rule) => {
                    decided.push(&rule.name);
                    Ok(())
                }
                None => Err(self.no_rule(req)),
            },
            KafkaTopics::All => Err(self.refuse(req, || {
                format!(
                    "{}: {} v{} reaches every topic; only a rule without `topic` allows it",
                    self.name,
                    req.api_name(),
                    req.api_version()
                )
            })),
            KafkaTopics::Unknown => Err(self.refuse(req, || {
                format!(
                    "{}: strait cannot name the topics of {} v{}; only a rule without `topic` \
                     allows it",
                    self.name,
                    req.api_name(),
                    req.api_version()
                )
            })),
        }
    }

    /// A topic-related denial, unless no rule is about this request at all.
    fn refuse<'a>(
        &'a self,
        req: &KafkaRequest<'_>,
        topic_reason: impl FnOnce() -> String,
    ) -> Denial<'a> {
        if self.first_header_match(req).is_none() {
            return self.no_rule(req);
        }
        Denial::because(topic_reason())
    }

    fn no_rule<'a>(&'a self, req: &KafkaRequest<'_>) -> Denial<'a> {
        let client = match req.client_id() {
            Some(c) => format!(" from client id `{c}`"),
            None => String::new(),
        };
        Denial::because(format!(
            "{}: no rule allows {} v{} (api key {}){client}",
            self.name,
            req.api_name(),
            req.api_version(),
            req.api_key()
        ))
    }
}

struct Set {
    source_identity: Option<u64>,
    destination_identity: Option<u64>,
    port: Option<u16>,
    directions: Vec<Direction>,
}

/// The filter: the compiled sets of its configuration.
pub struct KafkaPolicy {
    sets: Vec<Set>,
    /// Whether any set looks at identities or the port (else the properties are not read).
    keyed: bool,
    denied: Counter,
    allowed: Counter,
}

fn compile_rule(r: RuleConfig) -> Result<(Rule, Option<String>), ConfigError> {
    if let Some(k) = r.api_keys.iter().find(|&&k| k < 0) {
        return Err(ConfigError::new(format!(
            "{}: `api_keys`: {k} is not a Kafka API key",
            r.name
        )));
    }
    if let Some(v) = r.api_version.filter(|&v| v < 0) {
        return Err(ConfigError::new(format!(
            "{}: `api_version`: {v} is not a Kafka API version",
            r.name
        )));
    }
    // As in Cilium, an empty `topic` or `clientID` matches anything.
    let topic = r.topic.filter(|t| !t.is_empty());
    let mut api_keys = r.api_keys;
    api_keys.sort_unstable();
    api_keys.dedup();
    Ok((
        Rule {
            name: r.name,
            api_keys,
            api_version: r.api_version,
            client_id: r.client_id.filter(|c| !c.is_empty()),
        },
        topic,
    ))
}

fn compile_direction(d: DirectionConfig) -> Result<Direction, ConfigError> {
    let mut rules = Vec::with_capacity(d.rules.len());
    let mut topicless = Vec::new();
    let mut by_topic = TopicMap::default();
    for (i, r) in d.rules.into_iter().enumerate() {
        let (rule, topic) = compile_rule(r)?;
        match topic {
            Some(t) => by_topic.entry(t).or_default().push(i),
            None => topicless.push(i),
        }
        rules.push(rule);
    }
    let deny = d.deny.map(|policy| {
        // strait's own denials already read as a sentence about the direction.
        let reason = if policy.starts_with(&d.name) {
            policy.clone()
        } else {
            format!("{}: denied by {policy}", d.name)
        };
        (policy, reason)
    });
    Ok(Direction {
        name: d.name,
        deny,
        allow_all: d.allow_all,
        rules,
        topicless,
        by_topic,
    })
}

impl KafkaPolicy {
    fn set_for(&self, req: &KafkaRequest<'_>) -> Option<&Set> {
        if !self.keyed {
            return self.sets.first();
        }
        let (src, dst, port) = (
            req.source_identity(),
            req.destination_identity(),
            req.destination_port(),
        );
        self.sets.iter().find(|s| {
            (s.source_identity.is_none() || s.source_identity == src)
                && (s.destination_identity.is_none() || s.destination_identity == dst)
                && (s.port.is_none() || s.port == port)
        })
    }

    fn deny(&self, req: &mut KafkaRequest<'_>, policy: &str, reason: &str) -> KafkaDecision {
        self.denied.increment(1);
        req.set_property(POLICY, policy);
        KafkaDecision::deny(reason)
    }
}

impl Filter for KafkaPolicy {
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
        Ok(KafkaPolicy {
            sets,
            keyed,
            denied: Counter::define("kafka_policy_denied")?,
            allowed: Counter::define("kafka_policy_allowed")?,
        })
    }

    fn on_request(&self, _req: &mut Request<'_>) -> Decision {
        // strait never puts this filter on an HTTP listener; if it is there, fail closed.
        self.denied.increment(1);
        Decision::deny_with(500, KAFKA_ONLY)
    }

    fn on_kafka_request(&self, req: &mut KafkaRequest<'_>) -> KafkaDecision {
        const NO_SET: &str = "no policy covers this connection";
        let Some(set) = self.set_for(req) else {
            return self.deny(req, NO_SET, NO_SET);
        };
        let mut decided: Vec<&str> = Vec::with_capacity(set.directions.len());
        for d in &set.directions {
            if let Err(denial) = d.judge(req, &mut decided) {
                let policy = denial.policy.unwrap_or(&denial.reason);
                return self.deny(req, policy, &denial.reason);
            }
        }
        self.allowed.increment(1);
        match decided.as_slice() {
            [] => {}
            [one] => req.set_property(POLICY, one),
            many => req.set_property(POLICY, many.join(" + ")),
        }
        KafkaDecision::Allow
    }
}

strait_sdk::export_filter!(KafkaPolicy);

#[cfg(test)]
mod tests;
