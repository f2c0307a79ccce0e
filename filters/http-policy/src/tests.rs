#![allow(clippy::unwrap_used)]

use serde_json::json;
use strait_sdk::testing::{Harness, TestRequest};

use super::HttpPolicy;

fn rule(name: &str, fields: serde_json::Value) -> serde_json::Value {
    let mut r = json!({ "name": name });
    for (k, v) in fields.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn one_direction(rules: Vec<serde_json::Value>) -> Harness<HttpPolicy> {
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [{"name": "ingress of app=api", "rules": rules}]
    }]});
    Harness::new(cfg.to_string()).unwrap()
}

fn policy(out: &strait_sdk::testing::Outcome) -> String {
    String::from_utf8_lossy(out.set_property(&["strait", "policy"]).unwrap_or_default()).into()
}

#[test]
fn method_path_and_host_are_full_matches() {
    let mut h = one_direction(vec![
        rule("p/r0", json!({"method": "GET", "path": "/public/.*"})),
        rule(
            "p/r1",
            json!({"method": "POST|PUT", "path": "/submit", "host": "api\\.example\\.com(:80)?"}),
        ),
    ]);
    let ok = h.request(TestRequest::get("/public/a?x=1"));
    assert!(ok.allowed());
    assert_eq!(policy(&ok), "p/r0");

    for denied in [
        TestRequest::get("/publicx"),
        TestRequest::get("/private/public/a"),
        TestRequest::post("/public/a"),
        TestRequest::new("GETX", "/public/a"),
        TestRequest::post("/submit").header(":authority", "api.example.com.evil"),
        TestRequest::post("/submit?x").header(":authority", "api.example.com"),
    ] {
        let out = h.request(denied);
        assert_eq!(out.status(), Some(403));
        assert_eq!(out.body_text(), "Access denied\r\n");
        assert!(!out.reached_upstream());
        assert_eq!(policy(&out), "ingress of app=api: no rule matches");
    }
    for host in ["api.example.com", "api.example.com:80"] {
        let out = h.request(TestRequest::put("/submit").header(":authority", host));
        assert!(out.allowed(), "{host}");
        assert_eq!(policy(&out), "p/r1");
    }
}

#[test]
fn first_matching_rule_in_policy_order_is_named() {
    let mut h = one_direction(vec![
        rule("r0", json!({"path": "/a/.*", "method": "DELETE"})),
        rule("r1", json!({"method": "GET"})),
        rule("r2", json!({"path": "/a/b"})),
    ]);
    assert_eq!(policy(&h.request(TestRequest::get("/a/b"))), "r1");
    assert_eq!(policy(&h.request(TestRequest::post("/a/b"))), "r2");
    assert_eq!(policy(&h.request(TestRequest::delete("/a/b"))), "r0");
    assert_eq!(h.request(TestRequest::post("/a/c")).status(), Some(403));
}

/// A value is matched against the header's lines joined with `,` (Envoy since CVE-2020-25017,
/// so Cilium): a second line with another value does not let a request through.
#[test]
fn headers_need_presence_or_exact_value() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"headers": [{"name": "X-Team", "value": null}, {"name": "x-env", "value": "prod"}]}),
    )]);
    let ok = h.request(
        TestRequest::get("/")
            .header("x-team", "")
            .header("x-env", "prod"),
    );
    assert!(ok.allowed());
    for req in [
        TestRequest::get("/")
            .header("x-team", "a")
            .header("x-env", "dev")
            .header("x-env", "prod"),
        TestRequest::get("/")
            .header("x-team", "a")
            .header("x-env", "prod")
            .header("x-env", "dev"),
        TestRequest::get("/").header("x-env", "prod"),
        TestRequest::get("/")
            .header("x-team", "a")
            .header("x-env", "Prod"),
        // Not UTF-8: neither panics nor matches.
        TestRequest::get("/")
            .header("x-team", "a")
            .header("x-env", [0xff, b'p']),
    ] {
        assert_eq!(h.request(req).status(), Some(403));
    }
}

