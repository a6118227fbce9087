#!/usr/bin/env bash
# S7: `sluice bench produce` with one 100-byte record per request (batch size 150 bytes,
# linger 0) and IN_FLIGHT requests in flight on one connection, acks=1 then acks=all, RUNS
# times each, against a fresh broker (one shard on CPU 0; the bench on CPU 1). Prints
# requests/s, ack p50/p99 and the broker's CPU per request for each run.
#   perf/one_record_requests.sh [BIN] [RUNS] [IN_FLIGHT]   (default target/release/sluice, 2, 32)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin="${1:-target/release/sluice}"
runs="${2:-2}"
in_flight="${3:-32}"
records=150000
port=29392
data="$(mktemp -d /var/tmp/sluice-s7.XXXXXX)"
log="$(mktemp)"
broker=""
trap 'kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null; rm -rf "$data" "$log"' EXIT
perf_start_broker "$bin" "$port" "" "$data" "$log"
for _ in $(seq 1 "$runs"); do
    for acks in 1 -1; do
        before="$(perf_cpu_seconds)"
        out="$("$bin" bench -b "127.0.0.1:$port" --cpus 1 --json produce --topic s7 --partitions 1 \
            --records "$records" --batch-size 150 --linger-ms 0 --in-flight "$in_flight" --acks "$acks" 2>/dev/null)"
        after="$(perf_cpu_seconds)"
        echo "$out" | jq -c --argjson acks "$acks" --argjson before "$before" --argjson after "$after" \
            '{acks: $acks, requests_per_second: (.records_per_second | floor),
              ack_p50_ms: .produce_to_ack.p50_ms, ack_p99_ms: .produce_to_ack.p99_ms,
              broker_us_per_request: ((($after - $before) * 1e6 / .produced) | floor)}'
    done
done
