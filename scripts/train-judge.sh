#!/usr/bin/env bash
# Trains the independent "judge" classifier shipped as models/mnist-judge.pt: a different
# architecture (average pooling, wider first layer, no dense layer) and a different seed from
# models/mnist-cnn.pt, on the bundled mnist-10k. `neuroevo fool --judge` scores evolved images
# with it. About 4 minutes on 2 CPU cores.
#   EPOCHS=1 SUBSET=300 MODELS=/tmp/m scripts/train-judge.sh   # a smoke run, written to /tmp/m
# MODELS is where the model goes (default models/); BIN is the neuroevo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
MODELS=${MODELS:-models}
sub=(); [ -n "${SUBSET:-}" ] && sub=(--subset "$SUBSET")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN" train --dataset mnist-10k --arch "S48-24 P:avg S48-48 P:avg P:max D0.2" \
  --epochs "${EPOCHS:-15}" "${sub[@]}" --batch-size 64 --lr 0.002 --schedule cosine --augment-shift 2 \
  --val-fraction 0.1 --seed 7 --device cpu \
  --out "$out/run" --export "$MODELS/mnist-judge.pt" "$@"
cp "$out/run/log.jsonl" "$MODELS/mnist-judge.log.jsonl"
