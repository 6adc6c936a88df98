#!/usr/bin/env bash
# Batched population evaluation (stacked weights: bmm, grouped convolutions with groups = P)
# against the per-individual reference loop, for the weights and dcgan modes of `neuroevo gan`.
# Prints median milliseconds per evaluation of the whole population, the speed-up, and whether
# both give the same outputs.
#
#   scripts/bench-gan.sh                    # P = 32, 16 fakes each, CPU (and CUDA when present)
#   P=8 B=32 scripts/bench-gan.sh
#   WIDTH64=64 REPS=20 scripts/bench-gan.sh  # 64x64 at the thesis width (the GPU figures)
#   P=2 B=2 WIDTH=4 WIDTH64=4 REPS=1 BENCH_GAN=path/to/bench_gan scripts/bench-gan.sh  # a smoke run
# BENCH_GAN is the bench_gan example binary (default: built here with cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_GAN:-}
if [ -z "$BIN" ]; then
  cargo build --release --quiet --example bench_gan
  BIN=${CARGO_TARGET_DIR:-target}/release/examples/bench_gan
fi
export P=${P:-32} B=${B:-16} WIDTH=${WIDTH:-32} WIDTH64=${WIDTH64:-16} REPS=${REPS:-5}
echo "machine: $(nproc) cores, $(uname -m)"
DEVICE=cpu "$BIN"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
  DEVICE=cuda "$BIN"
fi
