#!/usr/bin/env bash
# Two "hosts" on this machine: network namespaces es-mh-a and es-mh-b, each joined to the root
# namespace by its own veth pair (10.231.77.0/30 and 10.231.77.4/30). PostgreSQL is reached from
# them only through the root side's veth addresses (a socat forwarder bound to each, to the
# server on 127.0.0.1). The orders system runs split between them, with two pipelines: host A
# holds pipeline 0 and stands by for pipeline 1, host B the other way round. After the first
# orders, every process of host A is killed with SIGKILL; host B's standbys take over pipeline
# 0 and every order is reserved and paid exactly once. Host B then stops on SIGTERM (exit 0).
# Needs root, iproute2 and socat; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${ES_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
PG_REST="${PG_URL#*@}"          # 127.0.0.1:5432/test
PG_USER="${PG_URL%%@*}"         # postgres://postgres
PG_PORT="${PG_REST#*:}"; PG_PORT="${PG_PORT%%/*}"
PG_DB="${PG_REST#*/}"
A=es-mh-a; B=es-mh-b
A_ROOT=10.231.77.1; A_HOST=10.231.77.2
B_ROOT=10.231.77.5; B_HOST=10.231.77.6
export ORDERS_NAMESPACE="mh$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')_"
BIN=target/debug/examples/orders
LOG=$(mktemp -d)
pids=()

cleanup() {
    set +e
    for ns in $A $B; do
        ip netns pids $ns 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    ip link del es-mh-a0 2>/dev/null
    ip link del es-mh-b0 2>/dev/null
    ip netns del $A 2>/dev/null
    ip netns del $B 2>/dev/null
    rm -rf "$LOG"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "multihost: needs root (network namespaces)" >&2; exit 1; }
command -v socat >/dev/null || { echo "multihost: needs socat" >&2; exit 1; }

cargo build --all-features --example orders

host() { # name, veth prefix, root address, host address
    ip netns add "$1"
    ip link add "$2"0 type veth peer name "$2"1
    ip link set "$2"1 netns "$1"
    ip addr add "$3"/30 dev "$2"0
    ip link set "$2"0 up
    ip netns exec "$1" ip addr add "$4"/30 dev "$2"1
    ip netns exec "$1" ip link set "$2"1 up
    ip netns exec "$1" ip link set lo up
    # PostgreSQL for this host: only at the root side of its own veth.
    socat TCP-LISTEN:"$PG_PORT",bind="$3",reuseaddr,fork TCP:127.0.0.1:"$PG_PORT" &
    pids+=($!)
}
host $A es-mh-a $A_ROOT $A_HOST
host $B es-mh-b $B_ROOT $B_HOST
sleep 0.5
# The hosts cannot reach the server at loopback: only through their veth.
if ip netns exec $A bash -c "exec 3<>/dev/tcp/127.0.0.1/$PG_PORT" 2>/dev/null; then
    echo "multihost: FAIL: host A reaches 127.0.0.1:$PG_PORT" >&2; exit 1
fi
URL_A="$PG_USER@$A_ROOT:$PG_PORT/$PG_DB"
URL_B="$PG_USER@$B_ROOT:$PG_PORT/$PG_DB"

on() { # host, url, args...
    local ns=$1 url=$2; shift 2
    ip netns exec "$ns" env DB_URI="$url" ORDERS_NAMESPACE="$ORDERS_NAMESPACE" "$BIN" --runner processes --pipelines 2 "$@"
}
# In the background: the job is the supervisor itself (exec), so that $! is its pid.
start_on() { # log, host, url, args...
    local log=$1 ns=$2 url=$3; shift 3
    exec >"$log" 2>&1 ip netns exec "$ns" env DB_URI="$url" ORDERS_NAMESPACE="$ORDERS_NAMESPACE" "$BIN" --runner processes --pipelines 2 "$@"
}

# Holders first (A: pipeline 0, B: pipeline 1), then each host's standbys for the other.
start_on "$LOG/a0" $A "$URL_A" --role supervisor --run-pipelines 0 & pids+=($!)
start_on "$LOG/b1" $B "$URL_B" --role supervisor --run-pipelines 1 & B1=$!; pids+=($B1)
on $A "$URL_A" --role client --orders 20 >"$LOG/c1" 2>&1 || { cat "$LOG"/*; exit 1; }
cat "$LOG/c1"
start_on "$LOG/a1" $A "$URL_A" --role supervisor --run-pipelines 1 & pids+=($!)
start_on "$LOG/b0" $B "$URL_B" --role supervisor --run-pipelines 0 & B0=$!; pids+=($B0)
sleep 3

echo "multihost: SIGKILL to every process of host A: $(ip netns pids $A | tr '\n' ' ')"
ip netns pids $A | xargs -r kill -KILL
killed=$(date +%s.%N)
on $B "$URL_B" --role client --orders 20 --expect-total 40 >"$LOG/c2" 2>&1 || { cat "$LOG"/*; exit 1; }
cat "$LOG/c2"
echo "multihost: host B finished the work $(echo "$(date +%s.%N) - $killed" | bc) s after the SIGKILL"

kill -TERM $B0 $B1
for p in $B0 $B1; do
    if ! wait "$p"; then echo "multihost: FAIL: host B's supervisor $p did not exit 0"; cat "$LOG"/b*; exit 1; fi
done
echo "multihost: ok"
