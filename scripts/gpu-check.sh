#!/usr/bin/env bash
# The GPU checks of the GA-GAN and AutoCNN issues, as one script for a lent CUDA machine that
# has python3 with torch 2.11.0 but no Rust: build here, carry the stripped binaries, run there.
#
#   cargo build --release --bins --examples
#   mkdir -p .dev && for b in neuroevo auto-cnn; do strip -o .dev/$b target/release/$b; done
#   strip -o .dev/bench_gan target/release/examples/bench_gan
#   BIN_DIR=.dev FOLDER=.dev/cmnist64 scripts/gpu-check.sh      # on the GPU machine
#
# FOLDER is an image folder for the 3-channel 64x64 thesis setting (skipped when unset), e.g.
#   .venv/bin/python scripts/make-colour-mnist.py data/mnist-10k/train-images-idx3-ubyte.gz .dev/cmnist64 4000
# Rehearse on a CPU with DEVICE=cpu BUDGET=5 TH_EPOCHS=1 SUBSET=512 (tiny, only to check flags);
# GAN_ARGS are more flags for every gan run (e.g. "--fid-samples 100 --width 4" for a smoke run).
# STEPS (default "bench thesis compare autocnn"; "untrusted" checks refused model files and the
# run layer on the device) picks the parts; COMPARE and SEEDS the 28x28
# comparison runs (names in cmp_flags below; p2-glr with base-2e-4 is the short-budget setting
# in which evolution wins on the CPU, not yet run on a GPU; COMPARE="base-16e-3 xr-16e-3"
# SEEDS="1 2 3" is the CPU's best recipe against its tuned baseline, docs/results/gan.md).
# Writes every run under WORK (default /tmp/gpu-check), a summary table to stdout and, when OUT
# is set, summary.txt and runs.tar.gz (logs, plots, sample grids; no checkpoints) under OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/release}
DEVICE=${DEVICE:-cuda}
BUDGET=${BUDGET:-40}
TH_EPOCHS=${TH_EPOCHS:-3}
SUBSET=${SUBSET:-}
FOLDER=${FOLDER:-}
WORK=${WORK:-/tmp/gpu-check}
TOTAL=${TOTAL:-420}   # seconds for all the runs: a step that would not fit is cut short or skipped
DEADLINE=$((SECONDS + TOTAL))
# seconds a step may take: its own limit, or what is left before the deadline
limit() { local l=$((DEADLINE - SECONDS)); [ "$l" -lt 1 ] && l=1; [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
rm -rf "$WORK" && mkdir -p "$WORK"
sub=(); [ -n "$SUBSET" ] && sub=(--subset "$SUBSET")
STEPS=${STEPS:-bench thesis compare autocnn}   # which parts to run
has() { [[ " $STEPS " == *" $1 "* ]]; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null ||
    echo "no nvidia-smi"; nproc; } | tee "$WORK/machine.txt"

has bench && echo "== batched population evaluation vs the per-individual loop ($DEVICE)"
has bench && for p in ${PS:-32 8}; do
  P=$p B=16 WIDTH=32 WIDTH64=${WIDTH64:-64} REPS=${REPS:-20} DEVICE=$DEVICE \
    timeout "$(limit 120)" "$BIN_DIR/bench_gan" |
    tee -a "$WORK/bench-gan.txt"
done

# one GAN run: name, then flags; wall seconds of the whole process go to NAME.wall
gan() {
  local name=$1; shift
  local t0 t1 rc lim
  lim=$(limit "${RUN_LIMIT:-150}")
  if [ "$lim" -lt 20 ]; then echo "$name: skipped (past the deadline)"; return; fi
  t0=$(date +%s.%N)
  timeout "$lim" "$BIN_DIR/neuroevo" gan -q --device "$DEVICE" --seed "${SEED:-1}" \
    --out "$WORK/$name" "${sub[@]}" ${GAN_ARGS:-} "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)" >"$WORK/$name.wall"
  echo "$name: exit $rc, $(cat "$WORK/$name.wall") s wall"
  [ $rc -eq 0 ] || tail -3 "$WORK/$name.log"
}

if has thesis; then
echo "== thesis setting, 64x64, width 64, $TH_EPOCHS epochs"
gan t64-mnist-p1 --image-size 64 --population 1 --no-evolution --epochs "$TH_EPOCHS"
[ -n "$FOLDER" ] && gan t64-rgb-p1 --dataset "folder:$FOLDER" --image-size 64 --channels 3 \
  --population 1 --no-evolution --epochs "$TH_EPOCHS"
[ -n "$FOLDER" ] && gan t64-rgb-p8 --dataset "folder:$FOLDER" --image-size 64 --channels 3 \
  --population 8 --epochs "$TH_EPOCHS"
gan t64-mnist-p8 --image-size 64 --population 8 --epochs "$TH_EPOCHS"
fi

# the 28x28 comparison at equal wall time: NAME -> flags
cmp_flags() {
  case $1 in
    base-2e-4) echo --population 1 --no-evolution ;;
    base-2e-3) echo --population 1 --no-evolution --lr 2e-3 ;;
    p2-k1) echo --population 2 --keep-fraction 0.75 --grad-steps 1 --lr 2e-3 ;;
    p4-k1) echo --population 4 --keep-fraction 0.5 --grad-steps 1 --lr 2e-3 ;;
    p8-k1) echo --population 8 --keep-fraction 0.25 --grad-steps 1 --lr 2e-3 ;;
    p8-k5) echo --population 8 --keep-fraction 0.25 --grad-steps 5 --lr 2e-3 ;;
    p2-glr) echo --population 2 --keep-fraction 0.75 --grad-steps 1 --evolve-lr generators ;;
    base-16e-3) echo --population 1 --no-evolution --lr 1.6e-2 ;;
    sel-16e-3) echo --population 1 --epoch-select --pbt-fid-samples 500 --lr 1.6e-2 ;;
    xr-16e-3) echo --population 1 --epoch-select keep --select-latents fixed --select-crossover \
      --pbt-fid-samples 128 --lr 1.6e-2 ;;
    *) echo "unknown comparison run $1" >&2; return 1 ;;
  esac
}
if has compare; then
  echo "== 28x28 mnist-10k, width 32, $BUDGET s of training each (wall clock)"
  for seed in ${SEEDS:-1}; do
    for c in ${COMPARE:-base-2e-4 base-2e-3 p2-k1 p4-k1 p8-k1 p8-k5}; do
      # shellcheck disable=SC2046
      SEED=$seed gan "c28-$c-s$seed" $(cmp_flags "$c") --time-budget "$BUDGET"
    done
  done
