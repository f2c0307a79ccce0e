//! CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (`apiVersion: cilium.io/v2`) as written
//! by operators: the part strait understands, everything else refused by name.
//!
//! L3/L4 (selectors, entities, CIDRs, ports) is compiled into the datapath's maps here; the
//! `rules:` of a port (L7) mark the port for redirection to strait's transparent listener.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One YAML document of a policy file.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cnp {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    pub spec: Option<Rule>,
    #[serde(default)]
    pub specs: Vec<Rule>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rule {
    pub endpoint_selector: Option<Selector>,
    pub node_selector: Option<Selector>,
    pub ingress: Option<Vec<IngressRule>>,
    pub ingress_deny: Option<Vec<IngressRule>>,
    pub egress: Option<Vec<EgressRule>>,
    pub egress_deny: Option<Vec<EgressRule>>,
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<serde_yaml::Value>,
}

/// A Kubernetes label selector.
#[derive(Debug, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressRule {
    pub from_endpoints: Option<Vec<Selector>>,
    pub from_entities: Option<Vec<String>>,
    #[serde(rename = "fromCIDR")]
    pub from_cidr: Option<Vec<String>>,
    #[serde(rename = "fromCIDRSet")]
    pub from_cidr_set: Option<Vec<CidrRule>>,
    pub to_ports: Option<Vec<PortRule>>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressRule {
    pub to_endpoints: Option<Vec<Selector>>,
    pub to_entities: Option<Vec<String>>,
    #[serde(rename = "toCIDR")]
    pub to_cidr: Option<Vec<String>>,
    #[serde(rename = "toCIDRSet")]
    pub to_cidr_set: Option<Vec<CidrRule>>,
    pub to_ports: Option<Vec<PortRule>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CidrRule {
    pub cidr: String,
    #[serde(default)]
    pub except: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct PortRule {
    #[serde(default)]
    pub ports: Vec<PortProtocol>,
    pub rules: Option<L7Rules>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortProtocol {
    /// A number as a string ("80") or a number; named ports are not supported.
    pub port: Option<serde_yaml::Value>,
    pub end_port: Option<u16>,
    pub protocol: Option<String>,
}

/// The L7 part of a port rule. Its presence sends the port's traffic to strait; the rules
/// themselves are enforced by the built-in policy filters (`policy::l7`).
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct L7Rules {
    pub http: Option<Vec<HttpRule>>,
    pub kafka: Option<Vec<KafkaRule>>,
}

impl L7Rules {
    /// At least one `http` rule (an empty list is none).
    pub fn has_http(&self) -> bool {
        self.http.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// At least one `kafka` rule (an empty list is none).
    pub fn has_kafka(&self) -> bool {
        self.kafka.as_ref().is_some_and(|r| !r.is_empty())
    }

    /// The proxy protocol these rules need.
    /// Empty lists are no rules (Cilium's `L7Rules.IsEmpty`): the port is a plain L4 allow.
    pub fn protocol(&self) -> Option<&'static str> {
        if self.has_http() {
            Some("http")
        } else if self.has_kafka() {
            Some("kafka")
        } else {
            None
        }
    }
}

/// Cilium's `PortRuleHTTP`: every field present must match.
#[derive(Debug, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpRule {
    /// Regular expression matched against the whole method.
    pub method: Option<String>,
    /// Regular expression matched against the whole path (with its query string).
    pub path: Option<String>,
    /// Regular expression matched against the whole Host / `:authority`.
    pub host: Option<String>,
    /// `Name` (present) or `Name: value` (present with exactly this value).
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub header_matches: Vec<HeaderMatch>,
}

/// Cilium's `HeaderMatch`.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatch {
    pub name: String,
    pub value: Option<String>,
    /// Kubernetes secret references are not supported (strait has no API server).
    pub secret: Option<serde_yaml::Value>,
    /// `LOG`, `ADD`, `DELETE` or `REPLACE`; absent: the header must match.
    pub mismatch: Option<String>,
}

/// Cilium's `PortRuleKafka`.
#[derive(Debug, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KafkaRule {
    /// `produce` or `consume` (exclusive with `apiKey`).
    pub role: Option<String>,
    /// An API name (`produce`, `fetch`, …) or number.
    pub api_key: Option<String>,
    pub api_version: Option<String>,
    #[serde(rename = "clientID")]
    pub client_id: Option<String>,
    pub topic: Option<String>,
}

/// Label keys may carry a source prefix (`k8s:app`, `any:app`); strait's endpoints have one
/// source, so the prefix is dropped for matching.
pub fn strip_source(key: &str) -> &str {
    for p in ["k8s:", "any:", "container:", "reserved:"] {
        if let Some(k) = key.strip_prefix(p) {
            return k;
        }
    }
    key
}

impl Selector {
    /// Whether `labels` satisfy every `matchLabels` pair and `matchExpressions` requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |k: &str| labels.get(strip_source(k));
        self.match_labels
            .iter()
            .all(|(k, v)| get(k).is_some_and(|x| x == v))
            && self.match_expressions.iter().all(|r| {
                let v = get(&r.key);
                match r.operator {
                    Operator::In => v.is_some_and(|x| r.values.contains(x)),
                    Operator::NotIn => !v.is_some_and(|x| r.values.contains(x)),
                    Operator::Exists => v.is_some(),
                    Operator::DoesNotExist => v.is_none(),
                }
            })
    }
}
