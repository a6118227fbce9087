#!/usr/bin/env bash
# S1 for an A/B comparison on a noisy machine: PAIRS interleaved runs of two broker builds, each
# a fresh broker (one shard on CPU 0) taking RECORDS 100-byte records in 512 KiB batches, acks=1,
# one partition, from `sluice bench produce` on CPU 1. Prints records/s, the broker's CPU per
# record and its minor page faults for each run.
#   perf/s1_pairs.sh BIN_A BIN_B [PAIRS] [RECORDS]   (default 3 pairs, 5M records)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
pairs="${3:-3}"
records="${4:-5000000}"
port=29193
broker=""
trap 'kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null || true' EXIT
run() {
    local bin="$1" data log before after faults_before faults_after rate
    data="$(mktemp -d /var/tmp/sluice-s1.XXXXXX)"
    log="$(mktemp)"
    perf_start_broker "$bin" "$port" "" "$data" "$log"
    before="$(perf_cpu_seconds)"
    faults_before="$(awk '{ print $10 }' "/proc/$broker/stat")"
    rate="$("$bin" bench -b "127.0.0.1:$port" --cpus 1 --json produce --topic s1 --partitions 1 \
        --records "$records" --acks 1 --batch-size 524288 2>/dev/null | jq .records_per_second)"
    after="$(perf_cpu_seconds)"
    faults_after="$(awk '{ print $10 }' "/proc/$broker/stat")"
    kill -TERM "$broker"
    wait "$broker" || true
    broker=""
    rm -rf "$data" "$log"
    python3 -c "import sys; r, b, a, f = map(float, sys.argv[2:6]); print(f'{sys.argv[1]}: {r:12,.0f} records/s {(a - b) * 1e9 / $records:6.0f} ns broker CPU per record {f:9,.0f} minor faults')" \
        "$bin" "$rate" "$before" "$after" "$((faults_after - faults_before))"
}
for _ in $(seq 1 "$pairs"); do
    run "$1"
    run "$2"
done