fi

if [ -x "$BIN_DIR/auto-cnn" ] && has autocnn && [ "$(limit 60)" -ge 60 ]; then
  echo "== auto-cnn, the package's budget, on $DEVICE"
  BIN=$BIN_DIR/auto-cnn DEVICE=$DEVICE OUT=$WORK/autocnn timeout "$(limit 240)" \
    scripts/bench-autocnn.sh
fi

# untrusted input and the run layer on the device: a model file that writes a file is refused
# before it runs, the shipped models run, train stops on patience and on Ctrl-C (nothing
# exported), a tiny auto-cnn search runs
check() { # NAME EXPECTED_EXIT COMMAND...: one line per check
  local name=$1 want=$2; shift 2
  timeout "$(limit 120)" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc (want $want) $( [ $rc -eq "$want" ] && echo ok || echo FAILED): $(grep -m1 'error' "$WORK/$name.log")"
}
if has untrusted; then
  echo "== untrusted input and the run layer on $DEVICE"
  N=$BIN_DIR/neuroevo
  echo "untouched" >"$WORK/victim.txt"
  # torch.jit.script reads the source of what it compiles: from a file
  cat >"$WORK/thief.py" <<PY
import torch
class Thief(torch.nn.Module):
    def forward(self, x):
        t = torch.from_file("$WORK/victim.txt", shared=True, size=4, dtype=torch.uint8)
        t.fill_(66)
        # the result depends on the file, so the compiler keeps the read and the write
        return x.flatten(1)[:, :10] + t[0].float() * 0
