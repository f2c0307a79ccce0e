#!/bin/sh
# Idempotent installer for the peer-benchmark tools (Debian/Ubuntu).
# Installs only what is missing: nginx, haproxy, wrk, h2load (nghttp2-client).
# Safe to run repeatedly; does nothing (and needs no network) when all tools exist.
set -eu

missing=""
command -v nginx   >/dev/null 2>&1 || missing="$missing nginx"
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v wrk     >/dev/null 2>&1 || missing="$missing wrk"
command -v h2load  >/dev/null 2>&1 || missing="$missing nghttp2-client"

if [ -z "$missing" ]; then
    echo "setup.sh: nginx, haproxy, wrk, h2load already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=""
fi

echo "setup.sh: installing:$missing"
# Package installs must not start the distro's nginx/haproxy services: the harness runs
# its own instances on 127.0.0.1 with private configs. If no policy-rc.d exists, add a
# temporary one that denies service starts, and remove it again afterwards.
cleanup_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    cleanup_policy=1
fi
trap '[ -n "$cleanup_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT

# Try with the existing package index first; refresh it once if that fails (stale lists).
# shellcheck disable=SC2086
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing; then
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi
