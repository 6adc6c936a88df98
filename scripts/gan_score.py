"""Scores one `neuroevo gan` run the way every GA-GAN comparison does (docs/results/gan.md):
prints `train_s epochs fid_last_quarter fid_final mixture_fid` for the run folder given, where
fid_last_quarter is the mean of the last quarter of its epoch-end FIDs (the curve, not a lucky
snapshot; a run too short for an epoch end is scored by its final FID) and mixture_fid is the
FID of its `--mixture` sampler, or `-`."""
import json
import sys

d = sys.argv[1]
recs = [json.loads(l) for l in open(f"{d}/log.jsonl")]
fids = [r["fid"] for r in recs if r.get("kind") == "epoch" and r.get("fid") is not None]
res = json.load(open(f"{d}/result.json"))
final = res["final_fid"]
tail = fids[len(fids) - max(1, len(fids) // 4):] if fids else [final]
mix = res.get("mixture_fid")
print(f"{res['train_s']:.1f} {len(fids)} {sum(tail) / len(tail):.3f} {final:.3f} "
      + (f"{mix:.3f}" if mix is not None else "-"))
