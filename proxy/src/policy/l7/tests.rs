use std::path::Path;

use super::*;
use crate::policy::{parse, PolicyError};

fn labels_of(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn errors(src: &str) -> Vec<crate::config::Diagnostic> {
    match parse(Path::new("p.yaml"), src) {
        Err(PolicyError::Invalid(d)) => d,
        other => panic!("expected errors, got {other:?}"),
    }
}

const HEAD: &str = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: api }
spec:
  endpointSelector: { matchLabels: { app: api } }
  ingress:
  - fromEndpoints: [{ matchLabels: { app: web } }]
    toPorts:
    - ports: [{ port: \"80\", protocol: TCP }]
      rules:
";

#[test]
fn invalid_regexes_are_rejected_at_their_line() {
    let src = format!("{HEAD}        http:\n        - method: GET\n          path: \"/a([\"\n");
    let d = errors(&src);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].line, 13);
    assert_eq!(
        d[0].field,
        "spec[0].ingress[0].toPorts[0].rules.http[0].path"
    );
    assert!(
        d[0].message.contains("invalid regular expression"),
        "{}",
        d[0].message
    );

    // A regex bomb: refused by the size limit, not compiled into a huge program.
    let src = format!("{HEAD}        http:\n        - path: \"((a{{100}}){{100}}){{100}}\"\n");
    let d = errors(&src);
    assert!(d[0].message.contains("size limit"), "{}", d[0].message);
}

#[test]
fn unknown_l7_fields_are_rejected_at_their_line() {
    let src = format!("{HEAD}        http:\n        - method: GET\n          pathh: /x\n");
    let d = errors(&src);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].line, d[0].column), (13, 11), "{d:?}");
    assert!(
        d[0].message.contains("unknown field `pathh`"),
        "{}",
        d[0].message
    );

    let src = format!("{HEAD}        dns:\n        - matchName: x\n");
    let d = errors(&src);
    assert!(
        d[0].message.contains("unknown field `dns`"),
        "{}",
        d[0].message
    );
    assert_eq!(d[0].line, 11);
}

#[test]
fn header_and_kafka_fields_are_checked() {
    let src = format!(
        "{HEAD}        http:\n        - headers: [\"X-Ok\", \"bad name: v\"]\n          headerMatches:\n          - {{ name: x, mismatch: EXPLODE }}\n          - {{ name: y, secret: {{ name: s }} }}\n"
    );
    let d = errors(&src);
    let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec[0].ingress[0].toPorts[0].rules.http[0].headers[1]",
            "spec[0].ingress[0].toPorts[0].rules.http[0].headerMatches[0].mismatch",
            "spec[0].ingress[0].toPorts[0].rules.http[0].headerMatches[1].secret",
        ]
    );
    assert_eq!(d[1].line, 14);

    let src = format!(
        "{HEAD}        kafka:\n        - {{ role: write }}\n        - {{ role: produce, apiKey: fetch }}\n        - {{ apiKey: nosuch }}\n        - {{ apiVersion: \"-1\", topic: \"bad topic\" }}\n        - {{ apiKey: offsetcommit, topic: orders }}\n        - {{ apiKey: \"1\" }}\n"
    );
    let d = errors(&src);
    let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec[0].ingress[0].toPorts[0].rules.kafka[0].role",
            "spec[0].ingress[0].toPorts[0].rules.kafka[1].apiKey",
            "spec[0].ingress[0].toPorts[0].rules.kafka[2].apiKey",
            "spec[0].ingress[0].toPorts[0].rules.kafka[3].apiVersion",
            "spec[0].ingress[0].toPorts[0].rules.kafka[3].topic",
        ],
        "{d:?}"
    );
    assert_eq!(kafka_api_key("OffsetCommit"), Some(8));
    assert_eq!(kafka_api_key("produce"), Some(0));
    assert_eq!(kafka_api_key("9999"), None);
}

#[test]
fn deny_rules_cannot_carry_l7() {
    let src = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: d }
