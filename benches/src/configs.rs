//! Config files for the shared upstream and for each proxy under test.
//!
//! Every proxy gets exactly one listener on the same port, speaking the protocol of the run
//! (HTTP/1.1 or HTTP/2 prior knowledge), forwarding to the same upstream over a keep-alive pool.

use std::path::Path;

/// nginx default temp paths live under /var/lib/nginx; keep every instance self-contained.
fn nginx_temp_paths(dir: &Path, tag: &str) -> String {
    let d = dir.display();
    [
        "client_body_temp_path",
        "proxy_temp_path",
        "fastcgi_temp_path",
        "uwsgi_temp_path",
        "scgi_temp_path",
    ]
    .iter()
    .map(|k| format!("    {k} {d}/{tag}-{k};\n"))
    .collect()
}

/// The shared upstream: a static `200 ok\n` on an HTTP/1.1 port and an h2c (prior knowledge)
/// port. No logging, effectively unlimited keep-alive so no proxy pays for reconnects.
pub fn upstream_nginx(dir: &Path, workers: usize, h1_port: u16, h2_port: u16) -> String {
    let d = dir.display();
    let temps = nginx_temp_paths(dir, "upstream");
    format!(
        r#"# strait-bench shared upstream
worker_processes {workers};
daemon off;
master_process on;
pid {d}/upstream.pid;
error_log {d}/upstream-error.log warn;
worker_rlimit_nofile 16384;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    server_tokens off;
{temps}    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{h1_port} backlog=4096;
        location / {{ return 200 "ok\n"; }}
    }}
    server {{
        listen 127.0.0.1:{h2_port} http2 backlog=4096;
        location / {{ return 200 "ok\n"; }}
    }}
}}
"#
    )
}

/// nginx as a reverse proxy. nginx can only speak HTTP/1.x to upstreams (`proxy_pass`).
pub fn nginx_proxy(dir: &Path, workers: usize, port: u16, h2: bool, upstream_port: u16) -> String {
    let d = dir.display();
    let temps = nginx_temp_paths(dir, "proxy");
    let http2 = if h2 { " http2" } else { "" };
    format!(
        r#"# strait-bench: nginx reverse proxy
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx-proxy.pid;
error_log {d}/nginx-proxy-error.log warn;
worker_rlimit_nofile 16384;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    server_tokens off;
{temps}    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream backend {{
        server 127.0.0.1:{upstream_port};
        keepalive 256;
        keepalive_requests 10000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port}{http2} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"#
    )
}

/// HAProxy in HTTP mode. `option http-server-close` is deliberately not set (keep-alive to the
/// server), idle server connections are shared between clients (`http-reuse always`), and there
/// is no `log` directive at all.
pub fn haproxy(
    workers: usize,
    port: u16,
    h2: bool,
    upstream_port: u16,
    upstream_h2: bool,
) -> String {
    let bind_proto = if h2 { " proto h2" } else { "" };
    let server_proto = if upstream_h2 { " proto h2" } else { "" };
    format!(
        r#"# strait-bench: haproxy
global
    nbthread {workers}
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always

frontend bench
    bind 127.0.0.1:{port}{bind_proto}
    default_backend upstream

backend upstream
    server up1 127.0.0.1:{upstream_port}{server_proto}
"#
    )
}

/// strait: one `protocol: http` listener (serves HTTP/1.1 and h2c prior knowledge).
pub fn strait(
    workers: usize,
    admin_port: u16,
    port: u16,
    upstream_port: u16,
    upstream_h2: bool,
) -> String {
    let up_proto = if upstream_h2 { "http2" } else { "http1" };
    format!(
        r#"# strait-bench: strait
admin: {{ address: "127.0.0.1:{admin_port}" }}
runtime: {{ workers: {workers} }}
flows: {{ sink: none }}
listeners:
  - name: bench
    address: "127.0.0.1:{port}"
    protocol: http
    upstream: "127.0.0.1:{upstream_port}"
    upstream_protocol: {up_proto}
"#
    )
}
