#!/usr/bin/env bash
# Replication cost on three local nodes (scripts/cluster.sh's layout, one shard each):
# S2 (acks=all throughput, 100 B records, 512 KiB batches, 5 requests in flight, one
# producer) on an RF=1 and an RF=3 topic of one partition, S3 (acks=all produce-to-ack
# latency, 16 KiB batches, linger 1 ms, 5 in flight) on RF=3 at 20,000 and 100,000 records/s,
# the CPU the two followers spend per record replicated, and one record per request from
# librdkafka (acks=all, RF=3).
#   perf/cluster.sh [OUTPUT_DIR]      (default perf/results/<date>-cluster)
# On a machine with fewer than four CPUs the three nodes and `sluice bench` share them (the
# bench is pinned to the last CPU, node N to CPU (N-1) mod CPUs): followers then compete with
# the leader and the client for the same cores, which a real deployment would not.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-perf/results/$(date +%Y%m%d-%H%M%S)-cluster}"
mkdir -p "$out"
if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --quiet
fi
bin="${SLUICE_BIN:-target/release/sluice}"
data="$(mktemp -d /var/tmp/sluice-cluster-perf.XXXXXX)"
cpus=$(nproc)
bench_cpu=$((cpus - 1))
kafka=(39092 39093 39094)
controllers=(39192 39193 39194)
voters="1@127.0.0.1:${controllers[0]},2@127.0.0.1:${controllers[1]},3@127.0.0.1:${controllers[2]}"
pids=()
ticks="$(getconf CLK_TCK)"

trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$data"' EXIT
for n in 1 2 3; do
    "$bin" serve --node-id "$n" --listen "127.0.0.1:${kafka[n - 1]}" \
        --controller-listen "127.0.0.1:${controllers[n - 1]}" --controller-quorum-voters "$voters" \
        --metrics-listen "" --cores "$(((n - 1) % cpus))" --data-dir "$data/node-$n" \
        >"$out/node-$n.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 1 300); do
    "$bin" cluster -b "127.0.0.1:${kafka[0]}" 2>/dev/null | grep -q "^cluster .*: 3 brokers" && break
    sleep 0.2
done
"$bin" cluster -b "127.0.0.1:${kafka[0]}" >"$out/cluster.txt"

cpu_of() { awk -v ticks="$ticks" '{ printf "%.3f", ($14 + $15) / ticks }' "/proc/$1/stat"; }
bench() {
    local name="$1"
    shift
    echo "== $name: sluice bench $*" >&2
    "$bin" bench -b "127.0.0.1:${kafka[0]}" --cpus "$bench_cpu" --json "$@" >"$out/$name.json"
}
# The topic, its one partition led by node 1 (the first replica leads).
topic() {
    "$bin" topic create -b "127.0.0.1:${kafka[0]}" "$1" --partitions 1 --replication-factor "$2" >/dev/null
}
# A bench run with each node's CPU seconds over it added to its JSON.
with_cpu() {
    local name="$1"
    shift
    local before=() after=()
    for p in "${pids[@]}"; do before+=("$(cpu_of "$p")"); done
    bench "$name" "$@"
    for p in "${pids[@]}"; do after+=("$(cpu_of "$p")"); done
    jq --argjson b "[${before[0]},${before[1]},${before[2]}]" --argjson a "[${after[0]},${after[1]},${after[2]}]" \
        '. + {node_cpu_seconds: [range(3) as $i | $a[$i] - $b[$i]]}' "$out/$name.json" >"$out/$name.tmp"
    mv "$out/$name.tmp" "$out/$name.json"
}

batch=524288
topic rf1 1
topic rf3 3
# One line per topic: name, then partition 0's PARTITION LEADER REPLICAS ISR ... row.
for t in rf1 rf3; do
    echo "$t $("$bin" topic describe -b "127.0.0.1:${kafka[0]}" "$t" | sed -n 3p)" >>"$out/placement.txt"
done
with_cpu s2-rf1 produce --topic rf1 --records 3000000 --acks -1 --batch-size "$batch"
with_cpu s2-rf3 produce --topic rf3 --records 3000000 --acks -1 --batch-size "$batch"
topic s3rf3 3
# Warm-up: a follower's first fetch of a new partition can reach its leader before the leader
# has the partition, and retries after a pause; records written meanwhile wait for it.
bench s3-warm-up produce --topic s3rf3 --records 40000 --acks -1 --rate 20000
bench s3-rf3-at-20k produce --topic s3rf3 --records 400000 --acks -1 --rate 20000
bench s3-rf3-at-100k produce --topic s3rf3 --records 1500000 --acks -1 --rate 100000

# One record per request from an independent client (librdkafka, perf/one-record-latency:
# linger.ms=0, one request in flight, each delivery awaited), acks=all, into RF=3 topic `lat`.
source perf/lib.sh
client="$(perf_latency_client)"
topic lat 3
taskset -c "$bench_cpu" "$client" "127.0.0.1:${kafka[0]}" all 5000 >"$out/one-record-rf3.txt"

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
load = lambda name: json.loads((out / f"{name}.json").read_text())
placement = (out / "placement.txt").read_text().split("\n")
rf1, rf3 = load("s2-rf1"), load("s2-rf3")
lat = lambda r: "p50 {p50_ms:.3f} / p99 {p99_ms:.3f} / p99.9 {p999_ms:.3f} / max {max_ms:.3f} ms".format(**r["produce_to_ack"])
leaders = {l.split()[0]: int(l.split()[2]) for l in placement if l.strip()}
def follower_ns(r, topic):
    cpu = r["node_cpu_seconds"]
    followers = sum(c for i, c in enumerate(cpu) if i + 1 != leaders[topic])
    return followers * 1e9 / r["produced"]
rows = [
    ("S2 acks=all RF=1", f"{rf1['records_per_second']:,.0f} records/s; node CPU s {rf1['node_cpu_seconds']}"),
    ("S2 acks=all RF=3", f"{rf3['records_per_second']:,.0f} records/s = {100 * rf3['records_per_second'] / rf1['records_per_second']:.0f}% of RF=1; node CPU s {rf3['node_cpu_seconds']}; followers {follower_ns(rf3, 'rf3'):.0f} ns CPU per record"),
    ("S3 acks=all RF=3 at 20k/s", lat(load("s3-rf3-at-20k"))),
    ("S3 acks=all RF=3 at 100k/s", lat(load("s3-rf3-at-100k"))),
    ("one record per request, acks=all RF=3 (librdkafka)", (out / "one-record-rf3.txt").read_text().strip()),
]
text = "| scenario | result |\n| --- | --- |\n" + "\n".join(f"| {s} | {r} |" for s, r in rows) + "\n"
text += "\nPlacement (topic, partition, leader, replicas, ISR, log start, log end):\n\n" + "\n".join("    " + l for l in placement if l.strip()) + "\n"
(out / "summary.md").write_text(text)
print(text)
PY
