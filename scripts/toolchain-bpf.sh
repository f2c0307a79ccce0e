#!/usr/bin/env bash
# Idempotent eBPF toolchain set-up (see docs/toolchain in ARCHITECTURE.md): Debian LLVM 22 for
# bpf-linker, the pinned nightly with rust-src, and bpf-linker itself; iproute2 and bpftool for
# the datapath tests (a test pins a map of an old layout with bpftool). Skips what is already there.
set -euo pipefail
NIGHTLY="${STRAIT_BPF_TOOLCHAIN:-nightly-2026-05-20}"

missing=()
for pkg in llvm-22-dev libpolly-22-dev libzstd-dev zlib1g-dev iproute2 bpftool; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "toolchain-bpf: installed ${missing[*]}"
fi

if ! rustup toolchain list | grep -q "^${NIGHTLY}"; then
    rustup toolchain install "$NIGHTLY" --profile minimal -c rust-src >/dev/null
    echo "toolchain-bpf: installed $NIGHTLY + rust-src"
elif ! rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain "$NIGHTLY" >/dev/null
    echo "toolchain-bpf: added rust-src to $NIGHTLY"
fi

if ! command -v bpf-linker >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/bpf-linker" ]; then
    echo "toolchain-bpf: building bpf-linker against LLVM 22 (~2.5 min)"
    PATH=/usr/lib/llvm-22/bin:$PATH cargo install --locked bpf-linker --no-default-features --features llvm-22 >/dev/null 2>&1 \
        || PATH=/usr/lib/llvm-22/bin:$PATH cargo install bpf-linker --no-default-features --features llvm-22
fi
echo "toolchain-bpf: $NIGHTLY, $(bpf-linker --version 2>/dev/null || "$HOME/.cargo/bin/bpf-linker" --version)"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
