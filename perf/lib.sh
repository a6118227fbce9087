# Shared by the perf scripts that start their own broker (source it; not run on its own).

# Starts BIN as one shard on CPU 0 listening on 127.0.0.1:PORT, with its metrics on METRICS
# (host:port, or "" for none), data in DATA and its log in LOG; EXTRA_ARGS are passed on.
# Sets `broker` to its pid and returns once it is listening (at most 60 s).
perf_start_broker() {
    local bin="$1" port="$2" metrics="$3" data="$4" log="$5"
    shift 5
    "$bin" serve "$@" --cores 0 --listen "127.0.0.1:$port" --metrics-listen "$metrics" \
        --data-dir "$data" >"$log" 2>&1 &
    broker=$!
    for _ in $(seq 1 600); do
        grep -q "sluice listening on" "$log" && return
        sleep 0.1
    done
    echo "the broker did not start: $(cat "$log")" >&2
    return 1
}

# Builds perf/one-record-latency (librdkafka) and prints the path of its binary.
perf_latency_client() {
    local dir=perf/one-record-latency
    (cd "$dir" && cargo build --release --quiet)
    echo "${CARGO_TARGET_DIR:-$dir/target}/release/one-record-latency"
}

# The broker's CPU seconds so far (user + system, from /proc/$broker/stat).
perf_cpu_seconds() {
    awk -v ticks="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / ticks }' "/proc/$broker/stat"
}
