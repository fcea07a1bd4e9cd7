"""Ungrokking (Varma et al. 2023) on the default config: a grokked run trained on, with a fresh AdamW, on the first N of
its own train pairs, for several N and two weight decays. Below a critical N its test accuracy falls.

    python benchmarks/ungrok.py                      # the parent, then 3000 steps per child (+experiment=varma2023)
    python benchmarks/ungrok.py --subsets 150,400 --decays 1 --figure docs/img/ungrok.png

Grows the parent (the default config, early stopping as configured: it groks, then stops), then trains every child
(init.from=<parent> init.subset=N weight_decay=W, conf/experiment/varma2023.yaml) one job per core at a time, each a
real grok_sweep job in `--out`, and prints the final test accuracy (on the parent's test split) against N for each
weight decay, with where it crosses 0.5: the critical size. `--figure` draws each child's test accuracy over its
steps. A folder that holds a finished run is not run again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from jobs import ROOT, folder, run_all, run_one, say_unfinished, table_head

SUBSETS = (100, 150, 200, 250, 300, 400, 600, 1123)  # 1123: all of the parent's train pairs
DECAYS = (0.3, 1.0)


def _final(job: Path) -> float:
    return float(pd.read_parquet(job / "metrics.parquet")["test_acc"].dropna().iloc[-1])


def _critical(finals: dict[int, float]) -> str:
    """Between which subset sizes the final test accuracy crosses 0.5 (the largest N below it, the next one)."""
    below = [n for n, a in finals.items() if a < 0.5]
    above = [n for n in finals if n > max(below, default=0) and finals[n] >= 0.5]
    if not below:
        return f"< {min(finals)}"
    return f"{max(below)}-{min(above)}" if above else f"> {max(below)}"


def _figure(out: Path, subsets: list[int], decay: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for n in subsets:
        m = pd.read_parquet(folder(out, f"n{n}_wd{decay:g}", 0) / "metrics.parquet").dropna(subset=["test_acc"])
        ax.plot(m["step"], m["test_acc"], label=f"N = {n}")
    ax.set(xlabel="step of the continued run", ylabel="test accuracy", ylim=(-0.02, 1.02),
           title=f"A grokked run trained on its first N train pairs (weight decay {decay:g})")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="config overrides for every child, after +experiment=varma2023")
    ap.add_argument("--subsets", default=",".join(map(str, SUBSETS)), help="the children's init.subset values")
    ap.add_argument("--decays", default=",".join(f"{d:g}" for d in DECAYS), help="the children's weight decays")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    ap.add_argument("--figure", type=Path, help="draw the children's test accuracy (the first weight decay) here")
    stamp = time.strftime("ungrok-%Y%m%d-%H%M%S")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / stamp, help="where the runs go")
    args = ap.parse_args()
    subsets, decays = [int(n) for n in args.subsets.split(",")], [float(d) for d in args.decays.split(",")]
    parent = args.out / "parent"
    status, seconds = run_one([], str(parent))
    found = pd.read_parquet(parent / "metrics.parquet")
    print(f"parent (the default config): {status} after {len(found)} steps, {seconds:.0f} s, final test accuracy "
          f"{found['test_acc'].dropna().iloc[-1]:.3f}: {parent}")  # fmt: skip
    runs = {(f"n{n}_wd{d:g}", 0): ["+experiment=varma2023", f"init.from={parent}", f"init.subset={n}",
                                   f"weight_decay={d}", *args.overrides] for n in subsets for d in decays}  # fmt: skip
    done = run_all(runs, args.out, args.jobs)
    finals = {d: {n: _final(folder(args.out, f"n{n}_wd{d:g}", 0)) for n in subsets} for d in decays}
    table_head("train pairs N", *(f"final test acc, weight decay {d:g}" for d in decays))
    for n in subsets:
        print(f"| {n} | " + " | ".join(f"{finals[d][n]:.3f}" for d in decays) + " |")
    print("| crosses 0.5 between | " + " | ".join(_critical(finals[d]) for d in decays) + " |")
    say_unfinished({k: v[0] for k, v in done.items()})
    if args.figure:
        _figure(args.out, subsets, decays[0], args.figure)


if __name__ == "__main__":
    main()
