#!/usr/bin/env bash
# Records what tests/golden_cli.rs compares against. Run at commit 5416124 (before the run
# layer) on the CPU; usage: tests/golden/record.sh (writes tests/golden/before-refactor.json).
# The two gan entries were recorded again with the same commands when gan came to seed
# libtorch's RNG at every generation (so that its first checkpoint, after generation 1, and a
# resume anywhere leave what follows unchanged); gari, fool and auto-cnn are still 5416124's.
set -euo pipefail
B=${NEUROEVO:-target/release/neuroevo}
T=$(mktemp -d)
G=tests/golden
cd "$(dirname "$0")/../.."
$B gari -q --seed 7 --device cpu --generations 3000 --resize 40x30 --log-every 500 --out $T/gari
$B fool -q --classifier models/mnist-cnn.pt --judge none --class 3 --population 16 --generations 8 --seed 5 --device cpu --out $T/fool
$B gan -q --device cpu --seed 3 --subset 256 --fid-samples 100 --fid-model models/mnist-cnn.pt --mode weights --population 6 --generations 4 --out $T/gw
$B gan -q --device cpu --seed 3 --subset 256 --fid-samples 100 --fid-model models/mnist-cnn.pt --mode dcgan --width 4 --population 3 --d-population 2 --batch-size 16 --eval-batch 16 --generations 4 --out $T/gd
$B auto-cnn search -q --subset 400 --population 3 --generations 1 --epochs 1 --filters 8,16 --seed 11 --device cpu --precision fp32 --out $T/ac
python3 - "$T" "$G" <<'PY'
import hashlib, json, sys, os
T, G = sys.argv[1], sys.argv[2]
sha = lambda p: hashlib.sha256(open(p,'rb').read()).hexdigest()
recs = lambda p: [json.loads(l) for l in open(p)]
out = {}
out["gari"] = {"best.png": sha(f"{T}/gari/best.png"),
  "best": [[r["generation"], r["best"]] for r in recs(f"{T}/gari/log.jsonl")]}
out["fool"] = {"class-3.png": sha(f"{T}/fool/class-3.png"),
  "best": [[r["generation"], r["best"]] for r in recs(f"{T}/fool/log.jsonl")]}
for k in ["gw", "gd"]:
  out["gan-" + ("weights" if k == "gw" else "dcgan")] = {
    "fitness": [[r["generation"], r["best_fitness"], r["mean_fitness"]] for r in recs(f"{T}/{k}/log.jsonl") if r.get("kind") == "generation"],
    "fid": [[r["generation"], r["fid"]] for r in recs(f"{T}/{k}/log.jsonl") if r.get("fid") is not None]}
out["auto-cnn"] = {"evaluations": [[r["genome"], r["fitness"]] for r in recs(f"{T}/ac/log.jsonl") if r.get("type") == "evaluation"]}
json.dump(out, open(f"{G}/before-refactor.json", "w"), indent=1)
print(json.dumps(out)[:3000])
PY