#[test]
fn header_matches_without_mismatch_must_match() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"header_matches": [{"name": "x-token", "value": "s3cret", "mismatch": null}]}),
    )]);
    assert!(h
        .request(TestRequest::get("/").header("x-token", "s3cret"))
        .allowed());
    assert_eq!(
        h.request(TestRequest::get("/").header("x-token", "no"))
            .status(),
        Some(403)
    );
    assert_eq!(h.request(TestRequest::get("/")).status(), Some(403));
    // A second line with the value does not make a wrong one pass (joined: `no,s3cret`).
    assert_eq!(
        h.request(
            TestRequest::get("/")
                .header("x-token", "no")
                .header("x-token", "s3cret")
        )
        .status(),
        Some(403)
    );
}

/// An entry without a value is a presence check (Cilium's `headerMatches` with only `name`).
#[test]
fn header_matches_without_a_value_need_the_header() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"header_matches": [{"name": "x-token", "value": "", "mismatch": null}]}),
    )]);
    assert!(h
        .request(TestRequest::get("/").header("x-token", "abc"))
        .allowed());
    assert_eq!(h.request(TestRequest::get("/")).status(), Some(403));
}

/// A REPLACE rule rewrites a header whose lines joined are not the value, even when one of
/// them is.
#[test]
fn header_match_mismatch_sees_every_line() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"header_matches": [{"name": "x-tenant", "value": "blue", "mismatch": "REPLACE"}]}),
    )]);
    let out = h.request(
        TestRequest::get("/")
            .header("x-tenant", "blue")
            .header("x-tenant", "red"),
    );
    assert!(out.allowed());
    let vals: Vec<&str> = out
        .request_headers()
        .iter()
        .filter(|(k, _)| k == "x-tenant")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(vals, ["blue"]);
}

/// A pattern that is not a regex on its own is refused, though wrapped in `^(?:…)$` it would
/// compile (and match everything).
#[test]
fn patterns_must_stand_alone() {
    assert!(crate::full_match("/x)|(.*").is_err());
    assert!(crate::full_match("/x|/y").is_ok_and(|r| r.is_match(b"/y") && !r.is_match(b"/x/y")));
}

/// `\d`, `\w`, `\s` and `\b` are ASCII, as under Cilium (Go's regexp validates rules, Envoy's
/// RE2 matches them): a rule for `/users/\d+` does not allow Arabic-Indic digits, nor `\w+` a
/// Cyrillic host, on the path set and on single regexes (host) alike.
#[test]
fn perl_classes_are_ascii_as_in_re2() {
    use crate::re2::ascii_perl_classes as ascii;
    for (pattern, want) in [
        (r"/users/\d+", r"/users/[0-9]+"),
        (r"\D\W\S", r"[^0-9][^0-9A-Za-z_][^\t\n\x0C\r\x20]"),
        (r"[\w.-]+", r"[[0-9A-Za-z_].-]+"),
        (r"[^\s]", r"[^[\t\n\x0C\r\x20]]"),
        (r"[a\D]", r"[a[^0-9]]"),
        (r"\bx\B", r"(?-u:\b)x(?-u:\B)"),
        // An escaped backslash followed by `d` is no class.
        (r"\\d", r"\\d"),
        (r"/plain/.*", r"/plain/.*"),
        // Not a regex: left alone for the compiler to refuse.
        (r"(\d", r"(\d"),
    ] {
        assert_eq!(ascii(pattern), want, "{pattern}");
    }
    let mut h = one_direction(vec![
        rule("p/ids", json!({"path": r"/users/\d+"})),
        rule("p/host", json!({"path": "/h", "host": r"\w+\.test"})),
        rule("p/words", json!({"path": r"/w/[\w-]+\s?"})),
    ]);
    for allowed in [
        TestRequest::get("/users/123"),
        TestRequest::get("/h").header(":authority", "api_1.test"),
        TestRequest::get("/w/a-b_c "),
    ] {
        assert!(h.request(allowed).allowed());
    }
    for denied in [
        TestRequest::get("/users/\u{661}\u{662}\u{663}"),
        TestRequest::get("/users/\u{ff11}"),
        TestRequest::get("/h").header(":authority", "\u{430}\u{43f}\u{438}.test"),
        TestRequest::get("/w/caf\u{e9}"),
        TestRequest::get("/w/a\u{a0}"),
    ] {
        assert_eq!(h.request(denied).status(), Some(403));
    }
    assert!(crate::full_match(r"\d+").is_ok_and(|r| !r.is_match("\u{661}".as_bytes())));
    // Classes inside brackets keep their neighbours' meaning.
    let re = crate::full_match(r"[\w.-]+").unwrap();
    assert!(re.is_match(b"a-b.c_d") && !re.is_match(b"a/b"));
    // A class as a range's end is refused, as Go refuses it.
    assert!(crate::full_match(r"[a-\w]").is_err());
    // `(?x)` ignores spaces in the pattern, not in what `\s` matches.
    assert!(crate::full_match(r"(?x) a \s b").is_ok_and(|r| r.is_match(b"a b")));
}