torch.jit.script(Thief()).save("$WORK/thief.pt")
PY
  python3 "$WORK/thief.py"
  check thief 2 "$N" fool -q --device "$DEVICE" --classifier "$WORK/thief.pt" \
    --input-shape 1,28,28 --input-range 0,1 --generations 5 --out "$WORK/thief"
  echo "victim file after the thief: $(cat "$WORK/victim.txt")"
  check fool 0 "$N" fool -q --device "$DEVICE" --generations 50 --out "$WORK/fool"
  check train-patience 0 "$N" train -q --device "$DEVICE" "${sub[@]}" --epochs 30 --patience 2 \
    --arch "S16-16 P:max F32" --out "$WORK/train-p"
  grep -o '"stop_reason": *"[a-z_]*"' "$WORK/train-p/result.json" 2>/dev/null
  "$N" train -q --device "$DEVICE" "${sub[@]}" --epochs 1000 --arch "S8-8 F16" \
    --out "$WORK/train-i" >"$WORK/train-i.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -f "$WORK/train-i/state.json" ] && break; sleep 0.1; done
  kill -INT $pid; wait $pid
  echo "train-interrupted: exit $? (want 130), model.pt $( [ -e "$WORK/train-i/model.pt" ] && echo present || echo absent) (want absent)"
  if [ -x "$BIN_DIR/auto-cnn" ]; then
    check autocnn-tiny 0 "$BIN_DIR/auto-cnn" search -q --device "$DEVICE" --population 2 \
      --generations 1 --epochs 1 --subset 1000 --out "$WORK/autocnn-tiny"
  fi
fi

python3 - "$WORK" <<'P' | tee "$WORK/summary.txt"
import json, os, sys
work = sys.argv[1]
print(open(os.path.join(work, "machine.txt")).read().strip())
if os.path.exists(os.path.join(work, "bench-gan.txt")):
    print(open(os.path.join(work, "bench-gan.txt")).read().strip())
print(f"{'run':<18} {'gens':>6} {'epochs':>6} {'train_s':>8} {'s/gen':>8} {'s/epoch':>8} "
      f"{'wall_s':>7} {'fid0':>7} {'fid_end':>8} {'last25%':>8} {'best':>7}")
for name in sorted(os.listdir(work)):
    log = os.path.join(work, name, "log.jsonl")
    if not os.path.exists(log):
        continue
    rs = [json.loads(l) for l in open(log)]
    ep = [r for r in rs if r.get("kind") == "epoch"]
    gens = [r for r in rs if r.get("kind") == "generation"]
    init = [r for r in rs if r.get("kind") == "init"]
    if not ep or not gens:
        print(f"{name:<18} (no epoch finished)")
        continue
    t = gens[-1]["train_s"]
    fids = [e["fid"] for e in ep if e.get("fid") is not None]
    tail = [e["fid"] for e in ep if e["train_s"] >= 0.75 * t and e.get("fid") is not None] or fids[-1:]
    wall = float(open(os.path.join(work, name + ".wall")).read() or "nan")
    print(f"{name:<18} {gens[-1]['generation']:>6} {ep[-1]['epoch']:>6} {t:>8.1f} "
          f"{t / gens[-1]['generation']:>8.4f} {t / ep[-1]['epoch']:>8.2f} {wall:>7.1f} "
          f"{init[0]['fid'] if init else float('nan'):>7.1f} {fids[-1]:>8.1f} "
          f"{sum(tail) / len(tail):>8.1f} {min(fids):>7.1f}")
P
if [ -n "${OUT:-}" ]; then
  cp "$WORK/summary.txt" "$OUT/"
  tar -C "$WORK" --exclude='*.pt' --exclude='epoch-*.png' -czf "$OUT/runs.tar.gz" .
fi
