#!/usr/bin/env bash
# GA-GAN recipes side by side on the same seeds and budget, each run scored as the tuned
# baseline's are (scripts/gan_score.py: the mean of the last quarter of the run's epoch-end
# FIDs), against the tuned baseline's scores when BASELINE gives them (one per seed, in the
# order of SEEDS, as scripts/gan-tuned-baseline.sh prints them).
# RECIPES: `name=flags` separated by `;`, each flags added to `gan --mode dcgan`.
#   RECIPES="egan=--population 1 --no-evolution --g-losses minimax,nonsat,lsgan;mix4=--population 4 --mixture" \
#     CLOCK=cpu THREADS=1 BASELINE="96.1 101.3 99.0" scripts/gan-compare.sh
#   RECIPES="p2=--population 2" SEEDS=1 BUDGET=4 ARGS="--subset 256 --fid-samples 100 --batch-size 16 --eval-batch 16" scripts/gan-compare.sh   # a smoke run
# After the table: each recipe's FID curve (scripts/gan_curves.py) and its summary line.
# ARGS are more flags for every run (the data, the width, the rate); BIN is the neuroevo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet --bin neuroevo
RECIPES=${RECIPES:?RECIPES="name=flags;name=flags" is required}
SEEDS=${SEEDS:-1 2 3}
BUDGET=${BUDGET:-300}
CLOCK=${CLOCK:-wall}
FID_SAMPLES=${FID_SAMPLES:-2000}
ARGS=${ARGS:-}
BASELINE=${BASELINE:-}
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS=$THREADS
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
read -r -a seeds <<< "$SEEDS"
read -r -a base <<< "$BASELINE"
if [ ${#base[@]} -gt 0 ] && [ ${#base[@]} -ne ${#seeds[@]} ]; then
  echo "BASELINE has ${#base[@]} scores for ${#seeds[@]} seeds" >&2
  exit 2
fi
echo "gan --mode dcgan, $BUDGET s ($CLOCK clock) per run, $FID_SAMPLES FID samples, ${OMP_NUM_THREADS:-all} thread(s), $ARGS"
printf '%-10s %5s %9s %7s %16s %10s %11s %9s\n' recipe seed train_s epochs fid_last_quarter fid_final mixture_fid baseline
IFS=';' read -r -a recipes <<< "$RECIPES"
summary="$OUT/summary.tsv"
: > "$summary"
for recipe in "${recipes[@]}"; do
  name=${recipe%%=*}
  flags=${recipe#*=}
  for i in "${!seeds[@]}"; do
    seed=${seeds[$i]}
    dir="$OUT/$name-seed$seed"
    rm -rf "$dir"
    # shellcheck disable=SC2086
    "$BIN" gan -q --mode dcgan --seed "$seed" --device "${DEVICE:-cpu}" \
      --fid-samples "$FID_SAMPLES" --time-budget "$BUDGET" --budget-clock "$CLOCK" \
      --out "$dir" $ARGS $flags >/dev/null
    read -r t n q f m <<< "$(python3 scripts/gan_score.py "$dir")"
    b=${base[$i]:--}
    printf '%-10s %5s %9s %7s %16s %10s %11s %9s\n' "$name" "$seed" "$t" "$n" "$q" "$f" "$m" "$b"
    printf '%s\t%s\t%s\t%s\n' "$name" "$q" "$m" "$b" >> "$summary"
  done
done
names=()
for recipe in "${recipes[@]}"; do names+=("${recipe%%=*}"); done
python3 scripts/gan_curves.py "$OUT" "$BUDGET" "$CLOCK" "${names[@]}"
python3 - "$summary" <<'P'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
for name in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == name]
    q = [float(r[1]) for r in mine]
    line = f"{name}: mean last-quarter FID {sum(q) / len(q):.3f} over {len(q)} seed(s)"
    mix = [float(r[2]) for r in mine if r[2] != "-"]
    if mix:
        line += f", mean mixture FID {sum(mix) / len(mix):.3f}"
    base = [float(r[3]) for r in mine if r[3] != "-"]
    if base:
        wins = sum(1 for r in mine if float(r[1]) < float(r[3]))
        line += f"; below the tuned baseline on {wins} of {len(base)} seed(s) (baseline mean {sum(base) / len(base):.3f})"
    print(line)
P