spec:
  endpointSelector: {}
  ingressDeny:
  - toPorts:
    - ports: [{ port: \"80\" }]
      rules: { http: [{ method: GET }] }
";
    let d = errors(src);
    assert_eq!(d[0].field, "spec[0].ingressDeny[0].toPorts[0].rules");
}

fn policies(src: &str) -> Vec<Policy> {
    parse(Path::new("p.yaml"), src).unwrap()
}

fn lp(client: &[(&str, &str)], server: &[(&str, &str)]) -> ListenerPolicy {
    ListenerPolicy {
        client: labels_of(client),
        server: labels_of(server),
        names: Vec::new(),
    }
}

const POLICY: &str = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: api-l7 }
spec:
  endpointSelector: { matchLabels: { app: api } }
  ingress:
  - fromEndpoints: [{ matchLabels: { app: web } }]
    toPorts:
    - ports: [{ port: \"80\", protocol: TCP }]
      rules:
        http:
        - { method: GET, path: \"/public/.*\" }
        - method: POST
          path: /submit
          headers: [\"X-Team: blue\"]
          headerMatches: [{ name: X-Env, value: prod, mismatch: REPLACE }]
  - fromEndpoints: [{ matchLabels: { app: admin } }]
    toPorts:
    - ports: [{ port: \"80\" }]
";

#[test]
fn ingress_rules_for_the_client_and_port_are_compiled() {
    let ps = policies(POLICY);
    let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "api")]), 80);
    assert_eq!(c.sets.len(), 1);
    let d = &c.sets[0].directions;
    assert_eq!(d.len(), 1, "only ingress is enforced: {d:?}");
    assert_eq!(d[0].name, "ingress of app=api");
    assert_eq!(
        (d[0].deny.as_deref(), d[0].allow_all.as_deref()),
        (None, None)
    );
    assert_eq!(d[0].rules.len(), 2);
    assert_eq!(
        d[0].rules[0].name,
        "api-l7/spec[0].ingress[0].toPorts[0].rules.http[0]"
    );
    assert_eq!(d[0].rules[1].headers[0].name, "x-team");
    assert_eq!(d[0].rules[1].headers[0].value.as_deref(), Some("blue"));
    assert_eq!(d[0].rules[1].header_matches[0].name, "x-env");
    assert_eq!(
        d[0].rules[1].header_matches[0].mismatch.as_deref(),
        Some("REPLACE")
    );

    // An L4-only rule for this client: every request passes (Cilium's L7 wildcard).
    let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "admin")], &[("app", "api")]), 80);
    assert_eq!(
        c.sets[0].directions[0].allow_all.as_deref(),
        Some("api-l7/spec[0].ingress[1].toPorts[0]")
    );

    // Another client, or another port: not allowed at all.
    for (client, port) in [("other", 80), ("web", 81)] {
        let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", client)], &[("app", "api")]), port);
        let d = &c.sets[0].directions[0];
        assert_eq!(
            d.deny.as_deref(),
            Some(&*format!(
                "ingress of app=api: no rule allows app={client} to port {port}"
            ))
        );
    }

    // A server no policy selects: nothing is enforced.
    let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "db")]), 80);
    assert!(c.sets[0].directions.is_empty());
}

#[test]
fn egress_and_deny_rules_and_policy_names() {
    let src = format!(
        "{POLICY}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{ name: web-egress }}
spec:
  endpointSelector: {{ matchLabels: {{ app: web }} }}
  egress:
  - toEndpoints: [{{ matchLabels: {{ app: api }} }}]
    toPorts:
    - ports: [{{ port: \"80\" }}]
      rules: {{ http: [{{ path: \"/public/a\" }}] }}
  egressDeny:
  - toEndpoints: [{{ matchLabels: {{ app: secret }} }}]
"
    );
    let ps = policies(&src);
    let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "api")]), 80);
    let d = &c.sets[0].directions;
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].name, "egress of app=web");
    assert_eq!(
        d[1].rules[0].name,
        "web-egress/spec[0].egress[0].toPorts[0].rules.http[0]"
    );

    let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "secret")]), 80);
    assert_eq!(
        c.sets[0].directions[0].deny.as_deref(),
        Some("web-egress/spec[0].egressDeny[0]")
    );

    let mut only = lp(&[("app", "web")], &[("app", "api")]);
    only.names = vec!["api-l7".into(), "nope".into()];
    let c = filter_config::<RuleConfig>(&ps, &only, 80);
    assert_eq!(c.sets[0].directions.len(), 1);
    assert_eq!(missing_names(&ps, &only), ["nope"]);
}

