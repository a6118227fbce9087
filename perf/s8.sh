#!/usr/bin/env bash
# S8 judged: for each rate, the latency client's own floor (perf/one-record-latency against
# `instant-broker`, a listener that answers at once and stores nothing; FLOOR_RUNS runs, the
# median p99 kept), then RUNS runs against the broker, each right after a maximum-rate
# `sluice bench produce` of 2M records to another topic (librdkafka: linger.ms=0, acks=all,
# Nagle off, 100-byte records on a fixed schedule). Each broker run is marked ok when its p99
# is within 2 ms of the floor's. Broker (or instant-broker) on CPU 0, load on CPU 1.
#   perf/s8.sh [SLUICE_BINARY] [RUNS] [SECONDS_PER_RUN] [RATE...]
#   (default target/release/sluice, 10, 5, 2000 5000 20000 50000; FLOOR_RUNS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
runs="${2:-10}"
seconds="${3:-5}"
shift 3 || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(2000 5000 20000 50000)
floor_runs="${FLOOR_RUNS:-3}"
source perf/lib.sh
client="$(perf_latency_client)"
instant="$(dirname "$client")/instant-broker"
port=29396
instant_port=29398
data="$(mktemp -d /var/tmp/sluice-s8.XXXXXX)"
log="$(mktemp)"
instant_pid=""
trap 'kill -TERM "${broker:-}" "$instant_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data" "$log"' EXIT

# "p50 P us, p99 Q us" of one client run, as "P Q".
latency() { sed -n 's/.*: p50 \([0-9]*\) us, p99 \([0-9]*\) us.*/\1 \2/p'; }

taskset -c 0 "$instant" "$instant_port" >/dev/null &
instant_pid=$!
declare -A floor
for rate in "${rates[@]}"; do
    p99s=()
    for _ in $(seq 1 "$floor_runs"); do
        read -r _ p99 < <(taskset -c 1 "$client" "127.0.0.1:$instant_port" all $((rate * seconds)) "$rate" | latency)
        p99s+=("$p99")
    done
    floor[$rate]="$(printf '%s\n' "${p99s[@]}" | sort -n | sed -n "$(((floor_runs + 1) / 2))p")"
    echo "floor at $rate/s: p99 of $floor_runs runs ${p99s[*]} us, median ${floor[$rate]} us"
done
kill -TERM "$instant_pid"
wait "$instant_pid" 2>/dev/null || true
instant_pid=""

perf_start_broker "$bin" "$port" "" "$data" "$log"
"$bin" topic -b "127.0.0.1:$port" create lat --partitions 1 >/dev/null
for rate in "${rates[@]}"; do
    ok=0
    for run in $(seq 1 "$runs"); do
        taskset -c 1 "$bin" bench produce -b "127.0.0.1:$port" --topic burst --partitions 1 --records 2000000 \
            --batch-size 524288 --acks -1 --duration 30 --json >/dev/null
        read -r p50 p99 < <(taskset -c 1 "$client" "127.0.0.1:$port" all $((rate * seconds)) "$rate" | latency)
        verdict="behind"
        if [ "$p99" -le $((floor[$rate] + 2000)) ]; then
            verdict="ok"
            ok=$((ok + 1))
        fi
        echo "$rate/s run $run: p50 $p50 us, p99 $p99 us ($verdict: floor p99 ${floor[$rate]} us + 2 ms)"
    done
    echo "$rate/s: $ok of $runs runs within 2 ms of the client's floor"
done
