#!/usr/bin/env bash
# The tuned gradient baseline that every GA-GAN figure is compared with (docs/results/gan.md):
# the single DCGAN (`gan --mode dcgan --population 1 --no-evolution`) with its learning rate
# tuned over a grid on the same data, at the same total compute as the run it is compared with.
# Tuning: each rate of LRS trains for BUDGET / (number of rates) seconds on TUNE_SEED (the whole
# grid costs one run's budget, as a population of P costs P networks), and the rate with the
# lowest score wins; the winner then trains the full BUDGET on every seed of SEEDS. A run's
# score is the mean of the last quarter of its epoch-end FIDs (the curve, not a lucky
# snapshot; scripts/gan_score.py); its final FID is printed beside it. The default grid reaches
# 1.6e-2 because at 60 CPU s a grid that stopped at 4e-3 was won by its top rate.
#   scripts/gan-tuned-baseline.sh                       # 300 s of wall time each, both cores, seeds 1-3
#   BUDGET=900 scripts/gan-tuned-baseline.sh
#   CLOCK=cpu THREADS=1 scripts/gan-tuned-baseline.sh   # equal CPU seconds with one thread
#   LRS="1e-3 2e-3" SEEDS=1 BUDGET=4 ARGS="--subset 256 --fid-samples 100 --batch-size 16 --eval-batch 16" scripts/gan-tuned-baseline.sh   # a smoke run
# ARGS are more flags for every run (the data, the width); BIN is the neuroevo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet --bin neuroevo
LRS=${LRS:-5e-4 1e-3 2e-3 4e-3 8e-3 1.6e-2}
SEEDS=${SEEDS:-1 2 3}
TUNE_SEED=${TUNE_SEED:-100}
BUDGET=${BUDGET:-300}
CLOCK=${CLOCK:-wall}
FID_SAMPLES=${FID_SAMPLES:-2000}
ARGS=${ARGS:-}
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS=$THREADS
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
read -r -a lrs <<< "$LRS"
share=$(python3 -c "print($BUDGET / ${#lrs[@]})")
# runs one baseline; prints "lr seed seconds epoch-FIDs last-quarter-mean final"
run() {
  local lr=$1 seed=$2 budget=$3 dir="$OUT/lr$1-seed$2-$3s"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  "$BIN" gan -q --mode dcgan --population 1 --no-evolution --lr "$lr" --seed "$seed" \
    --device "${DEVICE:-cpu}" --fid-samples "$FID_SAMPLES" --time-budget "$budget" \
    --budget-clock "$CLOCK" --out "$dir" $ARGS >/dev/null
  read -r t n q f _ <<< "$(python3 scripts/gan_score.py "$dir")"
  echo "$lr $seed $t $n $q $f"
}
echo "gan --mode dcgan --population 1 --no-evolution, $BUDGET s ($CLOCK clock) per seed, $FID_SAMPLES FID samples, ${OMP_NUM_THREADS:-all} thread(s), $ARGS"
echo "tuning on seed $TUNE_SEED, $share s per rate:"
printf '%-8s %5s %9s %7s %16s %10s\n' lr seed train_s epochs fid_last_quarter fid_final
best=""; best_score=""
for lr in "${lrs[@]}"; do
  read -r l s t n q f <<< "$(run "$lr" "$TUNE_SEED" "$share")"
  printf '%-8s %5s %9s %7s %16s %10s\n' "$l" "$s" "$t" "$n" "$q" "$f"
  if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $q < $best_score else 1)"; then
    best=$lr; best_score=$q
  fi
done
echo "tuned rate: $best"
echo "the tuned baseline, $BUDGET s per seed:"
printf '%-8s %5s %9s %7s %16s %10s\n' lr seed train_s epochs fid_last_quarter fid_final
scores=()
for seed in $SEEDS; do
  read -r l s t n q f <<< "$(run "$best" "$seed" "$BUDGET")"
  printf '%-8s %5s %9s %7s %16s %10s\n' "$l" "$s" "$t" "$n" "$q" "$f"
  scores+=("$q")
done
python3 - "$best" "${scores[@]}" <<'P'
import sys
lr, v = sys.argv[1], [float(x) for x in sys.argv[2:]]
print(f"tuned baseline: lr {lr}, mean last-quarter FID {sum(v) / len(v):.3f} over {len(v)} seed(s)")
P
