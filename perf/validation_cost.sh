#!/usr/bin/env bash
# What produce-side record validation costs: S1 (10M 100-byte records, acks=1, 512 KiB
# batches) uncompressed and with lz4, against one broker binary; run it for a build before and
# after a change to compare.
#   perf/validation_cost.sh [SLUICE_BINARY] [RECORDS]   (default target/release/sluice, 10M)
# The broker is one shard on CPU 0, the bench on CPU 1, as in perf/run.sh. Prints one line per
# scenario: records/s and broker CPU ns per record.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
records="${2:-10000000}"
ticks="$(getconf CLK_TCK)"
port=29192
for compression in none lz4; do
    data="$(mktemp -d /var/tmp/sluice-validation.XXXXXX)"
    log="$(mktemp)"
    "$bin" serve --cores 0 --listen "127.0.0.1:$port" --metrics-listen "" --data-dir "$data" >"$log" 2>&1 &
    broker=$!
    for _ in $(seq 1 600); do
        grep -q "sluice listening on" "$log" && break
        sleep 0.1
    done
    before="$(awk '{ print $14 + $15 }' "/proc/$broker/stat")"
    result="$("$bin" bench -b "127.0.0.1:$port" --cpus 1 --json produce --topic "s1-$compression" \
        --partitions 1 --records "$records" --acks 1 --batch-size 524288 --compression "$compression")"
    after="$(awk '{ print $14 + $15 }' "/proc/$broker/stat")"
    kill -TERM "$broker"
    wait "$broker" || true
    rm -rf "$data" "$log"
    echo "$result" | python3 -c "
import json, sys
r = json.load(sys.stdin)
cpu = ($after - $before) / $ticks
print(f\"S1 {sys.argv[1]:>4}: {r['records_per_second']:>12,.0f} records/s, {cpu * 1e9 / r['produced']:6.0f} ns broker CPU per record\")
" "$compression"
done
