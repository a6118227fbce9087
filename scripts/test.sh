#!/usr/bin/env bash
# The whole test suite: installs what the tests need (idempotently), then runs every test.
# CI runs exactly this (see .ci/run). Ends with one line totalling every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

# librdkafka's TLS (the rdkafka crate's `ssl` feature, for the TLS tests) builds against the
# system's OpenSSL.
if ! dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq libssl-dev pkg-config >/dev/null
fi

# kafka-python and aiokafka, the other client implementations, in a project-local virtualenv.
if ! .venv/bin/python -c 'import kafka, aiokafka' >/dev/null 2>&1; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check 'kafka-python>=3,<4' 'aiokafka>=0.11,<1'
fi
export SLUICE_PYTHON="$PWD/.venv/bin/python"

log=$(mktemp)
fuzz_log=$(mktemp)
trap 'rm -f "$log" "$fuzz_log"' EXIT
cargo test --all-targets 2>&1 | tee "$log"

# The fuzz targets (fuzz/): cargo fuzz in its --sanitizer none mode, which runs on the stable
# toolchain, each for a bounded time from the committed seeds. A crash fails the suite and
# leaves its input in fuzz/artifacts/<target>/.
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --quiet --locked cargo-fuzz --version 0.13.2
fi
fuzz_seconds="${SLUICE_FUZZ_SECONDS:-45}"
fuzz_passed=0
for target in frame_decoder batch_validator; do
    corpus=$(mktemp -d)
    if ! cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" "$corpus" "fuzz/seeds/$target" \
        -- -max_total_time="$fuzz_seconds" >"$fuzz_log" 2>&1; then
        tail -n 60 "$fuzz_log"
        echo "fuzz $target: FAILED (input kept in fuzz/artifacts/$target/)"
        exit 1
    fi
    rm -rf "$corpus"
    echo "fuzz $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$fuzz_log" | tail -n 1), no crash"
    fuzz_passed=$((fuzz_passed + 1))
done

awk -v fuzz="$fuzz_passed" '/^test result:/ { passed += $4; failed += $6 } END { printf "all tests: %d passed, %d failed\n", passed + fuzz, failed }' "$log"
