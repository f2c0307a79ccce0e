#![allow(clippy::unwrap_used)]

use serde_json::json;
use strait_sdk::testing::{Harness, KafkaOutcome, TestKafkaRequest, TestRequest};
use strait_sdk::KafkaTopics;

use super::KafkaPolicy;

/// The API keys of Cilium's `role: consume`.
const CONSUME: [i16; 11] = [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18];
/// The API keys of Cilium's `role: produce`.
const PRODUCE: [i16; 4] = [0, 3, 18, 22];

const INGRESS: &str = "ingress of app=kafka";

fn rule(name: &str, fields: serde_json::Value) -> serde_json::Value {
    let mut r = json!({ "name": name, "api_keys": [], "api_version": null, "client_id": null, "topic": null });
    for (k, v) in fields.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn one_direction(rules: Vec<serde_json::Value>) -> Harness<KafkaPolicy> {
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [{"name": INGRESS, "deny": null, "allow_all": null, "rules": rules}]
    }]});
    Harness::new(cfg.to_string()).unwrap()
}

fn policy(out: &KafkaOutcome) -> String {
    String::from_utf8_lossy(out.set_property(&["strait", "policy"]).unwrap_or_default()).into()
}

/// Asserts a deny with code 0 and this reason, named as `strait.policy` too.
#[track_caller]
fn assert_denied(out: &KafkaOutcome, reason: &str) {
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert_eq!(out.reason(), Some(reason));
    assert_eq!(policy(out), reason);
}

#[test]
fn produce_is_allowed_on_its_topic_only() {
    let mut h = one_direction(vec![rule(
        "pol/kafka[0]",
        json!({"api_keys": PRODUCE, "topic": "orders"}),
    )]);
    let out = h.kafka(TestKafkaRequest::produce(&["orders"]));
    assert!(out.allowed());
    assert_eq!(policy(&out), "pol/kafka[0]");

    let out = h.kafka(TestKafkaRequest::produce(&["secret"]));
    assert_denied(
        &out,
        "ingress of app=kafka: topic `secret` not allowed for Produce (api key 0)",
    );
    // Topic names are exact: no prefixes, no case folding.
    for t in ["order", "orders2", "Orders"] {
        assert!(h.kafka(TestKafkaRequest::produce(&[t])).denied(), "{t}");
    }
    assert_eq!(h.metric("kafka_policy_allowed"), Some(1));
    assert_eq!(h.metric("kafka_policy_denied"), Some(4));
}

#[test]
fn a_consume_role_cannot_produce() {
    let mut h = one_direction(vec![rule(
        "pol/consume",
        json!({"api_keys": CONSUME, "topic": "orders"}),
    )]);
    for allowed in [
        TestKafkaRequest::fetch(&["orders"]),
        TestKafkaRequest::metadata(&["orders"]),
        TestKafkaRequest::new(8, 8).topics(&["orders"]), // OffsetCommit
        TestKafkaRequest::new(10, 4),                    // FindCoordinator
        TestKafkaRequest::new(11, 9),                    // JoinGroup
        TestKafkaRequest::new(12, 4),                    // Heartbeat
    ] {
        let out = h.kafka(allowed.clone());
        assert!(out.allowed(), "{allowed:?}: {out:?}");
        assert_eq!(policy(&out), "pol/consume");
    }
    assert_denied(
        &h.kafka(TestKafkaRequest::produce(&["orders"])),
        "ingress of app=kafka: no rule allows Produce v9 (api key 0)",
    );
    assert_denied(
        &h.kafka(
            TestKafkaRequest::new(20, 6)
                .topics(&["orders"])
                .client_id("admin"),
        ),
        "ingress of app=kafka: no rule allows DeleteTopics v6 (api key 20) from client id `admin`",
    );
}

#[test]
fn every_listed_topic_must_be_allowed() {
    let mut h = one_direction(vec![
        rule("r/a", json!({"api_keys": [0], "topic": "a"})),
        rule("r/b", json!({"api_keys": [0], "topic": "b"})),
        rule("r/c-fetch", json!({"api_keys": [1], "topic": "c"})),
    ]);
    let out = h.kafka(TestKafkaRequest::produce(&["a", "b", "a2"]));
    assert_denied(
        &out,
        "ingress of app=kafka: topic `a2` not allowed for Produce (api key 0)",
    );
    // `c` is only allowed for Fetch.
    assert_denied(
        &h.kafka(TestKafkaRequest::produce(&["c", "a"])),
        "ingress of app=kafka: topic `c` not allowed for Produce (api key 0)",
    );
    let out = h.kafka(TestKafkaRequest::produce(&["b", "a", "b"]));
    assert!(out.allowed());
    assert_eq!(policy(&out), "r/b + r/a");
    let out = h.kafka(TestKafkaRequest::fetch(&["c"]));
    assert_eq!(policy(&out), "r/c-fetch");
}

