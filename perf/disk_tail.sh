#!/usr/bin/env bash
# The disk's own latency tail for small durable appends, the pattern of one record per
# request: fio writing 4 KiB direct writes at QD1, each followed by fdatasync, at RATE writes
# per second for SECONDS, in a file laid out as each case says:
#   allocated   fallocate'd to full size first (fio's default): no size change per write
#   keep-size   fallocate'd with KEEP_SIZE: every write extends the file size, as the broker's
#               appends into its keep-size preallocation do
#   written     written once in full before the run: every write overwrites written blocks
# For each case it prints the write and fdatasync latency at p50/p99/p99.9/p99.99 and max, and
# the device's writes and flushes per second from /proc/diskstats.
#   perf/disk_tail.sh [RATE] [SECONDS] [DIR]   (default 3000, 20, /var/tmp)
set -euo pipefail
rate="${1:-3000}"
seconds="${2:-20}"
dir="${3:-/var/tmp}"
command -v fio >/dev/null || { apt-get install -y fio >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y fio >/dev/null); }
device="$(lsblk -no pkname "$(findmnt -no source --target "$dir")" 2>/dev/null || true)"
[ -n "$device" ] || device="$(basename "$(findmnt -no source --target "$dir")")"
file="$dir/sluice-disk-tail.fio"
trap 'rm -f "$file"' EXIT

# writes and flushes completed on the device so far
disk_counts() { awk -v d="$device" '$3 == d { print $8, $19 }' /proc/diskstats; }

run_case() {
    local name="$1"
    shift
    rm -f "$file"
    local before after
    before="$(disk_counts)"
    fio --name="$name" --filename="$file" --rw=write --bs=4k --direct=1 --ioengine=io_uring \
        --iodepth=1 --fdatasync=1 --rate_iops="$rate" --size=1g --time_based --runtime="$seconds" \
        --percentile_list=50:99:99.9:99.99 --output-format=json "$@" >"$file.json"
    after="$(disk_counts)"
    python3 - "$name" "$file.json" "$before" "$after" "$seconds" <<'EOF'
import json, sys
name, path, before, after, seconds = sys.argv[1:]
job = json.load(open(path))["jobs"][0]
def row(lat):
    p = lat["percentile"]
    return " ".join(f"{float(p[k]) / 1e3:8.0f}" for k in ("50.000000", "99.000000", "99.900000", "99.990000")) + f" {lat['max'] / 1e3:8.0f}"
b = [int(x) for x in before.split()]
a = [int(x) for x in after.split()]
s = float(seconds)
print(f"{name:10} write   µs p50/p99/p99.9/p99.99/max {row(job['write']['clat_ns'])}")
print(f"{name:10} fdatasync µs                      {row(job['sync']['lat_ns'])}")
print(f"{name:10} device  {(a[0] - b[0]) / s:.0f} writes/s, {(a[1] - b[1]) / s:.0f} flushes/s")
EOF
    rm -f "$file.json"
}

run_case allocated
run_case keep-size --fallocate=keep
# Written in full first: fio's overwrite mode lays the file out with real writes.
run_case written --overwrite=1
