#!/usr/bin/env bash
# Catching up after a stall: `sluice bench produce` at RATE records/s (one 100-byte record per
# request, linger 0, acks=all, 64 in flight, the bench on CPU 1) against a broker that is one
# shard on CPU 0. Four seconds in, the broker is stopped (SIGSTOP) for STALL_MS, standing in for
# a core taken by another process; requests keep arriving in its socket meanwhile. The bench
# prints its latency every 100 ms; this script prints that timeline around the stall and how
# long after the stall ended the latency was back to what it was before.
#   perf/catch_up.sh [BIN] [RATE] [STALL_MS]   (default target/release/sluice, 20000, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin="${1:-target/release/sluice}"
rate="${2:-20000}"
stall_ms="${3:-1000}"
port=29492
data="$(mktemp -d /var/tmp/sluice-catch-up.XXXXXX)"
log="$(mktemp)"
timeline="$(mktemp)"
broker=""
trap 'kill -CONT "$broker" 2>/dev/null; kill "$broker" 2>/dev/null && wait "$broker" 2>/dev/null; rm -rf "$data" "$log" "$timeline"' EXIT
perf_start_broker "$bin" "$port" "" "$data" "$log"
"$bin" topic -b "127.0.0.1:$port" create catch-up --partitions 1 >/dev/null
started="$(date +%s.%N)"
"$bin" bench -b "127.0.0.1:$port" --cpus 1 --json --progress-ms 100 produce --topic catch-up \
    --records $((rate * 12)) --batch-size 150 --linger-ms 0 --in-flight 64 --acks -1 \
    --rate "$rate" >/dev/null 2>"$timeline" &
bench=$!
sleep 4
stall_start="$(date +%s.%N)"
kill -STOP "$broker"
sleep "$(echo "$stall_ms / 1000" | bc -l)"
kill -CONT "$broker"
stall_end="$(date +%s.%N)"
wait "$bench"
python3 - "$timeline" "$started" "$stall_start" "$stall_end" <<'PY'
import re, statistics, sys
timeline, started, stall_start, stall_end = sys.argv[1], *map(float, sys.argv[2:])
stall_start -= started
stall_end -= started
rows = []
for line in open(timeline):
    m = re.match(r'\[\s*([\d.]+)s\]\s+(\d+) records/s.*p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) ms', line)
    if m:
        rows.append(tuple(float(g) for g in m.groups()))
before = [r[3] for r in rows if 1.0 <= r[0] <= stall_start - 0.1]
baseline = statistics.median(before)
threshold = max(2 * baseline, baseline + 1.0)
print(f"stall {stall_start:.2f}-{stall_end:.2f} s; p99 per 100 ms before it: median {baseline:.3f} ms")
for t, rps, p50, p99, mx in rows:
    if stall_start - 0.3 <= t <= stall_end + 1.5:
        print(f"  {t:6.1f} s  {rps:>8.0f} records/s  p50 {p50:8.3f}  p99 {p99:8.3f}  max {mx:8.3f} ms")
# An interval ends at t and covers (t - 0.1, t]. Caught up: where the first three intervals in
# a row after the stall have their p99 under the threshold begin.
after = [(t, p99) for t, _, _, p99, _ in rows if t > stall_end]
caught = None
for i in range(len(after) - 2):
    if all(p99 <= threshold for _, p99 in after[i:i + 3]):
        caught = after[i][0] - 0.1
        break
if caught is None:
    print(f"never back under p99 {threshold:.3f} ms after the stall")
else:
    print(f"back under p99 {threshold:.3f} ms {max(caught - stall_end, 0) * 1000:.0f} ms after the stall ended")
PY
