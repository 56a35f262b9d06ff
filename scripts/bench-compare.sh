#!/usr/bin/env bash
# Runs the es bench and the reference Python library's peer workloads side by side, backend by
# backend, and prints one table with the ratios. Usage:
#   scripts/bench-compare.sh [N] [backends...]
# ROUNDS (default 3) runs es and the peer that many times, alternating, per backend; the table
# gives each side's median, so one noisy run on a shared machine does not decide a ratio.
# PEER_PY names the peer's Python (default ../shared/peers/.venv/bin/python); see BENCHMARKS.md
# for setting it up. ES_POSTGRES_URL / ES_MYSQL_URL default to the machine's servers.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
shift || true
backends=${*:-memory sqlite-memory sqlite-file postgres mysql}
peer_py=${PEER_PY:-../shared/peers/.venv/bin/python}
peer=../shared/peers/python_eventsourcing_7_1_1.py
out=$(mktemp -d)
cargo build -q --release --all-features --example bench
rounds=${ROUNDS:-3}
for b in $backends; do
  for _ in $(seq "$rounds"); do
    pb=$b; [ "$b" = memory ] && pb=popo
    raw=""
    case $b in postgres|mysql|sqlite-*) raw=",raw_save_new,raw_append_one,raw_replay";; esac
    [ "$b" = postgres ] && raw="$raw,raw_read_log,paired"
    ./target/release/examples/bench --backend "$b" --n "$n" \
        --workloads "save_new,append_one,replay,read_log,read_log_sections,save_new_enc,replay_enc,replay_snap,orders$raw" \
        | grep '^RESULT' | sed "s/ $b / $pb /" >> "$out/es.txt"
    if [ -x "$peer_py" ]; then
        "$peer_py" "$peer" --backend "$pb" --n "$n" --workloads app,orders 2>/dev/null | grep '^RESULT' >> "$out/py.txt" || true
    fi
  done
done
touch "$out/py.txt"
python3 - "$out/es.txt" "$out/py.txt" <<'PY'
import statistics
import sys


def medians(path):
    runs = {}
    for line in open(path):
        _, w, b, n, s, r = line.split()
        runs.setdefault((w, b), []).append(float(r))
    return {k: statistics.median(v) for k, v in runs.items()}


es = medians(sys.argv[1])
py = medians(sys.argv[2])
backends = []
for (_, b) in es:
    if b not in backends:
        backends.append(b)
print("| backend | workload | es per s | Python 7.1.1 per s | es / Python | raw driver per s | es / raw |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for b in backends:
    for w in ["save_new", "append_one", "replay", "read_log", "read_log_sections", "save_new_paired", "save_new_numbered", "append_one_paired", "append_one_numbered", "orders", "save_new_enc", "replay_enc", "replay_snap"]:
        if (w, b) not in es:
            continue
        e = es[(w, b)]
        base = w.replace("_enc", "").replace("_snap", "")
        p = py.get((base, b)) if w == base else None
        r = es.get(("raw_" + w.replace("_numbered", "_paired"), b))
        cells = [b, w, f"{e:,.0f}",
                 f"{p:,.0f}" if p else "", f"{e/p:.1f}x" if p else "",
                 f"{r:,.0f}" if r else "", f"{100*e/r:.0f}%" if r else ""]
        print("| " + " | ".join(cells) + " |")
PY
