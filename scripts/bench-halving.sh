#!/usr/bin/env bash
# Successive halving against full training, side by side at the budget of the comparison with
# the auto-cnn 1.0 package (mnist-10k, population 4, 2 generations, 1 epoch per network, 80% of
# the training images for training): the same searches with --fidelity full and --fidelity
# halving, one seed after the other. Prints per seed and fidelity the wall time, the networks
# evaluated (trained / from the cache) and the best network's test accuracy (result.json), then
# the means and their ratio. Run it on a quiet machine: wall times are what it compares.
#   scripts/bench-halving.sh                          # seeds 1 2 3, CPU
#   SEEDS=1 POPULATION=8 GENERATIONS=4 EPOCHS=3 scripts/bench-halving.sh   # a longer budget
#   ETA=2 RUNGS=4 scripts/bench-halving.sh
#   FIDELITIES=halving THREADS=1 scripts/bench-halving.sh   # one fidelity, one thread a network
#   SUBSET=300 POPULATION=2 GENERATIONS=0 FILTERS=8 SEEDS=1 scripts/bench-halving.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/auto-cnn}
[ -x "$BIN" ] || cargo build --release --quiet
SEEDS=${SEEDS:-1 2 3}
DEVICE=${DEVICE:-cpu}
DATASET=${DATASET:-mnist-10k}
POPULATION=${POPULATION:-4}
GENERATIONS=${GENERATIONS:-2}
EPOCHS=${EPOCHS:-1}
ETA=${ETA:-3}
RUNGS=${RUNGS:-3}
FILTERS=${FILTERS:-}
SUBSET=${SUBSET:-}
FIDELITIES=${FIDELITIES:-full halving}
THREADS=${THREADS:-}
extra=()
[ -n "$THREADS" ] && extra+=(--threads "$THREADS")
[ -n "$FILTERS" ] && extra+=(--filters "$FILTERS")
[ -n "$SUBSET" ] && extra+=(--subset "$SUBSET")
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "auto-cnn search --dataset $DATASET --population $POPULATION --generations $GENERATIONS --epochs $EPOCHS --val-fraction 0.2 ${extra[*]} on $DEVICE ($(nproc) cores): --fidelity full against --fidelity halving --eta $ETA --rungs $RUNGS"
printf '%-5s %-8s %9s %9s %6s %7s  %-36s %9s\n' seed fidelity wall_s cpu_s evals trained best test_acc
rows="$OUT/rows.tsv"
: > "$rows"
for seed in $SEEDS; do
  for fidelity in $FIDELITIES; do
    run="$OUT/$fidelity-seed$seed"
    rm -rf "$run"
    start=$(date +%s.%N)
    "$BIN" search -q --dataset "$DATASET" --population "$POPULATION" --generations "$GENERATIONS" \
      --epochs "$EPOCHS" --val-fraction 0.2 --seed "$seed" --device "$DEVICE" \
      --fidelity "$fidelity" --eta "$ETA" --rungs "$RUNGS" --out "$run" "${extra[@]}" >/dev/null
    end=$(date +%s.%N)
    python3 - "$run/result.json" "$seed" "$fidelity" "$start" "$end" "$rows" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
seed, fidelity = sys.argv[2], sys.argv[3]
wall = float(sys.argv[5]) - float(sys.argv[4])
b = r["best"]
print(f'{seed:<5} {fidelity:<8} {wall:9.1f} {r["cpu_s"]:9.1f} {r["evaluations"]:6d} {r["trained"]:7d}  '
      f'{b["genome"]:<36} {b["test_acc"]:9.4f}')
with open(sys.argv[6], "a") as f:
    f.write(f'{fidelity}\t{wall}\t{b["test_acc"]}\t{r["cpu_s"]}\n')
P
  done
done
python3 - "$rows" <<'P'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
mean = {}
for fid in ("full", "halving"):
    if not any(r[0] == fid for r in rows):
        continue
    walls = [float(r[1]) for r in rows if r[0] == fid]
    accs = [float(r[2]) for r in rows if r[0] == fid]
    cpus = [float(r[3]) for r in rows if r[0] == fid]
    mean[fid] = (sum(walls) / len(walls), sum(accs) / len(accs), sum(cpus) / len(cpus))
    print(f'mean  {fid:<8} {mean[fid][0]:9.1f} {mean[fid][2]:9.1f} {"":6} {"":7}  {"":36} {mean[fid][1]:9.4f}')
if len(mean) < 2:
    sys.exit(0)
(fw, fa, fc), (hw, ha, hc) = mean["full"], mean["halving"]
print(f'halving against full: {fw / hw:.2f}x faster (mean wall time {fw:.1f} s / {hw:.1f} s; '
      f'CPU time {fc / hc:.2f}x), best test accuracy {ha - fa:+.4f} (mean {ha:.4f} against {fa:.4f})')
P
