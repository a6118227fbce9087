#!/usr/bin/env bash
# Starts a three-node Sluice cluster on this machine: every node a broker and a controller
# voter, with its own data dir, Kafka port, controller port and metrics port. Stays in the
# foreground; Ctrl-C (or SIGTERM) stops all three nodes. Run it again on the same dir and the
# nodes come back on their data.
#
#   scripts/cluster.sh [DATA_DIR]        (default ./cluster-data)
#
# Ports (override the bases with KAFKA_PORT, CONTROLLER_PORT, METRICS_PORT):
#   node N: Kafka 127.0.0.1:909(1+N), controller 127.0.0.1:919(1+N), metrics 127.0.0.1:964(3+N)
# Clients bootstrap from any node: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094.
#
# Each node gets one core when the machine has at least three (`--cores`); on fewer cores
# the nodes share them. SLUICE (a path to the binary) skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${1:-./cluster-data}"
kafka_base="${KAFKA_PORT:-9092}"
controller_base="${CONTROLLER_PORT:-9192}"
metrics_base="${METRICS_PORT:-9644}"
nodes=3

if [[ -z "${SLUICE:-}" ]]; then
    cargo build --release --quiet
    SLUICE=target/release/sluice
fi

voters=""
for n in $(seq 1 $nodes); do
    voters+="${voters:+,}$n@127.0.0.1:$((controller_base + n - 1))"
done

cpus=$(nproc)
pids=()
stop() {
    local code=$?
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait
    exit "$code"
}
trap stop INT TERM EXIT

mkdir -p "$data"
for n in $(seq 1 $nodes); do
    dir="$data/node-$n"
    mkdir -p "$dir"
    cores=()
    if ((cpus >= nodes)); then cores=(--cores "$((n - 1))"); fi
    "$SLUICE" serve \
        --node-id "$n" \
        --listen "127.0.0.1:$((kafka_base + n - 1))" \
        --controller-listen "127.0.0.1:$((controller_base + n - 1))" \
        --controller-quorum-voters "$voters" \
        --metrics-listen "127.0.0.1:$((metrics_base + n - 1))" \
        --data-dir "$dir/data" \
        "${cores[@]}" \
        >"$dir/stdout.log" 2>"$dir/sluice.log" &
    pids+=($!)
    echo "node $n: Kafka 127.0.0.1:$((kafka_base + n - 1)), controller 127.0.0.1:$((controller_base + n - 1)), log $dir/sluice.log"
done

bootstrap="127.0.0.1:$kafka_base,127.0.0.1:$((kafka_base + 1)),127.0.0.1:$((kafka_base + 2))"
# Ready once a broker reports all three (the quorum formed and every broker registered).
for _ in $(seq 1 300); do
    if "$SLUICE" cluster -b "127.0.0.1:$kafka_base" 2>/dev/null | grep -q "^cluster .*: $nodes brokers"; then
        "$SLUICE" cluster -b "127.0.0.1:$kafka_base"
        echo "bootstrap servers: $bootstrap (Ctrl-C stops the cluster)"
        break
    fi
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a node exited; see $data/node-*/sluice.log" >&2; exit 1; }
    done
    sleep 0.2
done
wait -n "${pids[@]}"
echo "a node exited; stopping the others (logs in $data/node-*/sluice.log)" >&2
