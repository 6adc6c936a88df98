"""The FID curves of `scripts/gan-compare.sh`'s runs, as a table: for every recipe, the mean over
its seeds of the latest epoch-end FID at 20%, 40%, ..., 100% of the training budget (on the
run's clock: `train_cpu_s` with CLOCK=cpu, else `train_s`), so recipes can be compared along the
way, not only at the end. Usage: gan_curves.py OUT BUDGET CLOCK NAME... (the runs are
OUT/NAME-seedS/)."""
import glob
import json
import sys

out, budget, clock, names = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
key = "train_cpu_s" if clock == "cpu" else "train_s"
marks = [budget * k / 5 for k in range(1, 6)]
print("FID curve (mean over seeds of the latest epoch-end FID) at "
      + ", ".join(f"{m:g}" for m in marks) + f" s ({clock} clock):")
for name in names:
    rows = []
    for d in sorted(glob.glob(f"{out}/{name}-seed*")):
        recs = [json.loads(l) for l in open(f"{d}/log.jsonl")]
        ends = [(r.get(key, 0.0), r["fid"]) for r in recs
                if r.get("kind") == "epoch" and r.get("fid") is not None]
        rows.append([next((f for t, f in reversed(ends) if t <= m + 1e-9), None) for m in marks])
    cells = []
    for j in range(len(marks)):
        vals = [r[j] for r in rows if r[j] is not None]
        cells.append(f"{sum(vals) / len(vals):9.1f}" if vals else f"{'-':>9}")
    print(f"curve {name:<10}" + "".join(cells) + f"   ({len(rows)} seed(s))")
