#!/usr/bin/env bash
# The orders workload of the reference Python library's peer script, on es's runners and on the
# peer, side by side in one run: the system `orders | reservations | orders | payments |
# orders`, N orders saved into `orders`, each one reserved and paid by the system.
#
#   scripts/bench-runners.sh [N] [backends...]      (N = 300; backends: postgres, or any of
#                                                    memory sqlite-file postgres mysql)
#
# Per backend and round (ROUNDS, default 3), alternating, each timed from the first save until
# every order is processed:
#   python      the peer's `orders` workload (its single-threaded runner): N orders. The peer
#               runs --n/10 orders, so it is given --n 10*N: both sides run N orders.
#   es single   es's single-threaded runner (`bench --workloads orders`, also --n 10*N)
#   es threads  es's concurrent runner in one process, 1 pipeline (`orders --in-process`)
#   es procs P  one OS process per application and pipeline, P pipelines (PIPELINES, default
#               "1 2 4"; not in memory), orders round-robin over the pipelines
# Prints per row: median orders/s, the median's ratio to the peer's median, and CPU per order:
# the client side's (every process of the run: user + system, from getrusage of the waited-for
# process tree, start-up included) and, on PostgreSQL, the database server's (the backends
# serving the run, found by the run's own application_name, from /proc/<pid>/stat).
# PEER_PY names the peer's Python (default /tmp/peervenv/bin/python, then the shared .venv),
# PEER_SCRIPT the peer script (default: found in ../shared/peers or ../../shared/peers);
# without them the script fails; NO_PEER=1 runs es alone.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
shift || true
backends=${*:-postgres}
rounds=${ROUNDS:-3}
pipelines=${PIPELINES:-1 2 4}
pg_url=${ES_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
my_url=${ES_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
# ../shared from the main checkout, ../../shared from a worktree under /work/wt (the peer not
# found there is why its line once went missing from this table).
peer=${PEER_SCRIPT:-}
for d in ../shared/peers ../../shared/peers; do
    [ -z "$peer" ] && [ -f "$d/python_eventsourcing_7_1_1.py" ] && peer=$(cd "$d" && pwd)/python_eventsourcing_7_1_1.py
done
peer_py=${PEER_PY:-}
for c in /tmp/peervenv/bin/python ../shared/peers/.venv/bin/python ../../shared/peers/.venv/bin/python; do
    [ -z "$peer_py" ] && [ -x "$c" ] && peer_py=$c
done
[ -n "$peer" ] || peer_py=''

[ "${NO_PEER:-}" = 1 ] && peer_py=''
if [ -z "$peer_py" ] || [ ! -x "$peer_py" ]; then
    [ "${NO_PEER:-}" = 1 ] || { echo "no peer (set PEER_PY and PEER_SCRIPT, or NO_PEER=1)" >&2; exit 1; }
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build -q --release --all-features --example orders --example bench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# The CPU (user + system, seconds) of a command and every process it waited for, on fd 3.
cpu_of() {
    python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f" % (u.ru_utime + u.ru_stime), file=open(3, "w", closefd=False))
sys.exit(r.returncode)' "$@"
}

# Samples, until killed, the CPU of the PostgreSQL backends whose application_name is $1;
# prints their total (seconds) when it ends.
pg_sampler() {
    "$peer_py" -c '
import os, signal, sys, time
import psycopg2
tag, url = sys.argv[1], sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
seen = {}
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
conn = psycopg2.connect(url.replace("postgres://", "postgresql://", 1), application_name="sampler")
conn.autocommit = True
cur = conn.cursor()
while True:
    cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (tag,))
    for (pid,) in cur.fetchall():
        try:
            f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            seen[pid] = (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    if stop:
        break
    time.sleep(0.1)
print("%.3f" % sum(seen.values()))' "$1" "$pg_url" > "$out/server" &
    sampler=$!
}

# run <backend> <label> <command...>: runs it (the database server sampled on PostgreSQL),
# appends "label orders seconds per_s cpu_s server_cpu_s" to $out/rows.
run() {
    local backend=$1 label=$2 tag
    shift 2
    tag="bench_$$_$RANDOM"
    export APP_TAG=$tag
    [ "$backend" = postgres ] && pg_sampler "$tag"
    if ! cpu_of "$@" > "$out/log" 2>&1 3> "$out/cpu"; then
        echo "FAILED: $label: $*" >&2
        tail -20 "$out/log" >&2
        [ -n "${sampler:-}" ] && kill "$sampler"
        exit 1
    fi
    local server=-
    if [ -n "${sampler:-}" ]; then
        kill -TERM "$sampler"
        wait "$sampler" || true
        sampler=
        server=$(cat "$out/server")
    fi
    local result
    result=$(grep '^RESULT' "$out/log" | tail -1)
    if [ -z "$result" ]; then
        echo "FAILED: no RESULT line from $label: $*" >&2
        tail -20 "$out/log" >&2
        exit 1
    fi
    # RESULT <workload> <backend> <count> <seconds> <per_second>
    read -r _ _ _ count secs per <<< "$result"
    echo "$backend|$label|$count|$secs|$per|$(cat "$out/cpu")|$server" | tee -a "$out/rows"
}

for b in $backends; do
    for r in $(seq "$rounds"); do
        case $b in
            memory) es_url=memory: ; py_b=popo ;;
            sqlite-file) es_url="sqlite://$out/orders-$r-$RANDOM.db" ; py_b=sqlite-file ;;
            postgres) es_url="$pg_url" ; py_b=postgres ;;
            mysql) es_url="$my_url" ; py_b=mysql ;;
            *) echo "unknown backend $b" >&2; exit 1 ;;
        esac
        # On PostgreSQL every connection of a run carries the run's tag ($APP_TAG, set by
        # `run`) as its application_name; followers poll every 100 ms behind NOTIFY there, and
        # every 20 ms elsewhere (POLL_MS overrides).
        sfx='' poll=${POLL_MS:-20}
        [ "$b" = postgres ] && sfx='?application_name=$APP_TAG' && poll=${POLL_MS:-100}
        envs="ES_POSTGRES_URL=\"$pg_url?application_name=\$APP_TAG\" ES_MYSQL_URL='$my_url'"
        if [ -n "$peer_py" ] && [ -x "$peer_py" ]; then
            run "$b" python sh -c "$envs '$peer_py' '$peer' --backend $py_b --n $((n * 10)) --workloads orders"
        fi
        run "$b" "es single-threaded" sh -c \
            "$envs ./target/release/examples/bench --backend $b --n $((n * 10)) --workloads orders"
        es() {
            local label=$1
            shift
            run "$b" "$label" sh -c "DB_URI=\"$es_url$sfx\" ./target/release/examples/orders \
                --runner processes --system orders --orders $n --poll-ms $poll $*"
        }
        es "es threads p1" --pipelines 1 --in-process
        if [ "$b" != memory ]; then
            for p in $pipelines; do
                es "es procs p$p" --pipelines "$p"
            done
        fi
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/rows" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    b, label, count, secs, per, cpu, server = line.strip().split("|")
    if (b, label) not in rows:
        order.append((b, label))
    rows[(b, label)].append((float(per), float(cpu) / int(count), None if server == "-" else float(server) / int(count)))
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
print()
print("| backend | runner | orders/s (median) | runs | vs Python | client CPU per order | server CPU per order |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for b, label in order:
    v = rows[(b, label)]
    m = med([x[0] for x in v])
    py = rows.get((b, "python"))
    ratio = f"{m / med([x[0] for x in py]):.1f}x" if py else "-"
    cpu = med([x[1] for x in v])
    srv = med([x[2] for x in v])
    print(f"| {b} | {label} | {m:,.1f} | {len(v)} | {ratio} | {cpu * 1000:.2f} ms | {'-' if srv is None else f'{srv * 1000:.2f} ms'} |")
PY
