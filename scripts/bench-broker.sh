#!/usr/bin/env bash
# A fixed tiny auto-cnn search through a local `nats-server -js`, with 1 worker and then with 2
# workers (one libtorch thread each), against the same search in-process (one thread): the wall
# time of each, and the broker's overhead per task (from the moment the task could start,
# i.e. it was published or its worker became free, to its result at the search, minus the
# training seconds the worker measured), from the `broker_overhead_s` of the log records.
#   scripts/bench-broker.sh
#   POPULATION=8 EPOCHS=3 scripts/bench-broker.sh
#   SUBSET=300 POPULATION=2 GENERATIONS=0 EPOCHS=1 scripts/bench-broker.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install nats-server)"; exit 1; }
DEVICE=${DEVICE:-cpu}
SEARCH="auto-cnn search -q --subset ${SUBSET:-1000} --population ${POPULATION:-6} --generations ${GENERATIONS:-2} --epochs ${EPOCHS:-2} --filters ${FILTERS:-8,16} --seed 3 --device $DEVICE --precision fp32"
tmp=$(mktemp -d)
PORT=$((20000 + RANDOM % 20000))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
waitport() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; echo "no server"; exit 1; }

now() { date +%s.%N; }
summary() {
  python3 - "$1" "$2" "$3" <<'P'
import json, sys
d, label, wall = sys.argv[1], sys.argv[2], float(sys.argv[3])
ev = [r for r in map(json.loads, open(f"{d}/log.jsonl")) if r["kind"] == "evaluation" and not r["cached"]]
train = sum(r["seconds"] for r in ev)
ov = sorted(r["broker_overhead_s"] * 1000 for r in ev if "broker_overhead_s" in r)
line = f"{label:<22} wall {wall:6.1f} s, {len(ev)} networks trained, {train:5.1f} s of training"
if ov:
    line += f"; broker overhead per task: median {ov[len(ov)//2]:.1f} ms, max {ov[-1]:.1f} ms"
print(line)
P
}

OMP_NUM_THREADS=1 t0=$(now)
OMP_NUM_THREADS=1 "$BIN" $SEARCH --out "$tmp/local" >/dev/null
summary "$tmp/local" "in-process (1 thread)" "$(echo "$(now) - $t0" | bc)"

for n in 1 2; do
  store="$tmp/store$n"
  nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$store" >/dev/null 2>&1 & pids+=($!)
  waitport "$PORT"
  for w in $(seq "$n"); do
    "$BIN" worker --broker "nats://127.0.0.1:$PORT" --device "$DEVICE" --threads 1 --name "w$w" 2>/dev/null & pids+=($!)
  done
  sleep 0.5
  t0=$(now)
  "$BIN" $SEARCH --broker "nats://127.0.0.1:$PORT" --out "$tmp/n$n" >/dev/null
  summary "$tmp/n$n" "$n worker(s) via NATS" "$(echo "$(now) - $t0" | bc)"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  PORT=$((PORT + 1))
done