/// Go's `regexp` (which validates Cilium's rules) and RE2 read some characters as literals
/// that Rust's parser takes as operators or refuses. They are escaped before the pattern is
/// compiled, so a policy Cilium takes is taken here too and means what it means there.
#[test]
fn go_literals_are_escaped_for_rust() {
    use crate::re2::go_syntax;
    for (pattern, want) in [
        // `-` after a class in brackets is a literal in Go; a range boundary error in Rust.
        (r"[\w-_]", r"[\w\-_]"),
        (r"[\pL-z]", r"[\pL\-z]"),
        (r"[\p{Greek}-]", r"[\p{Greek}\-]"),
        (r"[[:alpha:]-z]", r"[[:alpha:]\-z]"),
        (r"[a-z0-9._-]+", r"[a-z0-9._\-]+"),
        (r"[^-a]", r"[^\-a]"),
        (r"[!--]", r"[!-\-]"),
        // `[` in brackets opens no nested class in Go; `&&` and `~~` are no set operators.
        (r"[[a]", r"[\[a]"),
        (r"[]a]", r"[\]a]"),
        (r"[a&&b]", r"[a\&\&b]"),
        (r"[a~~b]", r"[a\~\~b]"),
        // A `{` that starts no repetition is a literal in Go.
        (r"/users/{id}", r"/users/\{id}"),
        (r"a{,3}", r"a\{,3}"),
        (r"a{", r"a\{"),
        (r"a{2}b{1,}c{1,3}", r"a{2}b{1,}c{1,3}"),
        // Go takes no leading zeros in a count: `{01}` is text.
        (r"a{01}b{1,02}c{0,1}", r"a\{01}b\{1,02}c{0,1}"),
        // An escaped `<` / `>` is the character in Go, a word boundary in Rust.
        (r"\<a\>[\<]", r"<a>[<]"),
        (r"\p{Greek}{2}\x{41}", r"\p{Greek}{2}\x{41}"),
        // `\Q…\E` quotes, to the end when there is no `\E`.
        (r"\Qa.b*\E+", r"a\.b\*+"),
        (r"x\Q[y", r"x\[y"),
        // Escapes stay as they are; so does what both read alike.
        (r"\[\{\\Q", r"\[\{\\Q"),
        (r"[\w.\-]+/(a|b)?$", r"[\w.\-]+/(a|b)?$"),
        (r"/plain/.*", r"/plain/.*"),
    ] {
        assert_eq!(go_syntax(pattern), want, "{pattern}");
    }
    let cases: [(&str, &[&str], &[&str]); 7] = [
        (r"[\w-_]+", &["a-b_c"], &["a/b"]),
        (r"/users/{id}", &["/users/{id}"], &["/users/7", "/users/"]),
        (r"[a&&b]", &["&", "a", "b"], &["ab"]),
        (r"[[a]", &["[", "a"], &["b"]),
        (r"\Qa.b\E", &["a.b"], &["axb"]),
        (r"x{2}", &["xx"], &["x{2}"]),
        (r"/\<admin", &["/<admin"], &["/admin"]),
    ];
    for (pattern, matching, not) in cases {
        let re = crate::full_match(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        for m in matching {
            assert!(re.is_match(m.as_bytes()), "{pattern} must match {m}");
        }
        for n in not {
            assert!(!re.is_match(n.as_bytes()), "{pattern} must not match {n}");
        }
    }
    // Through the filter: the path set and single regexes (host) alike.
    let mut h = one_direction(vec![rule(
        "p/go",
        json!({"path": r"/v1/{name}/[\w-_]+", "host": r"\Qapi.test\E"}),
    )]);
    let req = |path: &str, host: &str| TestRequest::get(path).header(":authority", host);
    assert!(h.request(req("/v1/{name}/a-b", "api.test")).allowed());
    assert_eq!(h.request(req("/v1/x/a-b", "api.test")).status(), Some(403));
    assert_eq!(
        h.request(req("/v1/{name}/a-b", "apixtest")).status(),
        Some(403)
    );
}

#[test]
fn header_match_mismatch_actions_change_the_request() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"path": "/.*", "header_matches": [
            {"name": "x-add", "value": "added", "mismatch": "ADD"},
            {"name": "x-del", "value": "keep", "mismatch": "DELETE"},
            {"name": "x-rep", "value": "fixed", "mismatch": "REPLACE"},
            {"name": "x-log", "value": "v", "mismatch": "LOG"}
        ]}),
    )]);
    let out = h.request(
        TestRequest::get("/x")
            .header("x-add", "other")
            .header("x-del", "gone")
            .header("x-rep", "wrong")
            .header("x-log", "w"),
    );
    assert!(out.allowed());
    let hs = out.request_headers();
    let vals = |n: &str| -> Vec<&str> {
        hs.iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(vals("x-add"), ["other", "added"]);
    assert!(vals("x-del").is_empty());
    assert_eq!(vals("x-rep"), ["fixed"]);
    assert_eq!(vals("x-log"), ["w"]);
    assert!(h
        .logs()
        .iter()
        .any(|l| l.message.contains("x-log mismatch")));

    // Matching values are left alone.
    let out = h.request(
        TestRequest::get("/x")
            .header("x-add", "added")
            .header("x-del", "keep")
            .header("x-rep", "fixed"),
    );
    let hs = out.request_headers();
    assert_eq!(hs.iter().filter(|(k, _)| k == "x-add").count(), 1);
    assert!(hs.iter().any(|(k, v)| k == "x-del" && v == "keep"));
}

