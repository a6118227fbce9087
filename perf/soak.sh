#!/usr/bin/env bash
# Crash soak: the SIGKILL recovery test of the suite, run for many more kill points.
#   perf/soak.sh [KILLS] [SEED]     (defaults: 500 kills, seed from the clock)
# Each kill lands 50-450 ms into a round of acks=all producing; after the last one every
# acknowledged record must be present exactly once, in order. A failure prints the seed, so
# the same kill points can be replayed with perf/soak.sh KILLS SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-500}"
seed="${2:-$(date +%s)}"
echo "crash soak: $kills kills, seed $seed"
SLUICE_CRASH_KILLS="$kills" SLUICE_CRASH_SEED="$seed" \
    cargo test --release --test crash_recovery -- --nocapture
