"""The optimizers side by side on the default config, with and without warmup, over seeds: when each memorizes and
groks, and how fast it steps.

    python benchmarks/optimizers.py                  # every variant below, 3 seeds, 3000 steps at most
    python benchmarks/optimizers.py --seeds 5 --only adamw,muon_0.02 steps=5000

Runs every variant of VARIANTS with and without a 10-update warmup (optim.warmup_steps=10) for every seed, one job per
core at a time, each a real grok_sweep job (run_job) in `--out`, and prints one row per variant and warmup: the median
over seeds of the memorization step (train accuracy >= 0.99) and of the sustained grokking step (aggregation's
detection, grok_sweep.detect), "never" if half the seeds or more did not get there within the budget, the seeds'
phases, the median final test accuracy, and the median steps/s of the seeds' runs (two runs at a time on two cores:
compare rows, not machines). A folder that holds a finished run is not run again. The reference is the first row
(the default config: AdamW, weight decay 1), in the same command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from interventions import _fmt, _found, _median
from jobs import ROOT, budget, folder, run_all, say_unfinished, table_head

CONFIG = ["steps=3000", "eval_every=10", "train.early_stop=200", "train.checkpoint_every=0"]
# each optimizer with the weight decay its own rule needs on this task: coupled L2 of 1 (Adam, SGD) drives every
# weight to 0 within a few hundred steps here (Adam's L2 step is about lr * sign(p) once the loss gradient is small)
VARIANTS = {  # name: (what it is, overrides)
    "adamw": ("AdamW, lr 1e-2, weight decay 1 (the default config)", ["optim=adamw"]),
    "adam_l2": ("Adam + L2 1e-3 (torch Adam's weight_decay), lr 1e-2", ["optim=adam", "optim.lr=0.01",
                                                                       "weight_decay=0.001"]),
    "sgd": ("SGD, momentum 0.9, lr 0.1, L2 1e-3", ["optim=sgd", "optim.lr=0.1", "weight_decay=0.001"]),
    "muon_0.02": ("Muon lr 0.02 (AdamW lr 1e-2 on the rest), weight decay 1", ["optim=muon", "optim.lr=0.02"]),
    "muon_0.005": ("Muon lr 0.005 (AdamW lr 1e-2 on the rest), weight decay 1", ["optim=muon", "optim.lr=0.005"]),
}  # fmt: skip
WARMUPS = (0, 10)


def _speed(job: Path) -> float:
    return json.loads((job / "result.json").read_text())["steps_per_s"]


def _row(name: str, warmup: int, jobs: list[Path]) -> str:
    found = [_found(j) for j in jobs]
    mem, grok = (_median([f[c] for f in found]) for c in ("memorization_step", "grokking_step"))
    final = statistics.median(f["final_test_acc"] for f in found)
    seeds = "; ".join(f"{_fmt(f['memorization_step'])} / {_fmt(f['grokking_step'])}" for f in found)
    phases = ", ".join(str(f["phase"]) for f in found)
    speed = statistics.median(_speed(j) for j in jobs)
    return (f"| {VARIANTS[name][0]} | {warmup} | {_fmt(mem)} | {_fmt(grok)} | {phases} | {final:.3f} | {speed:.1f} "
            f"| {seeds} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="config overrides for every run, after CONFIG")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", help=f"comma-separated variants (default: all of {', '.join(VARIANTS)})")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    stamp = time.strftime("optimizers-%Y%m%d-%H%M%S")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / stamp, help="where the runs go")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(VARIANTS)
    if unknown := [n for n in names if n not in VARIANTS]:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    base = [*CONFIG, *args.overrides]
    runs = {(f"{n}_w{w}", s): [*base, *VARIANTS[n][1], f"optim.warmup_steps={w}", f"seed={s}"]
            for n in names for w in WARMUPS for s in range(args.seeds)}  # fmt: skip
    print(f"config: the default config with {' '.join(base)}; seeds 0..{args.seeds - 1}")
    status = {k: v[0] for k, v in run_all(runs, args.out, args.jobs).items()}
    table_head("optimizer", "warmup", "memorization step", "grokking step", "phases", "final test acc", "steps/s",
               "per seed: memorization / grokking")  # fmt: skip
    for n in names:
        for w in WARMUPS:
            print(_row(n, w, [folder(args.out, f"{n}_w{w}", s) for s in range(args.seeds)]))
    print(f"(medians over seeds; never: not within the {budget(base)}-step budget; grokking step: test accuracy "
          ">= 0.99 for good)")  # fmt: skip
    say_unfinished(status)


if __name__ == "__main__":
    main()