/// As under Cilium, the mismatch actions of every matching rule run, not only those of the
/// rule that decides; rules that do not match (by path, method or a required header) add
/// nothing.
#[test]
fn mismatch_actions_of_every_matching_rule_run() {
    let add = |name: &str| json!([{"name": name, "value": "1", "mismatch": "ADD"}]);
    let mut h = one_direction(vec![
        rule(
            "first",
            json!({"path": "/a.*", "header_matches": add("x-first")}),
        ),
        rule("no-actions", json!({"path": "/ab"})),
        rule(
            "also",
            json!({"path": "/ab", "header_matches": add("x-also")}),
        ),
        rule(
            "any-path",
            json!({"method": "GET", "header_matches": add("x-any")}),
        ),
        rule(
            "other-path",
            json!({"path": "/zz", "header_matches": add("x-other-path")}),
        ),
        rule(
            "other-method",
            json!({"method": "POST", "header_matches": add("x-other-method")}),
        ),
        rule(
            "needs-header",
            json!({"path": "/ab", "headers": [{"name": "x-need"}], "header_matches": add("x-needs")}),
        ),
    ]);
    let out = h.request(TestRequest::get("/ab"));
    assert!(out.allowed());
    assert_eq!(policy(&out), "first");
    let added: Vec<String> = out
        .request_headers()
        .iter()
        .filter(|(k, v)| k.starts_with("x-") && v == "1")
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(added, ["x-first", "x-also", "x-any"]);
}

#[test]
fn grpc_denials_are_permission_denied() {
    let mut h = one_direction(vec![rule(
        "r",
        json!({"method": "POST", "path": "/pkg\\.Greeter/SayHello"}),
    )]);
    assert!(h
        .request(TestRequest::grpc("pkg.Greeter", "SayHello"))
        .allowed());
    let out = h.request(TestRequest::grpc("pkg.Greeter", "Delete"));
    assert_eq!(out.grpc_status(), Some(7));
    assert_eq!(out.status(), Some(200));
    assert_eq!(out.body_text(), "Access denied");
}

