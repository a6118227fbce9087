#!/usr/bin/env bash
# The whole test suite: installs what the tests need (idempotently), then runs every test.
# CI runs exactly this (see .ci/run). Ends with one line totalling every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# kafka-python, the second client implementation, in a project-local virtualenv.
if ! .venv/bin/python -c 'import kafka' >/dev/null 2>&1; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'kafka-python>=3,<4'
fi
export SLUICE_PYTHON="$PWD/.venv/bin/python"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "all tests: %d passed, %d failed\n", passed, failed }' "$log"
