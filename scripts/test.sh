#!/usr/bin/env bash
# The whole test suite: toolchain and test peers set-up (idempotent), format, lints, and every
# test (unit, in-process integration, WASM filters and the SDK harness, end-to-end with curl /
# grpcio / websockets, and the privileged eBPF datapath tests in their own network namespaces).
# CI runs this (via .ci/run) with CI=true, where missing test tools fail instead of skipping.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
bash scripts/toolchain.sh
bash scripts/toolchain-bpf.sh
bash scripts/setup-e2e.sh
echo "== WASM filters (examples, built-in, hostile test modules)"
bash scripts/build-filters.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets -q -- -D warnings
echo "== cargo test (workspace)"
cargo test --workspace 2>&1 | tee /tmp/strait-test.$$.log
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' /tmp/strait-test.$$.log | awk '{s+=$4} END {print s+0}')
skipped=$(grep -c '^SKIPPED:' /tmp/strait-test.$$.log || true)
rm -f /tmp/strait-test.$$.log
echo "== all tests passed: $passed tests, $skipped skipped (see SKIPPED lines), $(( $(date +%s) - start ))s"
