"""Aggregation at scale: sweeps of 100, 1,000 and 5,000 tiny jobs, aggregated in a fresh process each.

    python benchmarks/aggregate.py                      # 100, 1000 and 5000 jobs
    python benchmarks/aggregate.py --sizes 100 1000

Trains a 4-job sweep of tiny jobs once (`-m seed=0,1,2,3 modulus=11 width=32 steps=50`: 50 metrics rows each),
then builds sweeps of N jobs from it, job k a copy of job k % 4 given seed k (its folder name, config, overrides,
result.json and the sweep's multirun.yaml say so, so the copies read as one real N-seed sweep). Kept under
--dir and reused on the next run. Each size is aggregated twice, each time in a new process as
`python -m grok_sweep.aggregate` does it: tables only (`figures=False`), then everything (figures included).
Prints the wall time of `aggregate()`, seconds per 1,000 jobs (linear growth keeps that figure flat), and the peak
RSS of the aggregating process and (in brackets) of its largest reading worker (store/scan.py; 0: read in-process).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["modulus=11", "width=32", "steps=50"]
MEASURE = """
import json, resource, sys, time
from grok_sweep.aggregate import aggregate
t0 = time.perf_counter()
summary, _ = aggregate(sys.argv[1], echo=lambda *a: None, figures=sys.argv[2] == "1")
peak = [resource.getrusage(who).ru_maxrss / 1024 for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
print(json.dumps({"s": time.perf_counter() - t0, "rss_mib": peak[0], "worker_mib": peak[1], "jobs": len(summary)}))
"""


def base_sweep(folder: Path) -> list[Path]:
    """The 4 trained jobs (trained once, then reused)."""
    if not (folder / "summary.parquet").exists():
        shutil.rmtree(folder, ignore_errors=True)
        cmd = [sys.executable, "-m", "grok_sweep", "-m", "seed=0,1,2,3", *BASE, f"hydra.sweep.dir={folder}"]
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return sorted(p.parent for p in folder.glob("*/.hydra"))


def _reseed(text: str, old: int, new: int) -> str:
    return re.sub(rf"(?m)^(- )?seed(: |=){old}$", lambda m: f"{m.group(1) or ''}seed{m.group(2)}{new}", text)


def copy_job(src: Path, dst: Path, old: int, new: int) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".grok_sweep.lock"))
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml"):
        (dst / name).write_text(_reseed((dst / name).read_text(), old, new))
    result = json.loads((dst / "result.json").read_text())
    result["config"] = _reseed(result["config"], old, new)
    result["overrides"] = [f"seed={new}" if o == f"seed={old}" else o for o in result.get("overrides") or []]
    (dst / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


def sweep_of(n: int, jobs: list[Path], folder: Path) -> Path:
    """A sweep of n jobs built from the trained ones (reused if complete)."""
    if len(list(folder.glob("*/result.json"))) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    plan = (jobs[0].parent / "multirun.yaml").read_text().replace("- seed=0,1,2,3", f"- seed=range(0,{n})")
    (folder / "multirun.yaml").write_text(plan)
    for k in range(n):
        src = jobs[k % len(jobs)]
        old = int(re.search(r"seed=(\d+)", src.name).group(1))
        copy_job(src, folder / src.name.replace(f"seed={old}", f"seed={k}"), old, k)
    return folder


def measure(folder: Path, figures: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), "1" if figures else "0"], cwd=ROOT,
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="jobs per sweep")
    ap.add_argument("--dir", type=Path, default=ROOT / "outputs" / "bench" / "aggregate", help="where the sweeps go")
    args = ap.parse_args()
    jobs = base_sweep(args.dir / "base")
    print("| jobs | tables only: s | s per 1000 jobs | with figures: s | s per 1000 jobs | peak RSS MiB "
          "(a reading worker's) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        t0 = time.perf_counter()
        folder = sweep_of(n, jobs, args.dir / f"n{n}")
        built = time.perf_counter() - t0
        tables, whole = measure(folder, False), measure(folder, True)
        assert tables["jobs"] == whole["jobs"] == n, (tables, whole)
        cells = [f"{r['s']:.2f} | {r['s'] / n * 1000:.2f}" for r in (tables, whole)]
        rss = max(tables["rss_mib"], whole["rss_mib"])
        workers = max(tables["worker_mib"], whole["worker_mib"])
        print(f"| {n} | {' | '.join(cells)} | {rss:.0f} ({workers:.0f}) |", flush=True)
        print(f"(built in {built:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
