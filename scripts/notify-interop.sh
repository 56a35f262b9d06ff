#!/usr/bin/env bash
# Wire compatibility with the reference library, both ways, over real HTTP on 127.0.0.1:
#   1. the reference client (RemoteNotificationLog + NotificationLogReader) reads an es log
#      served by examples/notification_server;
#   2. es (examples/notification_follower) reads a log served by the reference library's
#      NotificationLogView.
# PEER_PY names a Python with eventsourcing 7.1.1 (default ../shared/peers/.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
peer_py=${PEER_PY:-../shared/peers/.venv/bin/python}
es_port=${ES_PORT:-18601}
py_port=${PY_PORT:-18602}
n=47
cargo build -q --features http --example notification_server --example notification_follower
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

./target/debug/examples/notification_server --port "$es_port" --events "$n" --every-ms 0 --section-size 20 >/dev/null &
pids+=($!)
sleep 1
"$peer_py" scripts/notify_interop_peer.py read "http://127.0.0.1:$es_port/notifications" "$n"

"$peer_py" scripts/notify_interop_peer.py serve "$py_port" "$n" >/dev/null &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$py_port/current/" >/dev/null && break; sleep 0.2; done
out=$(./target/debug/examples/notification_follower --url "http://127.0.0.1:$py_port" --max "$n")
echo "$out" | tail -1
echo "$out" | grep -q "read $n notifications; position $n"
echo "$out" | sed -n 2p | grep -q 'AggregateRoot.Created'
echo "interop ok"