#[test]
fn requests_naming_no_topic_pass_topic_rules() {
    let mut h = one_direction(vec![rule(
        "r/orders",
        json!({"api_keys": [0, 3, 18], "topic": "orders"}),
    )]);
    // ApiVersions names no topic; Metadata with an empty list lists none.
    for req in [
        TestKafkaRequest::api_versions(),
        TestKafkaRequest::metadata(&[]),
    ] {
        let out = h.kafka(req);
        assert!(out.allowed(), "{out:?}");
        assert_eq!(policy(&out), "r/orders");
    }
    // But only for the API keys of some rule.
    assert_denied(
        &h.kafka(TestKafkaRequest::new(10, 4)),
        "ingress of app=kafka: no rule allows FindCoordinator v4 (api key 10)",
    );
}

#[test]
fn every_topic_and_unknown_topics_need_a_rule_without_topic() {
    let topics_only = || {
        one_direction(vec![rule(
            "r/orders",
            json!({"api_keys": [1, 3], "topic": "orders"}),
        )])
    };
    let mut h = topics_only();
    assert_denied(
        &h.kafka(TestKafkaRequest::new(3, 12).scope(KafkaTopics::All)),
        "ingress of app=kafka: Metadata v12 reaches every topic; only a rule without `topic` \
         allows it",
    );
    assert_denied(
        &h.kafka(TestKafkaRequest::new(1, 17).scope(KafkaTopics::Unknown)),
        "ingress of app=kafka: strait cannot name the topics of Fetch v17; only a rule without \
         `topic` allows it",
    );
    // Another API: no rule at all, which is the better reason.
    assert_denied(
        &h.kafka(TestKafkaRequest::new(0, 9).scope(KafkaTopics::Unknown)),
        "ingress of app=kafka: no rule allows Produce v9 (api key 0)",
    );

    let mut h = one_direction(vec![
        rule("r/orders", json!({"api_keys": [1, 3], "topic": "orders"})),
        rule("r/any-metadata", json!({"api_keys": [3]})),
    ]);
    let out = h.kafka(TestKafkaRequest::new(3, 12).scope(KafkaTopics::All));
    assert!(out.allowed());
    assert_eq!(policy(&out), "r/any-metadata");
    let out = h.kafka(TestKafkaRequest::new(3, 13).scope(KafkaTopics::Unknown));
    assert_eq!(policy(&out), "r/any-metadata");
    // A rule without topic wins even when an earlier topic rule would allow it too.
    let out = h.kafka(TestKafkaRequest::metadata(&["orders"]));
    assert_eq!(policy(&out), "r/any-metadata");
    assert!(h
        .kafka(TestKafkaRequest::new(1, 17).scope(KafkaTopics::Unknown))
        .denied());
}

#[test]
fn client_id_and_api_version_constrain_rules() {
    let mut h = one_direction(vec![
        rule(
            "r/billing",
            json!({"api_keys": [0], "client_id": "billing", "topic": "invoices"}),
        ),
        rule(
            "r/v7",
            json!({"api_keys": [1], "api_version": 7, "topic": "invoices"}),
        ),
        // Empty strings are wildcards, as in Cilium.
        rule(
            "r/empty",
            json!({"api_keys": [3], "client_id": "", "topic": ""}),
        ),
    ]);
    let produce = || TestKafkaRequest::produce(&["invoices"]);
    assert!(h.kafka(produce().client_id("billing")).allowed());
    for req in [produce(), produce().client_id("billing2")] {
        assert!(h.kafka(req).denied());
    }
    assert_denied(
        &h.kafka(produce().client_id("web")),
        "ingress of app=kafka: no rule allows Produce v9 (api key 0) from client id `web`",
    );
    assert!(h
        .kafka(TestKafkaRequest::fetch(&["invoices"]).api_version(7))
        .allowed());
    assert_denied(
        &h.kafka(TestKafkaRequest::fetch(&["invoices"]).api_version(8)),
        "ingress of app=kafka: no rule allows Fetch v8 (api key 1)",
    );
    let out = h.kafka(TestKafkaRequest::new(3, 12).scope(KafkaTopics::All));
    assert_eq!(policy(&out), "r/empty");
}