#[test]
fn transparent_sets_cover_endpoint_pairs_and_l7_ports() {
    use crate::config::EndpointConfig;
    let ep = |name: &str, app: &str, ip: [u8; 4]| EndpointConfig {
        name: name.into(),
        interface: format!("veth-{name}"),
        netns: format!("ns-{name}"),
        addresses: vec![std::net::IpAddr::from(ip)],
        labels: labels_of(&[("app", app)]),
        splice: true,
    };
    let ids = crate::policy::Identities::from_endpoints(&[
        ep("web", "web", [10, 0, 0, 1]),
        ep("api", "api", [10, 0, 0, 2]),
    ]);
    let (web, api) = (
        ids.of_labels(&labels_of(&[("app", "web")])).unwrap(),
        ids.of_labels(&labels_of(&[("app", "api")])).unwrap(),
    );
    let c = filter_config_transparent::<RuleConfig>(&policies(POLICY), &ids);
    // Port 80 only (the one with http rules); every pair whose server is api is enforced.
    let keys: Vec<_> = c
        .sets
        .iter()
        .map(|s| (s.source_identity, s.destination_identity, s.port))
        .collect();
    assert!(
        keys.contains(&(Some(u64::from(web)), Some(u64::from(api)), Some(80))),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.1 == Some(u64::from(api)) && k.2 == Some(80)),
        "{keys:?}"
    );
    let web_api = c
        .sets
        .iter()
        .find(|s| s.source_identity == Some(u64::from(web)))
        .unwrap();
    assert_eq!(web_api.directions[0].rules.len(), 2);
    // api → api is enforced too (no rule allows it).
    let api_api = c
        .sets
        .iter()
        .find(|s| s.source_identity == Some(u64::from(api)))
        .unwrap();
    assert!(api_api.directions[0].deny.is_some());
}

#[test]
fn kafka_rules_compile_roles_and_api_keys_for_kafka_ports_only() {
    let src = format!(
        "{HEAD}        kafka:\n        - {{ role: produce, topic: orders }}\n        - {{ role: Consume, topic: orders, clientID: billing }}\n        - {{ apiKey: offsets, apiVersion: \"7\" }}\n        - {{ apiKey: \"19\" }}\n"
    );
    let ps = policies(&src);
    let c = filter_config::<KafkaRuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "api")]), 80);
    let d = &c.sets[0].directions;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].name, "ingress of app=api");
    let keys: Vec<_> = d[0].rules.iter().map(|r| r.api_keys.clone()).collect();
    assert_eq!(
        keys,
        vec![
            ROLE_PRODUCE.to_vec(),
            ROLE_CONSUME.to_vec(),
            vec![2],
            vec![19]
        ]
    );
    assert_eq!(d[0].rules[0].topic.as_deref(), Some("orders"));
    assert_eq!(d[0].rules[1].client_id.as_deref(), Some("billing"));
    assert_eq!(d[0].rules[2].api_version, Some(7));
    assert_eq!(
        d[0].rules[3].name,
        "api/spec[0].ingress[0].toPorts[0].rules.kafka[3]"
    );
    // The HTTP filter sees no http rule on that port: nothing it could allow.
    let h = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "api")]), 80);
    assert!(h.sets[0].directions[0].rules.is_empty());
    // Another client: no rule allows it at all.
    let other = filter_config::<KafkaRuleConfig>(&ps, &lp(&[("app", "x")], &[("app", "api")]), 80);
    assert!(other.sets[0].directions[0]
        .deny
        .as_deref()
        .is_some_and(|d| d.contains("no rule allows app=x to port 80")));
}

/// Cilium's empty forms: `ingress: [{}]` is default-deny (a rule with no peers and no ports
/// selects nothing); an empty section is as if absent; `toPorts: [{}]` covers no port;
/// `http: []` is a plain L4 allow.
#[test]
fn empty_rules_mean_what_they_mean_in_cilium() {
    let head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: e }\n\
                spec:\n  endpointSelector: { matchLabels: { app: api } }\n";
    let verdict = |body: &str| {
        let ps = policies(&format!("{head}{body}"));
        let c = filter_config::<RuleConfig>(&ps, &lp(&[("app", "web")], &[("app", "api")]), 80);
        let d = c.sets[0]
            .directions
            .first()
            .map(|d| (d.deny.is_some(), d.allow_all.clone(), d.rules.len()));
        d
    };
    // Default deny, nothing allowed.
    for body in [
        "  ingress: [{}]\n",
        "  ingress:\n  - fromEndpoints: [{ matchLabels: { app: web } }]\n    toPorts: [{}]\n",
        "  ingress:\n  - toPorts: [{ rules: { http: [{ method: GET }] } }]\n",
        // A deny section alone turns default-deny on too (and itself denies nothing).
        "  ingressDeny: [{}]\n  ingress: []\n",
    ] {
        assert_eq!(verdict(body), Some((true, None, 0)), "{body}");
    }
    // Not enforced at all.
    for body in ["  ingress: []\n", "  ingress: []\n  ingressDeny: []\n"] {
        assert_eq!(verdict(body), None, "{body}");
    }
    // `ingressDeny: [{}]` denies nothing; the allow below stands.
    let allow = "  ingress:\n  - fromEndpoints: [{ matchLabels: { app: web } }]\n";
    assert_eq!(
        verdict(&format!("{allow}  ingressDeny: [{{}}]\n")),
        Some((false, Some("e/spec[0].ingress[0]".into()), 0))
    );
    // Peers with an empty `toPorts` list: every port (as no `toPorts`).
    assert_eq!(
        verdict(&format!("{allow}    toPorts: []\n")),
        Some((false, Some("e/spec[0].ingress[0]".into()), 0))
    );
    // `http: []`: no L7 rules, an L4 allow.
    assert_eq!(
        verdict(&format!(
            "{allow}    toPorts: [{{ ports: [{{ port: \"80\" }}], rules: {{ http: [] }} }}]\n"
        )),
        Some((false, Some("e/spec[0].ingress[0].toPorts[0]".into()), 0))
    );
}

