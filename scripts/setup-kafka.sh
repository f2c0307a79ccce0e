#!/usr/bin/env bash
# Idempotently install what strait's Kafka integration tests (proxy/tests/kafka.rs) need:
#   - tansu, an Apache Kafka compatible broker (cargo install; no prebuilt binaries are
#     published for it, only crates and a container image). Compiling it takes ~20 minutes on
#     2 cores, so it is skipped whenever a `tansu` is already on PATH or in ~/.cargo/bin.
#   - the Python clients confluent-kafka (librdkafka) and kafka-python.
# Safe to run repeatedly; prints one line per dependency saying what it did.
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
PYTHON="${PYTHON:-python3}"

# --- tansu -------------------------------------------------------------------
tansu_bin=""
if command -v tansu >/dev/null 2>&1; then
    tansu_bin="$(command -v tansu)"
elif [ -x "${HOME}/.cargo/bin/tansu" ]; then
    tansu_bin="${HOME}/.cargo/bin/tansu"
fi
if [ -n "${tansu_bin}" ]; then
    echo "tansu: $("${tansu_bin}" --version) already present (${tansu_bin}), skipped"
else
    start=$(date +%s)
    # `dynostore` is the in-memory storage engine the tests use (memory://).
    cargo install tansu --version "${TANSU_VERSION}" --features dynostore --locked --quiet
    echo "tansu: installed $("${HOME}/.cargo/bin/tansu" --version) with cargo install in $(( $(date +%s) - start ))s"
fi

# --- Python Kafka clients -----------------------------------------------------
py_check='import confluent_kafka, kafka.admin'
py_versions='import confluent_kafka, kafka; print(f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]}), kafka-python {kafka.__version__}")'
if "${PYTHON}" -c "${py_check}" >/dev/null 2>&1; then
    echo "python: $("${PYTHON}" -c "${py_versions}") already present, skipped"
else
    PIP_ROOT_USER_ACTION=ignore "${PYTHON}" -m pip install --quiet --disable-pip-version-check \
        'confluent-kafka>=2.3,<3' 'kafka-python>=2.1,<4'
    "${PYTHON}" -c "${py_check}"
    echo "python: installed $("${PYTHON}" -c "${py_versions}")"
fi
