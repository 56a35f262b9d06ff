#!/usr/bin/env python3
"""Where an order's time goes: buckets a `perf script` of the orders workload.

    perf record -F 4000 -e cpu-clock --call-graph dwarf,16384 -o orders.perf \
        target/release/examples/bench --backend memory --n 100000 --workloads orders --runtime current
    perf script -i orders.perf | scripts/profile-orders.py

Each sample goes to the first bucket matched walking its stack from the leaf up, so a bucket is
inclusive of what it calls (its allocations too), except SHA-256 and page faults, which are
counted where they happen. Also prints the allocator's own share (malloc/free frames at the
leaf), whichever bucket they fell in.
"""
import collections
import re
import sys

BUCKETS = [
    ("SHA-256 (event hashes, write and verify)", r"sha2::|integrity::digest|integrity::hex"),
    ("page faults (the in-memory store growing)", r"exc_page_fault"),
    ("read: decode + verify stored events (mapper, state.rs)",
     r"Mapper::check|StateRef::parse|decode_parsed|decode_data|parse_compact|verify_compact|Mapper::from_item|Mapper::apply_item"),
    ("event creation + encode (trigger, JSON, canonical form)",
     r"canonical_digest|write_header|Compact::write|Event<P>::new_with|Mapper::to_item|aggregate::create|aggregate::trigger|serde_json::ser"),
    ("record manager: insert events + tracking rows, fetch notifications",
     r"InMemoryRecordManager|record::memory|record::sqlite|record::postgres|record::mysql|sqlx|rusqlite"),
    ("telemetry (metrics, tracing)", r"telemetry::count|telemetry::record|metrics::|tracing::"),
    ("save path (application: batch, causal deps)", r"save_tracked_in|EventStore::write_batch|causal::"),
    ("replay in the policy (ctx.get: repository, store)", r"Repository<|replay_into|replay_counted|ProcessContext::get"),
    ("policy dispatch + handlers (boxed futures, orders.rs)", r"es_examples::orders|Policy::on|Policy::handle|policy::"),
    ("runner: follow, pull, prompt, positions", r"pull_follow|RunnerBuilder::start|process::runner|ProcessApplication|process::application"),
]
ALLOC = re.compile(r"malloc|free|_int_|unlink_chunk|__rust_alloc|__rust_dealloc|__rdl_")
compiled = [(name, re.compile(p)) for name, p in BUCKETS]
counts = collections.Counter()
alloc = 0
total = 0
stack = []


def flush():
    global alloc, total
    if not stack:
        return
    total += 1
    if ALLOC.search(stack[0]):
        alloc += 1
    for frame in stack:
        for name, rx in compiled:
            if rx.search(frame):
                counts[name] += 1
                return
    counts["other (start-up, tokio, libc)"] += 1


for line in sys.stdin:
    if not line.strip():
        flush()
        stack = []
    elif line.startswith((" ", "\t")):
        parts = line.strip().split(" ", 1)
        stack.append(parts[1] if len(parts) > 1 else parts[0])
flush()
print(f"{total} samples")
print("| where | share |")
print("| --- | ---: |")
for name, c in counts.most_common():
    print(f"| {name} | {100 * c / total:.1f}% |")
print(f"| (allocator's own frames, in the buckets above) | {100 * alloc / total:.1f}% |")
