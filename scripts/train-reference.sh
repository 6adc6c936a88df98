#!/usr/bin/env bash
# Trains the reference MNIST classifier shipped as models/mnist-cnn.pt (logits),
# models/mnist-cnn.features.pt (128-d penultimate features, for FID) and models/mnist-cnn.json,
# from the bundled mnist-10k with a fixed seed. About 4 minutes on 2 CPU cores.
#   EPOCHS=1 SUBSET=300 MODELS=/tmp/m scripts/train-reference.sh   # a smoke run, written to /tmp/m
# MODELS is where the model goes (default models/); BIN is the neuroevo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
MODELS=${MODELS:-models}
sub=(); [ -n "${SUBSET:-}" ] && sub=(--subset "$SUBSET")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN" train --dataset mnist-10k --arch "S32-32 P:max S64-64 P:max F128 D0.3" \
  --epochs "${EPOCHS:-20}" "${sub[@]}" --batch-size 64 --lr 0.002 --schedule cosine --augment-shift 2 \
  --val-fraction 0.1 --seed 20261123 --device cpu \
  --out "$out/run" --export "$MODELS/mnist-cnn.pt" "$@"
cp "$out/run/log.jsonl" "$MODELS/mnist-cnn.log.jsonl"
