"""The README's figure: the headline grid's curves, drawn by grok_sweep's own plot code.

    python docs/make_figure.py                     # runs the headline grid first (a few minutes on 2 cores)
    python docs/make_figure.py SWEEP_DIR           # draws an existing sweep of that grid
    python docs/make_figure.py SWEEP_DIR --out x.png

Writes docs/img/headline_curves.png unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from grok_sweep import load_sweep
from grok_sweep.aggregate.table import cell_labels
from grok_sweep.plot.curves import curves

ROOT = Path(__file__).resolve().parents[1]
GRID = ["-m", "weight_decay=0.1,1.0", "train_ratio=0.2,0.3,0.5"]  # the README's grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", nargs="?", type=Path, help="a finished sweep of the grid (default: run it)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "headline_curves.png")
    args = ap.parse_args()
    sweep = args.sweep or ROOT / "outputs" / "sweeps" / "headline"
    if args.sweep is None:
        subprocess.run([sys.executable, "-m", "grok_sweep", *GRID, f"hydra.sweep.dir={sweep}"], check=True)
    found = load_sweep(sweep)
    keys = [k for k in ("weight_decay", "train_ratio") if k in found.summary]  # a row per weight decay
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(curves(found.metrics, found.summary, cell_labels(found.summary, keys), keys, args.out, ncols=3)[0])


if __name__ == "__main__":
    main()
