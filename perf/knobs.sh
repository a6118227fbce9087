#!/usr/bin/env bash
# Measures the effect of the broker's tuning knobs, one at a time, against a release build:
# the broker pinned to CPU 0 (or CPUs 0,1 for the shard-count row), `sluice bench` to CPU 1.
#   perf/knobs.sh [OUTPUT_DIR]
# Prints a markdown table (also written to OUTPUT_DIR/knobs.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-perf/results/knobs-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/sluice
port=29192
rows=()

# run NAME CORES CONFIG_TOML BENCH_ARGS...: one broker, one bench, the JSON kept.
run() {
    local name="$1" cores="$2" config="$3"
    shift 3
    local data
    data="$(mktemp -d /var/tmp/sluice-knobs.XXXXXX)"
    printf '%s\n' "$config" >"$out/$name.toml"
    "$bin" serve --cores "$cores" --listen "127.0.0.1:$port" --metrics-listen "" --data-dir "$data" \
        --config "$out/$name.toml" >"$out/$name.log" 2>&1 &
    local broker=$!
    for _ in $(seq 1 600); do
        grep -q "sluice listening on" "$out/$name.log" && break
        sleep 0.1
    done
    local ticks before after
    ticks="$(getconf CLK_TCK)"
    before="$(awk '{ print $14 + $15 }' "/proc/$broker/stat")"
    "$bin" bench -b "127.0.0.1:$port" --cpus 1 --json "$@" >"$out/$name.json"
    after="$(awk '{ print $14 + $15 }' "/proc/$broker/stat")"
    kill -TERM "$broker"
    wait "$broker" || true
    rm -rf "$data"
    jq --argjson cpu "$(( after - before ))" --argjson ticks "$ticks" \
        '. + {broker_ns_per_record: ($cpu / $ticks * 1e9 / ([.produced, .consumed] | max))}' \
        "$out/$name.json" >"$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name.json"
}

row() {
    local knob="$1" setting="$2" name="$3" field="$4"
    rows+=("| $knob | $setting | $(jq -r "$field" "$out/$name.json") |")
}

throughput='"\(.records_per_second | floor) records/s, \(.broker_ns_per_record | floor) ns broker CPU per record"'
e2e_latency='"p50 \(.produce_to_consume.p50_ms) / p99 \(.produce_to_consume.p99_ms) / p99.9 \(.produce_to_consume.p999_ms) ms, \(.broker_ns_per_record | floor) ns broker CPU per record"'
produce=(produce --topic k --partitions 1 --records 5000000 --acks 1 --batch-size 524288)
e2e=(e2e --topic k --partitions 1 --records 1000000 --acks 1 --rate 100000)

for spin in 0 50 200; do
    run "spin-$spin" 0 "\"shard.spin.before.park.us\" = $spin" "${e2e[@]}"
    row "shard.spin.before.park.us" "$spin" "spin-$spin" "$e2e_latency"
done
for flush in 0 1000; do
    run "flush-$flush" 0 "\"log.flush.interval.ms\" = $flush" "${produce[@]}"
    row "flush.ms (acks=1)" "$flush" "flush-$flush" "$throughput"
done
for memory in 1048576 10485760 67108864; do
    run "io-memory-$memory" 0 "\"shard.io.memory.bytes\" = $memory" "${produce[@]}"
    row "shard.io.memory.bytes" "$memory" "io-memory-$memory" "$throughput"
done
for cores in 0 0,1; do
    run "cores-$cores" "$cores" "" produce --topic k --partitions 2 --records 5000000 --acks 1 --batch-size 524288
    row "--cores (2 partitions)" "$cores" "cores-$cores" "$throughput"
done
for cache in 268435456 65536; do
    # Consume what was just produced: from the cache, or (a cache too small to hold it) disk.
    run "cache-$cache" 0 "\"batch.cache.bytes\" = $cache" e2e --topic k --partitions 1 --records 2000000 \
        --acks 1 --rate 200000
    row "batch.cache.bytes (e2e at 200k/s)" "$cache" "cache-$cache" "$e2e_latency"
done

{
    echo "| knob | setting | result |"
    echo "| --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
} | tee "$out/knobs.md"
