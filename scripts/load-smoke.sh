#!/usr/bin/env bash
# Small runs of the load tools (debug builds), so CI proves on a fresh machine that they
# still start every process, reach every client and count every delivery. The figures in
# BENCHMARKS.md come from the larger release runs listed there, not from these.
#   - fanout: our hub and the naive baseline, 200 clients, 5 events;
#   - fanout --target scale: 1 then 2 hub replicas through a redis-server it starts;
#   - gateway-latency: discord-sim -> worker -> hub -> clients, beside the direct path.
# Fails when a run loses or duplicates a delivery. Needs: redis-server, python3.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="$ROOT/out/load-smoke"
mkdir -p "$OUT"

cargo build -q -p benches -p api-bin -p worker-bin --bins

# check NAME: reads the tool's output on stdin, keeps it in $OUT/NAME.log, and checks the
# JSON summary on its last line.
check() {
    tee "$OUT/$1.log" | tail -n 1 | python3 scripts/load-smoke-check.py "$1"
}

common=(--mode steady --clients 200 --events 5 --rate 10 --settle-s 0 --max-seconds 180)
target/debug/fanout --target both "${common[@]}" | check fanout-both
target/debug/fanout --target scale "${common[@]}" | check fanout-scale
target/debug/gateway-latency --rate 100 --seconds 2 --clients 5 | check gateway-latency
