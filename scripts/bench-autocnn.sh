#!/usr/bin/env bash
# AutoCNN at the budget of the side-by-side run with the auto-cnn 1.0 package (TensorFlow 2.15
# CPU, this 2-core machine): mnist-10k, population 4, 2 generations, 1 epoch per network, 80% of
# the training images for training (the package's split). The package took 1,234 s for 12
# networks and its best scored 0.517 test accuracy; the targets are >= 3x faster and >= 0.97.
# Prints wall time, networks evaluated (trained / from the cache) and the best's test accuracy:
# as the search trained it (1 epoch), and, with FINAL_EPOCHS=N, after `--final-epochs N`
# retrained it on train+val (included in the wall time).
#   scripts/bench-autocnn.sh                 # seed 1, CPU
#   SEEDS="1 2 3" FINAL_EPOCHS=3 scripts/bench-autocnn.sh
#   SEEDS="1 2 3" DEVICE=cuda scripts/bench-autocnn.sh
#   SUBSET=300 POPULATION=2 GENERATIONS=0 FILTERS=8 scripts/bench-autocnn.sh   # a smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/auto-cnn}
[ -x "$BIN" ] || cargo build --release --quiet
SEEDS=${SEEDS:-1}
DEVICE=${DEVICE:-cpu}
DATASET=${DATASET:-mnist-10k}
FINAL_EPOCHS=${FINAL_EPOCHS:-}
POPULATION=${POPULATION:-4}
GENERATIONS=${GENERATIONS:-2}
EPOCHS=${EPOCHS:-1}
FILTERS=${FILTERS:-}
SUBSET=${SUBSET:-}
extra=(); [ -n "$FINAL_EPOCHS" ] && extra=(--final-epochs "$FINAL_EPOCHS")
[ -n "$FILTERS" ] && extra+=(--filters "$FILTERS")
[ -n "$SUBSET" ] && extra+=(--subset "$SUBSET")
OUT=${OUT:-$(mktemp -d)}
echo "auto-cnn search --dataset $DATASET --population $POPULATION --generations $GENERATIONS --epochs $EPOCHS --val-fraction 0.2 ${extra[*]} on $DEVICE ($(nproc) cores)"
printf '%-5s %9s %9s %6s %7s  %-36s %8s %9s %9s\n' seed wall_s speedup evals trained best val_acc test_1ep test_final
for seed in $SEEDS; do
  run="$OUT/bench-seed$seed"
  rm -rf "$run"
  start=$(date +%s.%N)
  "$BIN" search -q --dataset "$DATASET" --population "$POPULATION" --generations "$GENERATIONS" --epochs "$EPOCHS" \
    --val-fraction 0.2 --seed "$seed" --device "$DEVICE" --out "$run" "${extra[@]}" >/dev/null
  end=$(date +%s.%N)
  python3 - "$run/result.json" "$seed" "$start" "$end" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[4]) - float(sys.argv[3])
b = r["best"]
final = f'{b["test_acc"]:9.4f}' if b.get("search_test_acc") != b["test_acc"] else f'{"-":>9}'
print(f'{sys.argv[2]:<5} {wall:9.1f} {1234 / wall:8.2f}x {r["evaluations"]:6d} {r["trained"]:7d}  '
      f'{b["genome"]:<36} {b["val_acc"]:8.4f} {b["search_test_acc"]:9.4f} {final}')
P
  echo "      per network: $(python3 -c "
import json
ev = [json.loads(l) for l in open('$run/log.jsonl')]
print(', '.join(f\"{e['genome']} {e['seconds']:.0f}s\" for e in ev if e['kind'] == 'evaluation' and not e['cached']))")"
done
echo "auto-cnn 1.0 (TensorFlow 2.15 CPU, same machine and budget): 1234 s, 12 networks, best test accuracy 0.517"
