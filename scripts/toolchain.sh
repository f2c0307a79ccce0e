#!/usr/bin/env bash
# Idempotent toolchain set-up shared by quickstart.sh and test.sh: checks what is there and
# installs only what is missing. Prints one line per step.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "toolchain: cargo not found; install Rust (rustup, stable >= 1.85) first" >&2
        exit 1
    fi
fi
echo "toolchain: $(cargo --version)"

if command -v rustup >/dev/null 2>&1; then
    for comp in rustfmt clippy; do
        if rustup component list --installed 2>/dev/null | grep -q "^${comp}"; then
            :
        else
            rustup component add "$comp" >/dev/null
            echo "toolchain: installed rustup component $comp"
        fi
    done
fi

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    echo "toolchain: installed ${need_apt[*]}"
fi
