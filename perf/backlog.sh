#!/usr/bin/env bash
# S8: librdkafka (perf/one-record-latency in its rate mode: linger.ms=0, acks=all, Nagle off,
# 100-byte records on a fixed schedule) at each given rate, each run right after a
# maximum-rate `sluice bench produce` to another topic. The broker is one shard on CPU 0; the
# load runs on CPU 1. After each run the broker's produce stages for that run are printed
# (the difference between scrapes), to show where a backlog's time goes.
#   perf/backlog.sh [SLUICE_BINARY] [SECONDS_PER_RUN] [RATE...]   (default target/release/sluice, 5, 2000 5000 20000 50000)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
seconds="${2:-5}"
shift 2 || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(2000 5000 20000 50000)
source perf/lib.sh
client="$(perf_latency_client)"
port=29296
metrics_port=29297
data="$(mktemp -d /var/tmp/sluice-backlog.XXXXXX)"
log="$(mktemp)"
trap 'kill -TERM "${broker:-}" 2>/dev/null || true; wait "${broker:-}" 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
# SLUICE_SERVE_ARGS: more `sluice serve` arguments, e.g. "--config FILE".
# shellcheck disable=SC2086
perf_start_broker "$bin" "$port" "127.0.0.1:$metrics_port" "$data" "$log" ${SLUICE_SERVE_ARGS:-}
# The latency topic exists before the first run, so no run measures its creation.
"$bin" topic -b "127.0.0.1:$port" create lat --partitions 1 >/dev/null
scrape() { curl -s "http://127.0.0.1:$metrics_port/metrics" | grep '^sluice_produce_stage_nanoseconds_\(sum\|count\)'; }
for rate in "${rates[@]}"; do
    taskset -c 1 "$bin" bench produce -b "127.0.0.1:$port" --topic burst --partitions 1 --records 2000000 \
        --batch-size 524288 --acks -1 --duration 30 --json >/dev/null
    sleep "${SETTLE:-0}"
    date -u +"  run starts %H:%M:%S.%N"
    before="$(scrape)"
    taskset -c 1 "$client" "127.0.0.1:$port" all $((rate * seconds)) "$rate"
    after="$(scrape)"
    python3 - "$before" "$after" <<'PY'
import re, sys
def parse(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r'sluice_produce_stage_nanoseconds_(sum|count)\{shard="\d+",stage="(\w+)"\} (\d+)', line)
        if m:
            out[(m.group(2), m.group(1))] = out.get((m.group(2), m.group(1)), 0) + int(m.group(3))
    return out
before, after = parse(sys.argv[1]), parse(sys.argv[2])
parts = []
for stage in ["read", "decode", "route", "write_wait", "write", "flush_wait", "response_wait", "response_write"]:
    count = after.get((stage, "count"), 0) - before.get((stage, "count"), 0)
    total = after.get((stage, "sum"), 0) - before.get((stage, "sum"), 0)
    parts.append(f"{stage} {total / max(count, 1) / 1000:.1f}")
print("  broker mean per request (us): " + ", ".join(parts))
PY
    # Appends slower than 100 ms are logged by the broker with their phases.
    grep "an append of" "$log" | sed 's/^/  slow: /' | tail -n 3 || true
    date -u +"  run ended %H:%M:%S.%N"; : >"$log"
done
