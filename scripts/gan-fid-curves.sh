#!/usr/bin/env bash
# The FID-over-time comparisons of docs/results/gan.md, on the CPU: each run
# gets the same CPU seconds of training (`--budget-clock cpu`, one thread), two runs at a time,
# and the script prints each run's FID at the epoch ends (training CPU seconds: FID).
#
#   scripts/gan-fid-curves.sh                   # dcgan: baseline vs GA-GAN at lr 2e-4, 200 s
#   SET=weights scripts/gan-fid-curves.sh       # weights mode: strokes, sigmoid vs softmax, 300 s
#   SET=dcgan SEEDS="1 2" BUDGET=300 OUT=/tmp/curves scripts/gan-fid-curves.sh
#   SEEDS=1 BUDGET=2 ARGS="--subset 256 --fid-samples 100" OUT=/tmp/c scripts/gan-fid-curves.sh  # a smoke run
# ARGS are more flags for every run; BIN is the neuroevo binary (default target/release/neuroevo,
# built when missing).
#
# dcgan: `--population 1 --no-evolution` (the gradient baseline) against P = 2 with evolved
# generator learning rates (`--evolve-lr generators`), both starting at the thesis' lr 2e-4.
# weights: the stroke-mutation run with the notebook's sigmoid hidden layer (100 units) and
# with a softmax hidden layer of 30 units.
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${SET:-dcgan}
SEEDS=${SEEDS:-1 2}
OUT=${OUT:-runs/fid-curves}
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet --bin neuroevo
export OMP_NUM_THREADS=1
# runs of each set: "NAME|FLAGS"
case "$SET" in
  dcgan)
    BUDGET=${BUDGET:-200}
    COMMON="--mode dcgan --lr 2e-4"
    RUNS=("baseline|--population 1 --no-evolution"
      "ga-glr|--population 2 --keep-fraction 0.75 --grad-steps 1 --evolve-lr generators")
    ;;
  weights)
    BUDGET=${BUDGET:-300}
    COMMON="--mode weights --fitness features --g-init data-mean --d-warmup 300 --mutation-prob 0 --stroke-mutation 1"
    RUNS=("sigmoid-100|" "softmax-30|--hidden-activation softmax --hidden 30")
    ;;
  *)
    echo "SET=$SET: expected dcgan or weights" >&2
    exit 2
    ;;
esac
mkdir -p "$OUT"
jobs=()
for seed in $SEEDS; do
  for r in "${RUNS[@]}"; do
    jobs+=("${r%%|*}-s$seed|$seed|${r#*|}")
  done
done
# two at a time (two cores); each run is timed on its own CPU clock
i=0
for j in "${jobs[@]}"; do
  IFS='|' read -r dir seed flags <<<"$j"
  # shellcheck disable=SC2086
  "$BIN" gan -q $COMMON $flags ${ARGS:-} --seed "$seed" --time-budget "$BUDGET" \
    --budget-clock cpu --out "$OUT/$dir" >"$OUT/$dir.log" 2>&1 &
  i=$((i + 1))
  if ((i % 2 == 0)); then wait; fi
done
wait
for j in "${jobs[@]}"; do
  IFS='|' read -r dir _ _ <<<"$j"
  printf '%-18s' "$dir"
  if grep -q '^error' "$OUT/$dir.log"; then
    echo " failed: $(grep -m1 '^error' "$OUT/$dir.log")"
    continue
  fi
  # epoch lines of log.jsonl: "train_cpu_s" and "fid"
  { grep '"kind":"epoch"' "$OUT/$dir/log.jsonl" || true; } |
    sed -E 's/.*"fid":([0-9.]+).*"train_cpu_s":([0-9.]+).*/\2 \1/' |
    awk '{ printf " %ds:%.0f", $1, $2 } END { print "" }'
done