#[test]
fn deny_allow_all_and_every_direction() {
    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [
            {"name": "egress of app=web", "allow_all": "p/egress[0]"},
            {"name": "ingress of app=api", "rules": [{"name": "p/ingress[0].http[0]", "path": "/ok"}]}
        ]
    }]});
    let mut h = Harness::<HttpPolicy>::new(cfg.to_string()).unwrap();
    let out = h.request(TestRequest::get("/ok"));
    assert!(out.allowed());
    assert_eq!(policy(&out), "p/egress[0] + p/ingress[0].http[0]");
    assert_eq!(h.request(TestRequest::get("/no")).status(), Some(403));

    let cfg = json!({"sets": [{
        "source_identity": null, "destination_identity": null, "port": null,
        "directions": [{"name": "ingress of app=api", "deny": "p/ingressDeny[0]", "allow_all": "q"}]
    }]});
    let mut h = Harness::<HttpPolicy>::new(cfg.to_string()).unwrap();
    let out = h.request(TestRequest::get("/ok"));
    assert_eq!(out.status(), Some(403));
    assert_eq!(policy(&out), "p/ingressDeny[0]");

    // No direction enforces L7: allowed, nothing named.
    let cfg =
        json!({"sets": [{"source_identity": null, "destination_identity": null, "port": null}]});
    let mut h = Harness::<HttpPolicy>::new(cfg.to_string()).unwrap();
    let out = h.request(TestRequest::get("/anything"));
    assert!(out.allowed());
    assert_eq!(out.set_property(&["strait", "policy"]), None);
}

#[test]
fn sets_are_chosen_by_identity_and_port_and_unknown_connections_are_denied() {
    let cfg = json!({"sets": [
        {"source_identity": 256, "destination_identity": 257, "port": 80,
         "directions": [{"name": "a", "rules": [{"name": "a0", "path": "/a"}]}]},
        {"source_identity": 258, "destination_identity": null, "port": null,
         "directions": [{"name": "b", "rules": [{"name": "b0", "path": "/b"}]}]}
    ]});
    let mut h = Harness::<HttpPolicy>::new(cfg.to_string()).unwrap();
    let conn = |src: u64, dst: &'static str, port: i64| {
        move |r: TestRequest| {
            r.source_identity(src)
                .property(&["strait", "destination_identity"], dst)
                .property_i64(&["destination", "port"], port)
        }
    };
    let a = conn(256, "257", 80);
    assert!(h.request(a(TestRequest::get("/a"))).allowed());
    assert_eq!(h.request(a(TestRequest::get("/b"))).status(), Some(403));
    let b = conn(258, "999", 8080);
    assert!(h.request(b(TestRequest::get("/b"))).allowed());
    let other = conn(256, "257", 81);
    let out = h.request(other(TestRequest::get("/a")));
    assert_eq!(out.status(), Some(403));
    assert_eq!(policy(&out), "no policy covers this connection");
    // No identity at all.
    assert_eq!(h.request(TestRequest::get("/a")).status(), Some(403));
}

#[test]
fn bad_configurations_are_rejected() {
    let bad = |rules: serde_json::Value| {
        let cfg = json!({"sets": [{"source_identity": null, "destination_identity": null, "port": null,
            "directions": [{"name": "d", "rules": rules}]}]});
        Harness::<HttpPolicy>::new(cfg.to_string())
            .err()
            .expect("rejected")
            .message()
            .to_owned()
    };
    let e = bad(json!([{"name": "r", "path": "/a(["}]));
    assert!(e.contains("r: `path`"), "{e}");
    let e = bad(json!([{"name": "r", "method": "(((a{1000}){1000}){1000})"}]));
    assert!(e.contains("r: `method`") && e.contains("size limit"), "{e}");
    let e = bad(json!([{"name": "r", "nope": 1}]));
    assert!(e.contains("nope"), "{e}");
    let e = bad(
        json!([{"name": "r", "header_matches": [{"name": "x", "value": "v", "mismatch": "EXPLODE"}]}]),
    );
    assert!(e.contains("EXPLODE"), "{e}");
    assert!(Harness::<HttpPolicy>::new("").is_err());
}

#[test]
fn a_hundred_rules_pick_the_right_one() {
    let rules: Vec<_> = (0..100)
        .map(|i| {
            rule(
                &format!("r{i}"),
                json!({"method": "GET", "path": format!("/svc{i}/.*")}),
            )
        })
        .collect();
    let mut h = one_direction(rules);
    for i in [0, 42, 99] {
        let out = h.request(TestRequest::get(&format!("/svc{i}/x")));
        assert!(out.allowed());
        assert_eq!(policy(&out), format!("r{i}"));
    }
    assert_eq!(h.request(TestRequest::get("/svc100/x")).status(), Some(403));
}

