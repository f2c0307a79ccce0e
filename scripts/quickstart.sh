#!/usr/bin/env bash
# The quickstart: build strait, start an upstream and strait with examples/quickstart/,
# send real requests (HTTP/1.1, HTTP/2, one to a dead upstream) and print what happened:
# responses, the flow records, and a few metrics. Cleans up after itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

bash scripts/toolchain.sh
bash scripts/toolchain-bpf.sh
echo "== building strait (release)"
cargo build --release -q -p strait
strait="$repo/target/release/strait"

for port in 8080 8081 9000 9901; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port on 127.0.0.1 is in use; stop what uses it and retry" >&2
        exit 1
    fi
done

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting an upstream on 127.0.0.1:9000 (python3 http.server)"
mkdir -p "$work/www" && echo "hello from the upstream" > "$work/www/index.html"
python3 -m http.server 9000 --bind 127.0.0.1 --directory "$work/www" >"$work/upstream.log" 2>&1 &
pids+=($!)

echo "== strait check"
"$strait" check --config examples/quickstart/strait.yaml

echo "== starting strait (flow records go to its stdout: $work/flows.jsonl)"
"$strait" run --config examples/quickstart/strait.yaml >"$work/flows.jsonl" 2>"$work/strait.log" &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fs -o /dev/null http://127.0.0.1:9901/ready && break
    sleep 0.1
done
curl -fs -o /dev/null http://127.0.0.1:9901/ready || { cat "$work/strait.log"; exit 1; }

"$strait" observe --admin 127.0.0.1:9901 >"$work/observe.txt" 2>&1 &
pids+=($!)
sleep 0.3

source scripts/quickstart-lib.sh
echo "== requests"
expect 200 curl -sS -i http://127.0.0.1:8080/index.html
expect 200 curl -sS --http2-prior-knowledge -o /dev/null http://127.0.0.1:8080/index.html
expect 404 curl -sS -o /dev/null http://127.0.0.1:8080/missing
expect 503 curl -sS -i http://127.0.0.1:8081/anything
sleep 0.5

echo
echo "== strait observe (live flows from the admin endpoint)"
cat "$work/observe.txt"
echo
echo "== flow records (JSON lines on strait's stdout)"
cat "$work/flows.jsonl"
echo
echo "== a few metrics (GET 127.0.0.1:9901/metrics)"
curl -s http://127.0.0.1:9901/metrics | grep -E '^strait_(requests_total|responses_total\{.*(2xx|4xx|5xx)|upstream_errors_total\{.*connect)' || true
echo
expectations_met "quickstart (explicit proxy)"
echo "quickstart (explicit proxy) done: strait forwarded HTTP/1.1 and HTTP/2, passed on the upstream's 404, answered 503 for the dead upstream, and recorded every request."
cleanup
trap - EXIT

if [ "$(id -u)" != 0 ]; then
    echo "== skipping the datapath quickstart: it needs root (network namespaces, eBPF)"
    exit 0
fi
bash scripts/quickstart-datapath.sh
