#!/usr/bin/env bash
# The size cap and the Pareto front of auto-cnn at the side-by-side budget (mnist-10k,
# population 4, 2 generations, 1 epoch per network, 80% of the training images for training):
# per seed, a search with --max-params (default 100000) and one with --objectives
# accuracy,params. Prints per search the wall and CPU seconds, the networks evaluated and the
# best network (genome, parameters, test accuracy); for the capped search the largest network
# it evaluated, for the two-objective search its front (params, val acc). The fronts' plots are
# left in OUT/pareto-seedS/pareto.png. Run it on a quiet machine: wall times are compared.
#   scripts/bench-sizecap.sh                        # seed 1, CPU
#   SEEDS="1 2 3" MAX_PARAMS=50000 scripts/bench-sizecap.sh
#   SUBSET=300 POPULATION=2 GENERATIONS=0 FILTERS=8 MAX_PARAMS=2000 scripts/bench-sizecap.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/auto-cnn}
[ -x "$BIN" ] || cargo build --release --quiet
SEEDS=${SEEDS:-1}
DEVICE=${DEVICE:-cpu}
DATASET=${DATASET:-mnist-10k}
POPULATION=${POPULATION:-4}
GENERATIONS=${GENERATIONS:-2}
EPOCHS=${EPOCHS:-1}
MAX_PARAMS=${MAX_PARAMS:-100000}
FILTERS=${FILTERS:-}
SUBSET=${SUBSET:-}
extra=()
[ -n "$FILTERS" ] && extra+=(--filters "$FILTERS")
[ -n "$SUBSET" ] && extra+=(--subset "$SUBSET")
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
echo "auto-cnn search --dataset $DATASET --population $POPULATION --generations $GENERATIONS --epochs $EPOCHS --val-fraction 0.2 ${extra[*]} on $DEVICE ($(nproc) cores): --max-params $MAX_PARAMS, and --objectives accuracy,params"
printf '%-5s %-22s %9s %9s %6s  %-36s %9s %9s\n' seed search wall_s cpu_s evals best params test_acc
for seed in $SEEDS; do
  for what in cap pareto; do
    run="$OUT/$what-seed$seed"
    rm -rf "$run"
    case $what in
      cap) flags=(--max-params "$MAX_PARAMS"); label="--max-params $MAX_PARAMS" ;;
      pareto) flags=(--objectives accuracy,params); label="accuracy,params" ;;
    esac
    start=$(date +%s.%N)
    "$BIN" search -q --dataset "$DATASET" --population "$POPULATION" --generations "$GENERATIONS" \
      --epochs "$EPOCHS" --val-fraction 0.2 --seed "$seed" --device "$DEVICE" \
      "${flags[@]}" --out "$run" "${extra[@]}" >/dev/null
    end=$(date +%s.%N)
    python3 - "$run" "$seed" "$label" "$start" "$end" <<'P'
import json, sys
run, seed, label = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(f"{run}/result.json"))
wall = float(sys.argv[5]) - float(sys.argv[4])
b = r["best"]
print(f'{seed:<5} {label:<22} {wall:9.1f} {r["cpu_s"]:9.1f} {r["evaluations"]:6d}  '
      f'{b["genome"]:<36} {b["params"]:9d} {b["test_acc"]:9.4f}')
evals = [json.loads(l) for l in open(f"{run}/log.jsonl") if '"evaluation"' in l]
evals = [e for e in evals if e.get("kind") == "evaluation"]
if label.startswith("--max-params"):
    big = max(evals, key=lambda e: e["params"])
    print(f'      largest network evaluated: {big["params"]} parameters ({big["evaluated"]})')
else:
    p = json.load(open(f"{run}/pareto.json"))
    pts = ", ".join(f'{f["params"]}: {f["val_acc"]:.4f}' for f in p["front"])
    print(f'      front ({len(p["front"])} of {p["evaluated"]} networks; params: val acc): {pts}')
P
  done
done