#[test]
fn plain_word_patterns_are_compared_as_bytes_and_agree_with_the_regex() {
    use super::{full_match, literal_alternatives};
    let words = |p: &str| {
        literal_alternatives(p).map(|w| {
            w.iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(words("GET").unwrap(), ["GET"]);
    assert_eq!(words("GET|HEAD").unwrap(), ["GET", "HEAD"]);
    assert_eq!(words("api\\.example\\.com").unwrap(), ["api.example.com"]);
    assert_eq!(words("svc-1_a:8080").unwrap(), ["svc-1_a:8080"]);
    // Anything with regex meaning stays a regex, and so does an empty alternative (which
    // matches the empty value).
    for p in [
        "GET|", "|GET", "", "G.T", "GE*", "(GET)", "[G]ET", "(?i)get", "\\d", "a\\b", "é", "a b",
        "^GET", "GET$", "a\\",
    ] {
        assert!(words(p).is_none(), "{p:?} must stay a regex");
    }
    // Where the fast path applies it must answer exactly as the full-match regex does.
    let values: &[&[u8]] = &[
        b"GET",
        b"HEAD",
        b"get",
        b"GETX",
        b"XGET",
        b"GET|HEAD",
        b"",
        b"GE",
        b"api.example.com",
        b"apiXexample.com",
        b"api.example.com.",
        b"svc-1_a:8080",
        b"GET\n",
        b"\xffGET",
    ];
    for p in [
        "GET",
        "GET|HEAD",
        "api\\.example\\.com",
        "svc-1_a:8080",
        "HEAD|GET|GET",
    ] {
        let lit = literal_alternatives(p).unwrap();
        let re = full_match(p).unwrap();
        for v in values {
            let fast = lit.iter().any(|w| **w == **v);
            assert_eq!(
                fast,
                re.is_match(v),
                "{p:?} on {:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}

/// The rule that decides is the first in policy order whose every field matches, also when
/// the first rule whose path matches fails on its method or host (then the other path
/// matches are searched): checked against a rule-by-rule evaluation for every combination.
#[test]
fn the_decider_is_the_first_fully_matching_rule_in_policy_order() {
    use super::full_match;
    // (method, path, host); "" leaves the field out.
    let fields = [
        ("POST", "/api/.*", ""),
        ("GET", "/api/v1/.*", "x\\.test"),
        ("GET|HEAD", "/api/.*", ""),
        ("DELETE", "", ""),
        ("GET", "/.*", "y\\.test"),
        ("PUT", "/api/v1/items", ""),
        ("", "/api/v[0-9]+/items", "x\\.test"),
        ("GET", "/(public|static)/.*", ""),
    ];
    let rules: Vec<_> = fields
        .iter()
        .enumerate()
        .map(|(i, (m, p, h))| {
            let mut r = json!({});
            for (k, v) in [("method", m), ("path", p), ("host", h)] {
                if !v.is_empty() {
                    r[k] = json!(v);
                }
            }
            rule(&format!("r{i}"), r)
        })
        .collect();
    let mut h = one_direction(rules);
    let is = |pattern: &str, value: &str| {
        pattern.is_empty() || full_match(pattern).unwrap().is_match(value.as_bytes())
    };
    let mut deciders = std::collections::BTreeSet::new();
    let mut fallbacks = 0;
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"] {
        for path in [
            "/api/v1/items",
            "/api/v2/items",
            "/api/v1/x",
            "/api",
            "/public/a",
            "/x",
            "/",
        ] {
            for host in ["x.test", "y.test", "z.test"] {
                let want = fields
                    .iter()
                    .position(|(m, p, hh)| is(m, method) && is(p, path) && is(hh, host));
                // The first rule whose path matches is not the one that decides.
                let first_path = fields
                    .iter()
                    .position(|(_, p, _)| !p.is_empty() && is(p, path));
                if want.is_some() && first_path.is_some() && want != first_path {
                    fallbacks += 1;
                }
                let out = h.request(TestRequest::new(method, path).header(":authority", host));
                match want {
                    Some(i) => {
                        assert!(out.allowed(), "{method} {host}{path}: want r{i}");
                        assert_eq!(policy(&out), format!("r{i}"), "{method} {host}{path}");
                        deciders.insert(i);
                    }
                    None => assert_eq!(out.status(), Some(403), "{method} {host}{path}"),
                }
            }
        }
    }
    assert_eq!(deciders.len(), fields.len(), "every rule decides somewhere");
    assert!(fallbacks > 10, "{fallbacks}");
}
