#!/usr/bin/env bash
# Speed and quality of `neuroevo gari` on fruit.jpg (200x150 RGB, 90,000 genes), full size.
# For each preset it prints generations/s and PSNR after a fixed number of generations and
# after a fixed wall time, on the CPU (block backend and tensor backend) and on CUDA when present.
#
#   scripts/bench-gari.sh                 # all rows (about 4 minutes on 2 cores)
#   SECONDS_BUDGET=14 scripts/bench-gari.sh
#   IMAGE=path/to/other.png scripts/bench-gari.sh
#   GENS=200 PYGAD_GENS=20 SECONDS_BUDGET=0.5 FAST_BUDGET=0.5 RESIZE=20x15 scripts/bench-gari.sh  # a smoke run
# BIN is the neuroevo binary (default target/release/neuroevo, built when missing); RESIZE
# (WxH) shrinks the image first.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
IMAGE=${IMAGE:-assets/fruit.jpg}
BUDGET=${SECONDS_BUDGET:-14}
FAST_BUDGET=${FAST_BUDGET:-60}
SEED=${SEED:-1}
GENS=${GENS:-15000}
PYGAD_GENS=${PYGAD_GENS:-1000}
size=(); [ -n "${RESIZE:-}" ] && size=(--resize "$RESIZE")
PY=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

devices="cpu"
if "$PY" - <<'P' 2>/dev/null; then devices="cpu cuda"; fi
import shutil, subprocess, sys
sys.exit(0 if shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi"], capture_output=True).returncode == 0 else 1)
P

row() { # label, extra args...
  local label=$1; shift
  local out="$tmp/$(echo "$label" | tr ' /' '__')"
  "$BIN" gari -q --input "$IMAGE" --seed "$SEED" --out "$out" --checkpoint-every 0 "${size[@]}" "$@" >/dev/null
  "$PY" - "$out/result.json" "$label" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<44} {r['generations']:>9} gen {r['elapsed_s']:>7.1f} s {r['generations_per_s']:>10.0f} gen/s  PSNR {r['psnr_db']:6.2f} dB")
P
}

echo "image: $IMAGE ${RESIZE:+(resized to $RESIZE)}  seed: $SEED   machine: $(nproc) cores, $(uname -m)"
echo "-- fixed number of generations"
for dev in $devices; do
  if [ "$dev" = cpu ]; then backends="cpu tensor"; else backends="tensor"; fi
  for be in $backends; do
    row "gari  $GENS gen  [$be/$dev]" --preset gari --generations "$GENS" --backend "$be" --device "$dev"
    row "pygad  $PYGAD_GENS gen  [$be/$dev]" --preset pygad --generations "$PYGAD_GENS" --backend "$be" --device "$dev"
    row "fast  $GENS gen  [$be/$dev]" --preset fast --generations "$GENS" --time-budget 1000 --backend "$be" --device "$dev"
  done
done
echo "-- fixed wall time"
for dev in $devices; do
  if [ "$dev" = cpu ]; then be=cpu; else be=tensor; fi
  row "gari  ${BUDGET} s  [$be/$dev]" --preset gari --generations 1000000000 --time-budget "$BUDGET" --backend "$be" --device "$dev"
  row "pygad ${BUDGET} s  [$be/$dev]" --preset pygad --generations 1000000000 --time-budget "$BUDGET" --backend "$be" --device "$dev"
  row "fast  ${BUDGET} s  [$be/$dev]" --preset fast --generations 1000000000 --time-budget "$BUDGET" --backend "$be" --device "$dev"
  row "fast  ${FAST_BUDGET} s (default run) [$be/$dev]" --preset fast --time-budget "$FAST_BUDGET" --backend "$be" --device "$dev"
done
