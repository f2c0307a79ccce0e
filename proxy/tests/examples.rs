//! End-to-end tests of every example filter with its own `strait.yaml` (addresses swapped for
//! ephemeral ones), driven by curl as a user would. Modules come from
//! `scripts/build-filters.sh`; missing modules or curl fail in CI and skip elsewhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Proxy, Upstream};

fn example(dir: &str) -> Option<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let yaml = root.join(dir).join("strait.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let missing: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("module:"))
        .map(|m| m.split('#').next().unwrap().trim().to_owned())
        .filter(|m| !yaml.parent().unwrap().join(m).exists())
        .collect();
    let curl = Command::new("curl").arg("--version").output().is_ok();
    if missing.is_empty() && curl {
        return Some((yaml, text));
    }
    let why = format!(
        "{dir}: missing {missing:?}{} (run scripts/build-filters.sh and scripts/setup-e2e.sh)",
        if curl { "" } else { " and curl" }
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    println!("SKIPPED: {why}");
    None
}

/// Starts strait from an example config with its addresses replaced.
async fn start(yaml: &Path, text: &str, up: &Upstream) -> Proxy {
    let text = text
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0")
        .replace("127.0.0.1:9000", &up.addr.to_string())
        .replace("127.0.0.1:9100", &up.addr.to_string());
    // Parsed as if it were the example file, so its relative module paths resolve.
    let cfg = strait::config::Config::parse(yaml, &format!("flows: {{ sink: none }}\n{text}"))
        .unwrap_or_else(|e| panic!("{}: {e}", yaml.display()));
    Proxy::from_config(cfg).await
}

/// `curl -s -i` → (status, headers and body text).
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_example() {
    let Some((yaml, text)) = example("examples/filters/allow-list") else {
        return;
    };
    let up = Upstream::start().await;
    let p = start(&yaml, &text, &up).await;
    let url = format!("http://{}/headers", p.addr("web"));
    let (s, _) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || curl(&url, &["-H", "x-user: alice"])
    })
    .await
    .unwrap();
    assert_eq!(s, 200);
    let (s, out) = tokio::task::spawn_blocking(move || curl(&url, &["-H", "x-user: mallory"]))
        .await
        .unwrap();
    assert_eq!(s, 403, "{out}");
    assert!(out.contains("not in the allow list"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_rewrite_example() {
    let Some((yaml, text)) = example("examples/filters/path-rewrite") else {
        return;
    };
    let up = Upstream::start().await;
    let p = start(&yaml, &text, &up).await;
    let url = format!("http://{}/old/thing?q=1", p.addr("web"));
    let (s, out) = tokio::task::spawn_blocking(move || curl(&url, &[]))
        .await
        .unwrap();
    assert_eq!(s, 200, "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("x-upstream-path: /new/thing?q=1"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_counter_example() {
    let Some((yaml, text)) = example("examples/filters/path-counter") else {
        return;
    };
    let up = Upstream::start().await;
    let p = start(&yaml, &text, &up).await;
    let (web, admin) = (p.addr("web"), p.admin.unwrap());
    let out = tokio::task::spawn_blocking(move || {
        for path in ["/api/a", "/api/b", "/static/x.css", "/other"] {
            let (s, out) = curl(&format!("http://{web}{path}"), &[]);
            assert_eq!(s, 200, "{out}");
        }
        curl(&format!("http://{admin}/metrics"), &[]).1
    })
    .await
    .unwrap();
    assert!(out.contains("strait_wasm_requests_api_total 2"), "{out}");
    assert!(out.contains("strait_wasm_requests_static_total 1"), "{out}");
    assert!(out.contains("strait_wasm_requests_other_total 1"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_sdk_basics_example() {
    let Some((yaml, text)) = example("examples/proxy-wasm/basics") else {
        return;
    };
    let up = Upstream::start().await;
    let p = start(&yaml, &text, &up).await;
    let web = p.addr("web");
    let (a, b, c) = tokio::task::spawn_blocking(move || {
        (
            curl(&format!("http://{web}/headers"), &[]),
            curl(&format!("http://{web}/blocked"), &[]),
            curl(&format!("http://{web}/hello"), &[]),
        )
    })
    .await
    .unwrap();
    assert!(a.0 == 200 && a.1.contains("x-from-filter: yes"), "{}", a.1);
    assert!(
        b.0 == 403 && b.1.contains("blocked by pw-basics"),
        "{}",
        b.1
    );
    assert!(c.0 == 200 && c.1.ends_with("HOWDY, HOWDY world"), "{}", c.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_sdk_http_authz_example() {
    let Some((yaml, text)) = example("examples/proxy-wasm/http-authz") else {
        return;
    };
    let up = Upstream::start().await;
    let p = start(&yaml, &text, &up).await;
    let url = format!("http://{}/headers", p.addr("web"));
    let (ok, denied) = tokio::task::spawn_blocking(move || {
        (
            curl(&url, &["-H", "x-user: alice"]),
            curl(&url, &["-H", "x-user: bob"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert!(
        denied.0 == 403 && denied.1.contains("denied by authz"),
        "{}",
        denied.1
    );
}
