#!/usr/bin/env bash
# Produce-to-ack latency with one 100-byte record per request (librdkafka via
# perf/one-record-latency: linger.ms=0, one request in flight, each delivery awaited), for
# acks=1 and acks=all, against one broker binary: the broker as one shard on CPU 0, the client
# on CPU 1.
#   perf/one_record_latency.sh [SLUICE_BINARY] [RECORDS]   (default target/release/sluice, 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
records="${2:-5000}"
source perf/lib.sh
client="$(perf_latency_client)"
port=29292
for acks in 1 all; do
    data="$(mktemp -d /var/tmp/sluice-latency.XXXXXX)"
    log="$(mktemp)"
    perf_start_broker "$bin" "$port" "" "$data" "$log"
    taskset -c 1 "$client" "127.0.0.1:$port" "$acks" "$records"
    kill -TERM "$broker"
    wait "$broker" || true
    rm -rf "$data" "$log"
done
