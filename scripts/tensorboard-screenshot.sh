#!/usr/bin/env bash
# The README's TensorBoard picture: two short gan runs (both modes) watched in TensorBoard,
# captured with headless Chromium (Debian: apt-get install chromium).
#   scripts/tensorboard-screenshot.sh            # writes docs/images/tensorboard-gan.png
#   SUBSET=256 EPOCHS=1 FID_SAMPLES=100 SHOT=/tmp/tb.png scripts/tensorboard-screenshot.sh  # a smoke run
# SHOT is the picture's path; without chromium (or with NO_BROWSER=1) the runs are made and
# TensorBoard is asked which runs it serves, and no picture is taken. BIN is the neuroevo binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
SHOT=${SHOT:-docs/images/tensorboard-gan.png}
# ARGS: more flags for both runs (e.g. "--batch-size 16 --eval-batch 16 --width 4")
small=(--subset "${SUBSET:-2000}" --epochs "${EPOCHS:-4}" --fid-samples "${FID_SAMPLES:-500}" ${ARGS:-})
runs=$(mktemp -d)
TB=
trap '[ -n "$TB" ] && kill $TB 2>/dev/null; rm -rf "$runs"' EXIT
"$BIN" gan -q --device cpu --seed 1 --mode dcgan "${small[@]}" --out "$runs/gan-dcgan" >/dev/null
"$BIN" gan -q --device cpu --seed 1 --mode weights "${small[@]}" --out "$runs/gan-weights" >/dev/null
PORT=$((30000 + RANDOM % 20000))
.venv/bin/tensorboard --logdir "$runs" --port "$PORT" --host 127.0.0.1 >/dev/null 2>&1 & TB=$!
for _ in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
# the runs TensorBoard serves (it reads the event files in the background)
for _ in $(seq 50); do
  served=$(.venv/bin/python -c "import json, urllib.request; print(' '.join(sorted(json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/data/runs')))))" 2>/dev/null || true)
  [[ "$served" == *gan-dcgan*gan-weights* ]] && break
  sleep 0.2
done
echo "tensorboard serves runs: ${served:-none}"
if [ -n "${NO_BROWSER:-}" ] || ! command -v chromium >/dev/null 2>&1; then
  if [ -n "${NO_BROWSER:-}" ]; then why="NO_BROWSER is set"; else why="chromium is not installed"; fi
  echo "no picture taken: $why"
  exit 0
fi
sleep 2
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1000 \
  --virtual-time-budget=15000 --screenshot="$SHOT" \
  "http://127.0.0.1:$PORT/?darkMode=false#timeseries&tagFilter=fid%7Closs" 2>/dev/null
echo "wrote $SHOT"
