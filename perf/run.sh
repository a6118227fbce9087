#!/usr/bin/env bash
# Runs the performance scenarios S1-S6 (see perf/README.md) against a release build of
# Sluice: the broker as one shard pinned to CPU 0, `sluice bench` pinned to CPU 1.
#   perf/run.sh [OUTPUT_DIR]      (default perf/results/<date>)
# SLUICE_BIN names another broker binary to measure (for an A/B against an older build).
# Each scenario's JSON result, the broker's log and metrics, and summary.md land in OUTPUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-perf/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
if [ -z "${SLUICE_BIN:-}" ]; then
    cargo build --release --quiet
fi
bin="${SLUICE_BIN:-target/release/sluice}"
data="$(mktemp -d /var/tmp/sluice-perf.XXXXXX)"
port=29092
metrics=29644
broker=""
ticks="$(getconf CLK_TCK)"
# Producer batch of the throughput scenarios: 512 KiB. The bench's default, Kafka's 16 KiB,
# costs one produce request per 160 records of 100 bytes; S1 is run with it too.
batch=524288

start_broker() {
    "$bin" serve --cores 0 --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics" \
        --data-dir "$data" >>"$out/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 1 600); do
        if grep -q "sluice listening on" "$out/broker.log" 2>/dev/null && \
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    echo "the broker did not start" >&2
    exit 1
}

stop_broker() {
    curl -s "http://127.0.0.1:$metrics/metrics" >"$out/metrics-$1.txt" || true
    kill -TERM "$broker"
    wait "$broker" || true
}

# Broker CPU seconds (user + system) so far.
cpu_seconds() {
    awk -v ticks="$ticks" '{ printf "%.3f", ($14 + $15) / ticks }' "/proc/$broker/stat"
}

bench() {
    local name="$1"
    shift
    echo "== $name: sluice bench $*" >&2
    "$bin" bench -b "127.0.0.1:$port" --cpus 1 --json "$@" >"$out/$name.json"
}

# CPU per record of a produce scenario, written beside its result.
with_cpu() {
    local name="$1"
    shift
    local before after
    before="$(cpu_seconds)"
    bench "$name" "$@"
    after="$(cpu_seconds)"
    jq --argjson before "$before" --argjson after "$after" \
        '. + {broker_cpu_seconds: ($after - $before), broker_ns_per_record: (($after - $before) * 1e9 / .produced)}' \
        "$out/$name.json" >"$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name.json"
}

trap 'kill "$broker" 2>/dev/null || true; rm -rf "$data"' EXIT
start_broker
with_cpu s1-produce-acks1 produce --topic s1 --partitions 1 --records 10000000 --acks 1 --batch-size "$batch"
with_cpu s2-produce-acks-all produce --topic s2 --partitions 1 --records 10000000 --acks -1 --batch-size "$batch"
with_cpu s1-produce-acks1-16k produce --topic s1k --partitions 1 --records 3000000 --acks 1
bench s3-acks-all-at-100k produce --topic s3 --partitions 1 --records 3000000 --acks -1 --rate 100000
bench s4-e2e-at-100k e2e --topic s4 --partitions 1 --records 3000000 --acks -1 --rate 100000
bench s5-prepare produce --topic s5 --partitions 1 --records 2000000 --acks 1 --batch-size "$batch"
bench s5-consume-cache consume --topic s5 --records 2000000
stop_broker s1-s5
start_broker
bench s5-consume-disk consume --topic s5 --records 2000000
bench s6-produce-1k produce --topic s6 --partitions 1 --records 1000000 --record-size 1024 --acks -1 \
    --batch-size "$batch"
stop_broker s5-s6

if ! command -v fio >/dev/null; then
    apt-get install -y fio >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y fio >/dev/null)
fi
fio --name=direct-write --filename="$data/fio.tmp" --rw=write --bs=256k --direct=1 --size=2g \
    --ioengine=io_uring --iodepth=4 --fdatasync=64 --output-format=json >"$out/s6-fio.json"

python3 - "$out" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name):
    return json.loads((out / f"{name}.json").read_text())
rows = []
def row(scenario, name, what):
    r = load(name)
    rows.append((scenario, what(r)))
lat = lambda key: lambda r: "p50 {p50_ms:.3f} / p99 {p99_ms:.3f} / p99.9 {p999_ms:.3f} / max {max_ms:.3f} ms".format(**r[key])
row("S1 produce acks=1, 100 B", "s1-produce-acks1",
    lambda r: f"{r['records_per_second']:,.0f} records/s, {r['broker_ns_per_record']:.0f} ns broker CPU per record")
row("S1 with Kafka's 16 KiB batch", "s1-produce-acks1-16k",
    lambda r: f"{r['records_per_second']:,.0f} records/s, {r['broker_ns_per_record']:.0f} ns broker CPU per record")
row("S2 produce acks=all, 100 B", "s2-produce-acks-all",
    lambda r: f"{r['records_per_second']:,.0f} records/s, {r['broker_ns_per_record']:.0f} ns broker CPU per record")
row("S3 acks=all at 100k/s: ack latency", "s3-acks-all-at-100k", lat("produce_to_ack"))
row("S4 e2e at 100k/s: produce-to-consume", "s4-e2e-at-100k", lat("produce_to_consume"))
row("S5 consume from cache", "s5-consume-cache", lambda r: f"{r['records_per_second']:,.0f} records/s")
row("S5 consume from disk (after restart)", "s5-consume-disk", lambda r: f"{r['records_per_second']:,.0f} records/s")
fio = json.loads((out / "s6-fio.json").read_text())
disk_mb = fio["jobs"][0]["write"]["bw_bytes"] / 1e6
s6 = load("s6-produce-1k")
rows.append(("S6 produce acks=all, 1 KiB", f"{s6['megabytes_per_second']:.1f} MB/s = {100 * s6['megabytes_per_second'] / disk_mb:.0f}% of fio's {disk_mb:.1f} MB/s direct writes"))
text = "| scenario | result |\n| --- | --- |\n" + "\n".join(f"| {s} | {r} |" for s, r in rows) + "\n"
(out / "summary.md").write_text(text)
print(text)
PY
