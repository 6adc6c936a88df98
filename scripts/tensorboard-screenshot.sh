#!/usr/bin/env bash
# The README's TensorBoard picture: two short gan runs (both modes) watched in TensorBoard,
# captured with headless Chromium (Debian: apt-get install chromium).
#   scripts/tensorboard-screenshot.sh            # writes docs/images/tensorboard-gan.png
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
runs=$(mktemp -d)
trap 'kill $TB 2>/dev/null || true; rm -rf "$runs"' EXIT
"$BIN" gan -q --device cpu --seed 1 --mode dcgan --subset 2000 --epochs 4 --fid-samples 500 --out "$runs/gan-dcgan" >/dev/null
"$BIN" gan -q --device cpu --seed 1 --mode weights --subset 2000 --epochs 4 --fid-samples 500 --out "$runs/gan-weights" >/dev/null
PORT=$((30000 + RANDOM % 20000))
.venv/bin/tensorboard --logdir "$runs" --port "$PORT" --host 127.0.0.1 >/dev/null 2>&1 & TB=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
sleep 2
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1000 \
  --virtual-time-budget=15000 --screenshot=docs/images/tensorboard-gan.png \
  "http://127.0.0.1:$PORT/?darkMode=false#timeseries&tagFilter=fid%7Closs" 2>/dev/null
echo "wrote docs/images/tensorboard-gan.png"
