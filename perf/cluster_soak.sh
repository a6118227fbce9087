#!/usr/bin/env bash
# Cluster failover soak: the suite's three-node SIGKILL test (tests/cluster_failover.rs) for
# many more rounds (40 by default). Idempotent acks=all producers write throughout; each
# round SIGKILLs the broker leading most partitions or (every other round) the active
# controller, waits until every partition takes writes again, restarts it and waits until it
# is back in every ISR. At the end every acknowledged record must be there exactly once.
#   perf/cluster_soak.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-40}"
echo "cluster soak: $rounds kill rounds"
SLUICE_FAILOVER_ROUNDS="$rounds" \
    cargo test --release --test cluster_failover acknowledged_records_survive -- --nocapture
