"""Scores `neuroevo gan` runs as if each had kept its best epoch so far, chosen on the run's own
epoch-end FID: prints `run fid_last_quarter kept_last_quarter` per run folder given, where
kept_last_quarter is the mean of the last quarter of the running minimum of its epoch-end FIDs.

This is the most a user of a single network could get by keeping the best checkpoint, and more
than they could honestly get: it selects on the very FID it is scored by (`--epoch-select`
selects on FIDs of its own latents and images). It separates what `--epoch-select` gains by
selection alone from what going back does to the training (docs/results/gan.md).
  python3 scripts/gan_kept_score.py OUT/base16-seed1 OUT/base16-seed2 ..."""
import json
import sys

for d in sys.argv[1:]:
    recs = [json.loads(l) for l in open(f"{d}/log.jsonl")]
    fids = [r["fid"] for r in recs if r.get("kind") == "epoch" and r.get("fid") is not None]
    if not fids:
        print(f"{d} - -")
        continue
    kept, low = [], float("inf")
    for f in fids:
        low = min(low, f)
        kept.append(low)
    n = max(1, len(fids) // 4)
    mean = lambda xs: sum(xs) / len(xs)
    print(f"{d} {mean(fids[-n:]):.3f} {mean(kept[-n:]):.3f}")
