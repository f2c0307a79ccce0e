#!/usr/bin/env bash
# The datapath quickstart (root): two endpoints as network namespaces (`strait lab up`), strait
# with the tc programs attached, and requests from the client namespace to the server showing
#   an L3/L4 allow (port 8080), an L3/L4 drop (port 9090),
#   an L7 allow and an L7 deny (port 80, redirected to strait's transparent listener).
# Config: examples/datapath/strait.yaml + policy.yaml. Cleans up everything it created.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
cfg=examples/datapath/strait.yaml
strait="${STRAIT_BIN:-$repo/target/release/strait}"
[ -n "${STRAIT_BIN:-}" ] || cargo build --release -q -p strait
[ -f target/filters/allow_list.wasm ] || bash scripts/build-filters.sh
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
if (exec 3<>"/dev/tcp/127.0.0.1/9901") 2>/dev/null; then
    echo "port 9901 on 127.0.0.1 is in use; stop what uses it and retry" >&2
    exit 1
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$strait" datapath down -c "$cfg" >/dev/null 2>&1 || true
    "$strait" lab down "$cfg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== strait lab up $cfg"
"$strait" lab up "$cfg"
cat > "$work/server.py" <<'PY'
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"server port {self.server.server_address[1]}: hello {self.client_address[0]}, you asked for {self.path}\n".encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
PY
for port in 80 8080 9090; do
    ip netns exec strait-server python3 "$work/server.py" "$port" >/dev/null 2>&1 &
    pids+=($!)
done

echo "== strait check + run (tc programs on lxc-client / lxc-server)"
"$strait" check -c "$cfg"
"$strait" run -c "$cfg" >"$work/flows.jsonl" 2>"$work/strait.log" &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fs -o /dev/null http://127.0.0.1:9901/ready && break
    sleep 0.1
done
curl -fs -o /dev/null http://127.0.0.1:9901/ready || { cat "$work/strait.log"; exit 1; }
sleep 0.5

source scripts/quickstart-lib.sh
echo "== requests from the client namespace (10.200.0.2) to the server (10.200.0.3)"
# Port 8080: L4 only. Port 9090: no rule, dropped at tc (curl times out: code 000).
expect 200 ip netns exec strait-client curl -sS -m 3 http://10.200.0.3:8080/l4-allowed
expect 000 ip netns exec strait-client curl -sS -m 2 http://10.200.0.3:9090/l4-denied
# Port 80: redirected to strait. The policy's http rule (GET /public/.*) runs first, then the
# allow-list filter (x-user: alice only).
expect 200 ip netns exec strait-client curl -sS -m 3 -H 'x-user: alice' http://10.200.0.3/public/hello
expect 403 ip netns exec strait-client curl -sS -m 3 -H 'x-user: alice' http://10.200.0.3/private
expect 403 ip netns exec strait-client curl -sS -m 3 -H 'x-user: mallory' http://10.200.0.3/public/hello
sleep 0.5

echo
echo "== flow records: datapath verdicts (FORWARDED / DROPPED / REDIRECTED) beside L7 flows"
cat "$work/flows.jsonl"
echo
echo "== datapath counters (GET 127.0.0.1:9901/metrics)"
curl -s http://127.0.0.1:9901/metrics | grep -E '^strait_datapath_(packets|allowed|redirected|drops)_total' || true
echo
expectations_met "datapath quickstart"
echo "datapath quickstart done: 8080 allowed in the kernel, 9090 dropped by L3/L4 policy, port 80 redirected to strait, where the policy allowed GET /public/* and denied /private (403), and the allow-list filter denied mallory (403)."
