#!/usr/bin/env bash
# Fooling images in pixel space on the shipped models/mnist-cnn.pt, every class, default settings
# (population 48, up to 50 generations, stop at 99.99%), judged by models/mnist-judge.pt.
# Target: all 10 digits >= 0.9999 within 50 generations, in under 10 s on a 2-core CPU.
#   scripts/bench-fool.sh                  # seeds 1 2 3
#   SEEDS=7 ARGS="--pixel-block 1" scripts/bench-fool.sh
#   SEEDS=1 ARGS="--population 8 --generations 2" scripts/bench-fool.sh   # a smoke run
# BIN is the neuroevo binary (default target/release/neuroevo, built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/neuroevo}
[ -x "$BIN" ] || cargo build --release --quiet
SEEDS=${SEEDS:-1 2 3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for seed in $SEEDS; do
  "$BIN" fool -q --seed "$seed" --device "${DEVICE:-cpu}" ${ARGS:-} --out "$tmp/s$seed" >/dev/null
  python3 - "$tmp/s$seed/result.json" "$seed" <<'P'
import json, sys
r = json.load(open(sys.argv[1]))
cs = r["classes"]
ok = sum(c["confidence"] >= 0.9999 for c in cs)
print(f'seed {sys.argv[2]}: {r["seconds"]:.1f} s, {ok}/{len(cs)} classes >= 0.9999, '
      f'max {max(c["generations"] for c in cs)} generations, min confidence {min(c["confidence"] for c in cs):.6f}')
for c in cs:
    j = c.get("judge_confidence")
    print(f'  class {c["label"]}: {c["confidence"]:.6f} after {c["generations"]:>2} generations; '
          f'judge {"-" if j is None else f"{j:.4f}"} (judge top class {c.get("judge_top")})')
P
done
