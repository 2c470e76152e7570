#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds guts-hub and guts-bench (release), installs the Node peers
# (../shared/peers) into target/peers, then runs every scenario against guts-hub, `ws` and
# socket.io with the hub pinned to CPU 0 and the load generator to CPU 1, 3 repetitions each.
# Loopback only; every run is bounded in time. Usage: scripts/bench.sh [quick]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PEERS_SRC=${PEERS_SRC:-$ROOT/../shared/peers}
OUT=${OUT:-target/bench-results}
mkdir -p "$OUT" target/peers
ulimit -n 20000 || true

cargo build --release -p guts-realtime-examples --bin guts-hub --bin guts-bench
if [ ! -d target/peers/node_modules ]; then
  cp "$PEERS_SRC"/*.js "$PEERS_SRC"/package*.json target/peers/
  (cd target/peers && npm ci --no-audit --no-fund --loglevel=error)
fi
B="taskset -c 1 target/release/guts-bench"
REPS=3; SECS=10
if [ "${1:-}" = quick ]; then REPS=1; SECS=3; fi

run() { echo "== $*"; $B "$@" --reps "$REPS" | tee -a "$OUT/$1.txt"; }
run floor --n 1000
run fanout --n 1000 --rate 200 --secs "$SECS"
# The same with a 16 ms write interval (frames queued meanwhile share one write): less CPU per
# delivery for the same p99 on this machine (docs/benchmarks.md, fourth round).
GUTS_HUB_WRITE_INTERVAL_MS=16 run fanout --n 1000 --rate 200 --secs "$SECS" --hubs guts
run fanout --n 100 --rate 2000 --secs "$SECS"
run fanout --n 10000 --rate 10 --secs "$SECS"
run channels --n 10000 --rate 10000 --secs "$SECS"
run idle --n 10000 --secs 5
run storm --n 5000
run slow --n 10 --flood 20000 --hubs guts,ws
cargo bench -p guts-realtime --bench hub -- --warm-up-time 1 --measurement-time 5 | tee "$OUT/criterion.txt"
