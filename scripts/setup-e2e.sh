#!/usr/bin/env bash
# Idempotently install what strait's end-to-end tests need:
#   - Python packages grpcio, websockets and prometheus-client (tests/e2e/requirements.txt)
#   - curl with HTTP/2 support
# Safe to run repeatedly; prints one line per dependency saying what it did.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="${repo_root}/tests/e2e/requirements.txt"
PYTHON="${PYTHON:-python3}"

# --- Python packages -------------------------------------------------------
# Import the asyncio submodules too: an old websockets (<13) has no
# websockets.asyncio and must count as missing.
py_check='import grpc, websockets, websockets.asyncio.server, websockets.asyncio.client, prometheus_client.openmetrics.parser'
if "${PYTHON}" -c "${py_check}" >/dev/null 2>&1; then
    echo "python: grpcio/websockets/prometheus-client already present, skipped ($("${PYTHON}" -c 'import grpc, websockets; print(f"grpcio {grpc.__version__}, websockets {websockets.__version__}")'))"
else
    PIP_ROOT_USER_ACTION=ignore "${PYTHON}" -m pip install --quiet --disable-pip-version-check -r "${requirements}"
    "${PYTHON}" -c "${py_check}"
    echo "python: installed from tests/e2e/requirements.txt ($("${PYTHON}" -c 'import grpc, websockets; print(f"grpcio {grpc.__version__}, websockets {websockets.__version__}")'))"
fi

# --- curl with HTTP/2 -----------------------------------------------------
curl_has_http2() {
    command -v curl >/dev/null 2>&1 && curl --version | grep -q HTTP2
}
if curl_has_http2; then
    echo "curl: $(curl --version | head -n1 | cut -d' ' -f1-2) with HTTP2 already present, skipped"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "curl: missing or lacks HTTP2, and apt-get is unavailable; install curl with HTTP/2 support manually" >&2
        exit 1
    fi
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq curl >/dev/null
    if ! curl_has_http2; then
        echo "curl: installed via apt but still lacks HTTP2 support" >&2
        exit 1
    fi
    echo "curl: installed via apt ($(curl --version | head -n1 | cut -d' ' -f1-2)) with HTTP2"
fi
