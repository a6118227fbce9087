#!/usr/bin/env bash
# Transactional produce throughput and commit latency beside idempotent produce, from
# librdkafka (perf/one-record-latency's `transactions`: 100-byte records, acks=all,
# linger.ms=5, five requests in flight): the broker as one shard on CPU 0, the client on CPU 1.
#   perf/transactions.sh [SLUICE_BINARY] [TRANSACTIONS] [RECORDS_PER_TRANSACTION]
#   (defaults target/release/sluice, 500, 100; also run with 1 record per transaction)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
transactions="${2:-500}"
per="${3:-100}"
source perf/lib.sh
dir=perf/one-record-latency
(cd "$dir" && cargo build --release --quiet --bin transactions)
client="${CARGO_TARGET_DIR:-$dir/target}/release/transactions"
port=29393
data="$(mktemp -d /var/tmp/sluice-txn.XXXXXX)"
log="$(mktemp)"
perf_start_broker "$bin" "$port" "" "$data" "$log"
"$bin" topic -b "127.0.0.1:$port" create txn --partitions 1 >/dev/null
taskset -c 1 "$client" "127.0.0.1:$port" "$transactions" "$per"
kill -TERM "$broker"
wait "$broker" || true
rm -rf "$data" "$log"
