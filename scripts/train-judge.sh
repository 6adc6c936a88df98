#!/usr/bin/env bash
# Trains the independent "judge" classifier shipped as models/mnist-judge.pt: a different
# architecture (average pooling, wider first layer, no dense layer) and a different seed from
# models/mnist-cnn.pt, on the bundled mnist-10k. `neuroevo fool --judge` scores evolved images
# with it. About 4 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN" train --dataset mnist-10k --arch "S48-24 P:avg S48-48 P:avg P:max D0.2" \
  --epochs 15 --batch-size 64 --lr 0.002 --schedule cosine --augment-shift 2 \
  --val-fraction 0.1 --seed 7 --device cpu \
  --out "$out/run" --export models/mnist-judge.pt "$@"
cp "$out/run/log.jsonl" models/mnist-judge.log.jsonl
