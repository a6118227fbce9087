#!/usr/bin/env bash
# Where one small produce request's time goes: the broker (one shard on CPU 0) serves
# librdkafka producing one 100-byte record per request (perf/one-record-latency: linger.ms=0,
# one request in flight) from CPU 1, then its stage histograms
# (sluice_produce_stage_nanoseconds) are scraped and summarised per stage: count, mean, and
# the bucket bounds the median and p99 fall in.
#   perf/produce_stages.sh [SLUICE_BINARY] [RECORDS] [ACKS]   (default target/release/sluice, 5000, all)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
records="${2:-5000}"
acks="${3:-all}"
source perf/lib.sh
client="$(perf_latency_client)"
port=29293
metrics_port=29294
data="$(mktemp -d /var/tmp/sluice-stages.XXXXXX)"
log="$(mktemp)"
trap 'kill -TERM "${broker:-}" 2>/dev/null || true; wait "${broker:-}" 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
perf_start_broker "$bin" "$port" "127.0.0.1:$metrics_port" "$data" "$log"
taskset -c 1 "$client" "127.0.0.1:$port" "$acks" "$records"
python3 - "$metrics_port" <<'PY'
import re, sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
stages = {}
for line in body.splitlines():
    m = re.match(r'sluice_produce_stage_nanoseconds_(bucket|sum|count)\{shard="\d+",stage="(\w+)"(?:,le="([^"]+)")?\} (\d+)', line)
    if not m:
        continue
    kind, stage, le, value = m.group(1), m.group(2), m.group(3), int(m.group(4))
    entry = stages.setdefault(stage, {"buckets": {}, "sum": 0, "count": 0})
    if kind == "bucket":
        entry["buckets"][le] = entry["buckets"].get(le, 0) + value
    else:
        entry[kind] += value
def quantile(entry, q):
    target = q * entry["count"]
    for le, cumulative in entry["buckets"].items():
        if cumulative >= target:
            return le
    return "+Inf"
print(f"{'stage':<15} {'count':>7} {'mean us':>9} {'p50 <= us':>10} {'p99 <= us':>10}")
for stage in ["read", "decode", "route", "write_wait", "write", "flush_wait", "response_wait", "response_write"]:
    e = stages.get(stage)
    if not e or e["count"] == 0:
        print(f"{stage:<15} {0:>7}")
        continue
    us = lambda le: le if le == "+Inf" else f"{int(le) / 1000:g}"
    print(f"{stage:<15} {e['count']:>7} {e['sum'] / e['count'] / 1000:>9.1f} {us(quantile(e, 0.5)):>10} {us(quantile(e, 0.99)):>10}")
PY
