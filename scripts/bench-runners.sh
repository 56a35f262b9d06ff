#!/usr/bin/env bash
# The orders workload (orders | reservations | orders | payments | orders, N orders) on
# PostgreSQL: es with one OS process per application and pipeline (1, 2, 4 pipelines), es in
# one process (the concurrent runner, 1 pipeline), and the reference Python library's `orders`
# workload (single-threaded runner, as it offers; PEER_N orders, default N), alternating,
# ROUNDS times; prints medians
# and ratios. Usage: scripts/bench-runners.sh [N] ; PEER_PY names the peer's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}
rounds=${ROUNDS:-3}
url=${ES_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
peer_py=${PEER_PY:-../shared/peers/.venv/bin/python}
peer=../shared/peers/python_eventsourcing_7_1_1.py
out=$(mktemp -d)
cargo build -q --release --features postgres --example orders
es() { DB_URI="$url" ./target/release/examples/orders --runner processes --system orders --orders "$n" --poll-ms 100 "$@"; }
for _ in $(seq "$rounds"); do
    if [ -x "$peer_py" ]; then
        # The peer runs N/10 orders for --n N.
        ES_POSTGRES_URL="$url" "$peer_py" "$peer" --backend postgres --n $((${PEER_N:-$n} * 10)) --workloads orders 2>/dev/null \
            | grep '^RESULT' | sed 's/RESULT orders /RESULT orders_python_single_threaded /' >> "$out/r.txt" || true
    fi
    es --pipelines 1 --in-process | tee -a "$out/log" | grep '^RESULT' >> "$out/r.txt"
    for p in 1 2 4; do
        es --pipelines "$p" | tee -a "$out/log" | grep -E '^RESULT' >> "$out/r.txt"
    done
done
grep '^cpu' "$out/log" | sort | uniq -c || true
python3 - "$out/r.txt" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    _, w, _b, count, secs, per = line.split()
    rows[w].append(float(per))
py = statistics.median(rows.get("orders_python_single_threaded", [0])) or None
print(f"{'workload':38} {'orders/s (median)':>18} {'runs':>5} {'vs python':>10}")
for w, v in sorted(rows.items()):
    m = statistics.median(v)
    ratio = f"{m / py:.1f}x" if py else "-"
    print(f"{w:38} {m:18,.0f} {len(v):5} {ratio:>10}")
PY
rm -rf "$out"