#[test]
fn selectors_peers_and_l7_ports_cilium_refuses_are_refused() {
    let head = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: e }\n\
                spec:\n  endpointSelector: { matchLabels: { app: api } }\n";
    for (body, field, says) in [
        (
            "  ingress:\n  - fromEndpoints: [{ matchExpressions: [{ key: team, operator: NotIn }] }]\n",
            "spec[0].ingress[0].fromEndpoints[0].matchExpressions[0]",
            "NotIn needs values",
        ),
        (
            "  egress:\n  - toEndpoints: [{ matchExpressions: [{ key: team, operator: Exists, values: [a] }] }]\n",
            "spec[0].egress[0].toEndpoints[0].matchExpressions[0]",
            "Exists takes no values",
        ),
        (
            "  ingress:\n  - fromEndpoints: [{ matchLabels: { app: web } }]\n    fromCIDR: [10.0.0.0/8]\n",
            "spec[0].ingress[0]",
            "`fromEndpoints` and `fromCIDR` cannot be combined",
        ),
        (
            "  ingress:\n  - toPorts: [{ ports: [{ port: \"0\" }], rules: { http: [{ method: GET }] } }]\n",
            "spec[0].ingress[0].toPorts[0].ports",
            "port 0",
        ),
    ] {
        let e = errors(&format!("{head}{body}"));
        assert!(
            e.iter().any(|d| d.field == field && d.message.contains(says)),
            "{body}: {e:?}"
        );
    }
    // The selector of the spec itself too.
    let e = errors(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: e }\n\
         spec:\n  endpointSelector: { matchExpressions: [{ key: app, operator: In }] }\n",
    );
    assert!(
        e.iter()
            .any(|d| d.field == "spec[0].endpointSelector.matchExpressions[0]"),
        "{e:?}"
    );
}

#[test]
fn patterns_that_do_not_stand_alone_are_refused() {
    assert!(full_match("/x)|(.*").is_err());
    // The filter's ASCII reading of Perl classes and word boundaries applies here too.
    let re = full_match(r"\bapi\b/\d+\s?[\w.]+").unwrap();
    assert!(re.is_match("api/12 a_b.c") && !re.is_match("api/\u{661}"));
    let e = errors(&format!("{HEAD}        http: [{{ path: \"/x)|(.*\" }}]\n"));
    assert!(
        e.iter()
            .any(|d| d.message.contains("invalid regular expression")),
        "{e:?}"
    );
}

/// A policy Cilium takes (its rules validated by Go's `regexp`) is taken here too, read the
/// same way: a `-` after `\w` in brackets, a `{` that repeats nothing, `\Q…\E`.
#[test]
fn patterns_in_go_syntax_are_taken_as_go_reads_them() {
    let src = format!(
        "{HEAD}        http:\n        - path: '/users/{{id}}/[\\w-_]+'\n          host: '\\Qapi.test\\E'\n"
    );
    assert_eq!(policies(&src).len(), 1);
    let re = full_match(r"/users/{id}/[\w-_]+").unwrap();
    assert!(re.is_match("/users/{id}/a-b_c"));
    assert!(!re.is_match("/users/7/a") && !re.is_match("/users/{id}/a/b"));
    let re = full_match(r"\Qapi.test\E").unwrap();
    assert!(re.is_match("api.test") && !re.is_match("apixtest"));
}

