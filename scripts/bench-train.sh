#!/usr/bin/env bash
# Samples/s for one training epoch of "S128-64" (AutoCNN's reported MNIST winner) on mnist-10k,
# with neuroevo and with a plain PyTorch loop over the same network, on the CPU, and on CUDA when
# a GPU is present (there also on full mnist/fashion-mnist if available, with GPU utilisation
# sampled by nvidia-smi over the run: busy time / wall time).
#   scripts/bench-train.sh            # CPU rows
#   EPOCHS=3 scripts/bench-train.sh
#   PRECISION=fp32 scripts/bench-train.sh   # neuroevo in fp32 (default auto: bf16 on a CPU with AVX512-BF16)
#   SUBSET=256 scripts/bench-train.sh       # a smoke run: 256 images (both loops)
# BIN is the neuroevo binary (default target/release/neuroevo, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
EPOCHS=${EPOCHS:-1}
SUBSET=${SUBSET:-}
sub=(); [ -n "$SUBSET" ] && sub=(--subset "$SUBSET")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

row() { # device dataset
  local dev=$1 ds=$2 out="$tmp/$1-$2"
  local util="$tmp/util-$1-$2"
  if [ "$dev" != cpu ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$util" &
    local smi=$!
  fi
  "$BIN" train -q --arch S128-64 --precision "${PRECISION:-auto}" --epochs "$EPOCHS" --dataset "$ds" --device "$dev" --seed 1 "${sub[@]}" --out "$out" >/dev/null
  [ -n "${smi:-}" ] && kill "$smi" 2>/dev/null || true
  python3 - "$out/result.json" "$dev" "$ds" "$util" <<'P'
import json, os, sys
r = json.load(open(sys.argv[1]))
e = r["epochs"][-1]
busy = ""
if os.path.exists(sys.argv[4]):
    v = [float(x) for x in open(sys.argv[4]).read().split() if x.strip()]
    if v:
        busy = f"  GPU busy {sum(v) / len(v) / 100:.2f} of wall time ({len(v)} samples)"
print(f"neuroevo S128-64 [{sys.argv[2]}, {sys.argv[3]}]: epoch {e['epoch']} {e['seconds']:.2f} s, {e['samples_per_s']:.0f} samples/s, test acc {r['test_acc']:.4f}{busy}")
P
}

echo "machine: $(nproc) cores; $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader || echo 'no GPU')"
row cpu mnist-10k
"$PY" scripts/bench_train_torch.py cpu "$EPOCHS" $SUBSET
if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
  row cuda mnist-10k
  "$PY" scripts/bench_train_torch.py cuda "$EPOCHS" $SUBSET
  for ds in mnist fashion-mnist; do row cuda "$ds" 2>/dev/null && break; done || true
fi
