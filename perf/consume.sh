#!/usr/bin/env bash
# S5 on its own: produce RECORDS records of 100 B (512 KiB batches) to one partition, consume
# them from the batch cache, restart the broker, consume them again from disk. Prints each
# consume's records/s and the broker's CPU per consumed record (user + system).
#   perf/consume.sh [BIN] [RECORDS]     (default target/release/sluice, 2000000)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin="${1:-target/release/sluice}"
records="${2:-2000000}"
data="$(mktemp -d /var/tmp/sluice-consume.XXXXXX)"
log="$(mktemp /tmp/sluice-consume-log.XXXXXX)"
port=29192
broker=""
trap 'kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null; rm -rf "$data" "$log"' EXIT
consume() {
    local what="$1" before after out
    before="$(perf_cpu_seconds)"
    out="$("$bin" bench -b "127.0.0.1:$port" --cpus 1 --json consume --topic s5 --records "$records")"
    after="$(perf_cpu_seconds)"
    echo "$out" | jq -c --arg what "$what" --argjson before "$before" --argjson after "$after" \
        '{consume: $what, records_per_second: (.records_per_second | floor),
          broker_ns_per_record: ((($after - $before) * 1e9 / .consumed) | floor)}'
}
perf_start_broker "$bin" "$port" "" "$data" "$log"
"$bin" bench -b "127.0.0.1:$port" --cpus 1 --json produce --topic s5 --partitions 1 \
    --records "$records" --acks 1 --batch-size 524288 >/dev/null
consume cache
kill -TERM "$broker"; wait "$broker" || true
perf_start_broker "$bin" "$port" "" "$data" "$log"
consume disk