#[test]
fn no_api_keys_means_every_api() {
    let mut h = one_direction(vec![rule("r/t", json!({"topic": "t"}))]);
    assert!(h.kafka(TestKafkaRequest::produce(&["t"])).allowed());
    assert!(h
        .kafka(TestKafkaRequest::new(20, 6).topics(&["t"]))
        .allowed());
    assert!(h.kafka(TestKafkaRequest::new(60, 1)).allowed());
    assert!(h.kafka(TestKafkaRequest::produce(&["u"])).denied());
}

#[test]
fn deny_allow_all_and_every_direction() {
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [
            {"name": "egress of app=client", "allow_all": "p/egress[0]"},
            {"name": INGRESS, "rules": [rule("p/ingress[0].kafka[0]", json!({"topic": "ok"}))]}
        ]
    }]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    let out = h.kafka(TestKafkaRequest::produce(&["ok"]));
    assert!(out.allowed());
    assert_eq!(policy(&out), "p/egress[0] + p/ingress[0].kafka[0]");
    assert_denied(
        &h.kafka(TestKafkaRequest::produce(&["no"])),
        "ingress of app=kafka: topic `no` not allowed for Produce (api key 0)",
    );

    // Both directions with rules: each must pass.
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [
            {"name": INGRESS, "rules": [rule("in", json!({"api_keys": [0, 1]}))]},
            {"name": "egress of app=client", "rules": [rule("out", json!({"api_keys": [1]}))]}
        ]
    }]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    assert_eq!(
        policy(&h.kafka(TestKafkaRequest::fetch(&["x"]))),
        "in + out"
    );
    assert_denied(
        &h.kafka(TestKafkaRequest::produce(&["x"])),
        "egress of app=client: no rule allows Produce v9 (api key 0)",
    );

    // A deny direction: named by its `deny`.
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [
            {"name": INGRESS, "deny": "p/ingressDeny[0]", "allow_all": "q"},
            {"name": "egress of app=client",
             "deny": "egress of app=client: no rule allows app=kafka to port 9092"}
        ]
    }]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    let out = h.kafka(TestKafkaRequest::api_versions());
    assert_eq!(out.code(), Some(0));
    assert_eq!(
        out.reason(),
        Some("ingress of app=kafka: denied by p/ingressDeny[0]")
    );
    assert_eq!(policy(&out), "p/ingressDeny[0]");
    let cfg = json!({"sets": [{"directions": [
        {"name": "egress of app=client",
         "deny": "egress of app=client: no rule allows app=kafka to port 9092"}
    ]}]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    assert_denied(
        &h.kafka(TestKafkaRequest::api_versions()),
        "egress of app=client: no rule allows app=kafka to port 9092",
    );

    // No direction enforces L7: allowed, nothing named.
    let cfg =
        json!({"sets": [{"source_identity": null, "destination_identity": null, "port": null}]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    let out = h.kafka(TestKafkaRequest::produce(&["anything"]));
    assert!(out.allowed());
    assert_eq!(out.set_property(&["strait", "policy"]), None);
    assert_eq!(h.metric("kafka_policy_allowed"), Some(1));
}

#[test]
fn sets_are_chosen_by_identity_and_port_and_unknown_connections_are_denied() {
    let cfg = json!({"sets": [
        {"source_identity": 256, "destination_identity": 257, "port": 9092,
         "directions": [{"name": "a", "rules": [rule("a0", json!({"topic": "a"}))]}]},
        {"source_identity": 258, "destination_identity": null, "port": null,
         "directions": [{"name": "b", "rules": [rule("b0", json!({"topic": "b"}))]}]}
    ]});
    let mut h = Harness::<KafkaPolicy>::new(cfg.to_string()).unwrap();
    let conn = |src: u64, dst: u64, port: u16| {
        move |r: TestKafkaRequest| {
            r.source_identity(src)
                .destination_identity(dst)
                .destination_port(port)
        }
    };
    let a = conn(256, 257, 9092);
    assert!(h.kafka(a(TestKafkaRequest::produce(&["a"]))).allowed());
    assert!(h.kafka(a(TestKafkaRequest::produce(&["b"]))).denied());
    let b = conn(258, 999, 19092);
    assert!(h.kafka(b(TestKafkaRequest::produce(&["b"]))).allowed());
    let other = conn(256, 257, 9093);
    assert_denied(
        &h.kafka(other(TestKafkaRequest::produce(&["a"]))),
        "no policy covers this connection",
    );
    // No identity at all.
    assert_denied(
        &h.kafka(TestKafkaRequest::api_versions()),
        "no policy covers this connection",
    );
    // No set at all.
    let mut h = Harness::<KafkaPolicy>::new(r#"{"sets":[]}"#).unwrap();
    assert_denied(
        &h.kafka(TestKafkaRequest::api_versions()),
        "no policy covers this connection",
    );
}

#[test]
fn a_deny_answers_one_request_of_the_connection() {
    let mut h = one_direction(vec![rule("r", json!({"api_keys": [0, 18], "topic": "ok"}))]);
    let outs = h.kafka_connection([
        TestKafkaRequest::api_versions(),
        TestKafkaRequest::produce(&["no"]).correlation_id(2),
        TestKafkaRequest::produce(&["ok"]).correlation_id(3),
    ]);
    let verdicts: Vec<bool> = outs.iter().map(KafkaOutcome::allowed).collect();
    assert_eq!(verdicts, [true, false, true]);
    assert_eq!(policy(&outs[2]), "r");
    assert_eq!(h.live_streams(), 0);
}

#[test]
fn many_rules_and_topics_pick_the_right_rule() {
    let rules: Vec<_> = (0..200)
        .map(|i| {
            rule(
                &format!("r{i}"),
                json!({"api_keys": [0], "topic": format!("t{i}")}),
            )
        })
        .collect();
    let mut h = one_direction(rules);
    for i in [0, 57, 199] {
        let out = h.kafka(TestKafkaRequest::produce(&[&format!("t{i}")]));
        assert_eq!(policy(&out), format!("r{i}"));
    }
    let many: Vec<String> = (0..200).map(|i| format!("t{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let out = h.kafka(TestKafkaRequest::produce(&many));
    assert!(out.allowed());
    assert!(policy(&out).starts_with("r0 + r1 + r2 + "));
    let mut with_bad = many.clone();
    with_bad.push("t200");
    assert!(h.kafka(TestKafkaRequest::produce(&with_bad)).denied());
}

#[test]
fn http_requests_are_refused() {
    let mut h = one_direction(vec![rule("r", json!({}))]);
    let out = h.request(TestRequest::get("/"));
    assert_eq!(out.status(), Some(500));
    assert_eq!(out.body_text(), super::KAFKA_ONLY);
}

#[test]
fn bad_configurations_are_rejected() {
    let bad = |rules: serde_json::Value| {
        let cfg = json!({"sets": [{"source_identity": null, "destination_identity": null, "port": null,
            "directions": [{"name": "d", "rules": rules}]}]});
        Harness::<KafkaPolicy>::new(cfg.to_string())
            .err()
            .expect("rejected")
            .message()
            .to_owned()
    };
    let e = bad(json!([{"name": "r", "nope": 1}]));
    assert!(e.contains("nope"), "{e}");
    let e = bad(json!([{"name": "r", "api_keys": [0, -1]}]));
    assert!(e.contains("r: `api_keys`: -1"), "{e}");
    let e = bad(json!([{"name": "r", "api_version": -2}]));
    assert!(e.contains("r: `api_version`: -2"), "{e}");
    let e = bad(json!([{"name": "r", "api_keys": [40000]}]));
    assert!(e.contains("40000"), "{e}");
    let e = bad(json!([{"name": "r", "topic": 5}]));
    assert!(e.contains("invalid type"), "{e}");
    let e = bad(json!([{"topic": "t"}]));
    assert!(e.contains("name"), "{e}");
    for cfg in [
        "",
        "{",
        r#"{"sets":[{"port":70000}]}"#,
        r#"{"sets":[],"x":1}"#,
    ] {
        assert!(Harness::<KafkaPolicy>::new(cfg).is_err(), "{cfg}");
    }
}
