"""Exporting a sweep to TensorBoard and to W&B (offline): time and size on disk, first and again.

    python benchmarks/export.py [--sweep outputs/bench/refine/dense]

Copies the sweep to a temporary folder (the original is left as it is), then runs, each as a user would in its own
process: `python -m grok_sweep.aggregate COPY --no-figures` (the reference: reading every job once), then
`python -m grok_sweep.export tensorboard COPY` and `... wandb COPY` twice each (the second finds nothing changed).
The default sweep is the dense 17 x 17 grid that benchmarks/refine.py leaves in outputs/bench/refine/dense.
docs/guide/share.md shows a run of it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grok_sweep.store.layout import METRICS_FILE, SUMMARY_FILE, TENSORBOARD_DIR, WANDB_DIR  # noqa: E402


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"benchmarks/export.py: {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweep", type=Path, default=ROOT / "outputs" / "bench" / "refine" / "dense")
    args = ap.parse_args()
    if not (args.sweep / SUMMARY_FILE).exists():
        sys.exit(f"benchmarks/export.py: {args.sweep} holds no aggregated sweep; run benchmarks/refine.py first, "
                 "or give --sweep an aggregated sweep folder")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "sweep"
        shutil.copytree(args.sweep, copy, ignore=shutil.ignore_patterns(WANDB_DIR, TENSORBOARD_DIR))
        jobs = len(pd.read_parquet(copy / SUMMARY_FILE))
        rows = len(pd.read_parquet(copy / METRICS_FILE, columns=["step"]))
        print(f"{args.sweep}: {jobs} jobs, {rows:,} metrics rows")
        ref = timed(["grok_sweep.aggregate", str(copy), "--no-figures"])
        print(f"{'aggregate (tables only)':<26} {ref:7.1f} s   1.00x")
        for tracker in (TENSORBOARD_DIR, WANDB_DIR):
            first = timed(["grok_sweep.export", tracker, str(copy)])
            again = timed(["grok_sweep.export", tracker, str(copy)])
            size = megabytes(copy / tracker)
            print(f"{'export ' + tracker:<26} {first:7.1f} s   {first / ref:5.2f}x   again {again:5.1f} s   "
                  f"{size:6.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