/// Connections from other nodes (`datapath.uplinks`) carry the identity the datapath resolves
/// for their address (a policy CIDR's, `world`, `host`): the transparent sets cover those too,
/// with the server's ingress alone (no local client enforces egress), and `world` takes in the
/// CIDR identities as in the policy map.
#[test]
fn transparent_sets_cover_peers_from_other_nodes() {
    use crate::config::EndpointConfig;
    use crate::policy::{cidr_identities, IpcacheEntry, IDENTITY_FIRST_CIDR};
    use datapath_bpf::{IDENTITY_HOST, IDENTITY_WORLD};
    let api_ep = EndpointConfig {
        name: "api".into(),
        interface: "veth-api".into(),
        netns: "ns-api".into(),
        addresses: vec![std::net::IpAddr::from([10, 0, 0, 2])],
        labels: labels_of(&[("app", "api")]),
        splice: true,
    };
    let ids = crate::policy::Identities::from_endpoints(&[api_ep]);
    let api = ids.of_labels(&labels_of(&[("app", "api")])).unwrap();
    let ps = policies(
        "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: api }
spec:
  endpointSelector: { matchLabels: { app: api } }
  ingress:
  - fromCIDRSet: [{ cidr: 192.0.2.0/24, except: [192.0.2.128/25] }]
    toPorts:
    - ports: [{ port: \"80\", protocol: TCP }]
      rules:
        http: [{ method: GET }]
  - fromEntities: [world]
    toPorts:
    - ports: [{ port: \"80\", protocol: TCP }]
      rules:
        http: [{ path: /public }]
",
    );
    let ids_of = |ps: &[Policy]| cidr_identities(ps).into_iter().collect::<Vec<_>>();
    let numbered = ids_of(&ps);
    // The CIDR and its except, each with an identity (as in Cilium).
    assert_eq!(numbered.len(), 2, "{numbered:?}");
    assert_eq!(numbered[0].0, ("192.0.2.0".parse().unwrap(), 24));
    assert_eq!(numbered[1].0, ("192.0.2.128".parse().unwrap(), 25));
    let cidr_id = numbered[0].1;
    assert!(cidr_id >= IDENTITY_FIRST_CIDR);
    // A CIDR's number does not depend on the others: adding one (lower in address order)
    // leaves it as it is.
    let more = policies(&format!(
        "{HEAD}        http: [{{ method: GET }}]\n  - fromCIDR: [10.0.0.0/8, 172.16.0.0/12]\n"
    ));
    let both: Vec<_> = ps.iter().chain(&more).cloned().collect();
    let numbered = ids_of(&both);
    assert_eq!(numbered.len(), 4, "{numbered:?}");
    assert!(numbered.contains(&(("192.0.2.0".parse().unwrap(), 24), cidr_id)));
    let c = filter_config_transparent::<RuleConfig>(&ps, &ids);
    let set = |src: u32| {
        c.sets
            .iter()
            .find(|s| s.source_identity == Some(u64::from(src)))
            .unwrap_or_else(|| panic!("no set for {src}: {:?}", c.sets))
    };
    let from_cidr = set(cidr_id);
    assert_eq!(from_cidr.destination_identity, Some(u64::from(api)));
    assert_eq!(from_cidr.port, Some(80));
    assert_eq!(from_cidr.directions.len(), 1, "ingress only");
    assert_eq!(
        from_cidr.directions[0].rules.len(),
        2,
        "the CIDR's and world's"
    );
    assert_eq!(set(IDENTITY_WORLD).directions[0].rules.len(), 1);
    assert_eq!(
        set(IDENTITY_HOST).directions[0].deny.as_deref(),
        Some("ingress of app=api: no rule allows reserved:host to port 80")
    );

    // The proxy resolves a peer as the datapath does: endpoint, longest ipcache prefix, world.
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    // Without a datapath (no ipcache), a peer that is no endpoint has no identity.
    assert_eq!(ids.of_peer(ip("192.0.2.7")), None);
    assert_eq!(ids.of_peer(ip("10.0.0.2")), Some(api));
    ids.set_ipcache(&[
        IpcacheEntry {
            addr: ip("192.0.2.0"),
            prefix: 24,
            identity: cidr_id,
        },
        IpcacheEntry {
            addr: ip("192.0.2.128"),
            prefix: 25,
            identity: IDENTITY_WORLD,
        },
        IpcacheEntry {
            addr: ip("10.9.9.9"),
            prefix: 32,
            identity: IDENTITY_HOST,
        },
    ]);
    for (peer, want) in [
        ("192.0.2.7", cidr_id),
        ("::ffff:192.0.2.7", cidr_id),
        ("192.0.2.200", IDENTITY_WORLD),
        ("10.9.9.9", IDENTITY_HOST),
        ("10.0.0.2", api),
        ("198.51.100.1", IDENTITY_WORLD),
        ("2001:db8::1", IDENTITY_WORLD),
    ] {
        assert_eq!(ids.of_peer(ip(peer)), Some(want), "{peer}");
    }
}
