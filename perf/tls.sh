#!/usr/bin/env bash
# S1 (100-byte records, acks=1, 512 KiB batches) and S5 (consume from cache) over plaintext
# and over TLS, against one broker with a PLAINTEXT and an SSL listener; the broker's CPU per
# record beside each, and TLS's share of plaintext throughput (issue 15's target: >= 60%).
#   perf/tls.sh [SLUICE_BINARY] [RECORDS] [OUT_DIR]   (default target/release/sluice, 10M)
# The broker is one shard on CPU 0, the bench on CPU 1, as in perf/run.sh. The certificates
# (a CA and a broker certificate for 127.0.0.1) are made with openssl in a temporary dir.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/sluice}"
records="${2:-10000000}"
out="${3:-perf/results/$(date +%Y-%m-%d)-tls}"
mkdir -p "$out"
ticks="$(getconf CLK_TCK)"
plain_port=29292
tls_port=29293
work="$(mktemp -d /var/tmp/sluice-tls.XXXXXX)"
trap 'kill "$broker" 2>/dev/null && wait "$broker"; rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=perf CA" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/ext" -out "$work/broker.crt" 2>/dev/null
cat "$work/broker.crt" "$work/broker.key" >"$work/keystore.pem"
cat >"$work/sluice.toml" <<EOF
listeners = "PLAINTEXT://127.0.0.1:$plain_port,SSL://127.0.0.1:$tls_port"
"ssl.keystore.location" = "$work/keystore.pem"
EOF

"$bin" serve --config "$work/sluice.toml" --cores 0 --metrics-listen "" --data-dir "$work/data" \
    >"$out/broker.log" 2>&1 &
broker=$!
for _ in $(seq 1 600); do
    grep -q "sluice listening on" "$out/broker.log" && break
    sleep 0.1
done

cpu_seconds() {
    awk -v ticks="$ticks" '{ printf "%.3f", ($14 + $15) / ticks }' "/proc/$broker/stat"
}

# NAME PORT SECURITY_ARGS... -- BENCH_ARGS...: one bench run with the broker's CPU beside it.
run() {
    local name="$1" port="$2"
    shift 2
    local security=()
    while [ "$1" != "--" ]; do
        security+=("$1")
        shift
    done
    shift
    local before after
    before="$(cpu_seconds)"
    "$bin" bench -b "127.0.0.1:$port" "${security[@]}" --cpus 1 --json "$@" >"$out/$name.json"
    after="$(cpu_seconds)"
    jq --argjson before "$before" --argjson after "$after" \
        '. + {broker_cpu_seconds: ($after - $before),
              broker_ns_per_record: (($after - $before) * 1e9 / ([.produced, .consumed] | max))}' \
        "$out/$name.json" >"$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name.json"
}

tls=(--security-protocol SSL --ca "$work/ca.pem")
for round in plain tls; do
    if [ "$round" = plain ]; then port=$plain_port; args=(); else port=$tls_port; args=("${tls[@]}"); fi
    run "s1-$round" "$port" "${args[@]}" -- produce --topic "s1-$round" --partitions 1 \
        --records "$records" --acks 1 --batch-size 524288
    run "s5-$round" "$port" "${args[@]}" -- consume --topic "s1-$round" --records "$records"
done

python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
r = {name: json.load(open(f"{out}/{name}.json")) for name in ["s1-plain", "s1-tls", "s5-plain", "s5-tls"]}
lines = []
for scenario in ["s1", "s5"]:
    plain, tls = r[f"{scenario}-plain"], r[f"{scenario}-tls"]
    share = tls["records_per_second"] / plain["records_per_second"]
    for name, x in [("plaintext", plain), ("TLS", tls)]:
        lines.append(f"{scenario.upper()} {name:>9}: {x['records_per_second']:>12,.0f} records/s, "
                     f"{x['broker_ns_per_record']:6.0f} ns broker CPU per record")
    lines.append(f"{scenario.upper()} TLS / plaintext: {share:.0%}")
print("\n".join(lines))
open(f"{out}/summary.txt", "w").write("\n".join(lines) + "\n")
EOF
