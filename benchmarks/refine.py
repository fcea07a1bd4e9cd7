"""A refined phase diagram against the dense grid it stands for: jobs, wall time, and how often the two agree.

    python benchmarks/refine.py [--start 5] [--depth 2] [--jobs 2] [--out outputs/bench/refine]

Runs one refine sweep (hydra/sweeper=refine) and the dense grid at the finest resolution it can reach (every lattice
point), both through the command line with the same config and seed, one after the other on the same cores. Prints
the jobs and the wall time of each, and the fraction of the dense grid's points on which the refined diagram (each
dense point read from the refined cell that contains it, detect/refine.Plan.label_at) gives the dense grid's label.
Both diagrams go to the output folder (refined.png, dense.png). docs/guide/refine.md shows a run of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grok_sweep import plot  # noqa: E402
from grok_sweep.aggregate.refined import Refined  # noqa: E402
from grok_sweep.aggregate.table import job_labels  # noqa: E402
from grok_sweep.detect import DEFAULT_RULE  # noqa: E402
from grok_sweep.detect.refine import Axis, Plan, Point, point_label  # noqa: E402
from grok_sweep.store.layout import REFINE_FILE, SUMMARY_FILE  # noqa: E402

# a CPU-size plane (p = 41, width 32) whose boundary between memorization and grokking within the step budget runs
# across it; at larger weight decay comprehension comes in too
CONFIG = ["modulus=41", "width=32", "steps=1500", "eval_every=20", "train.early_stop=100", "seed=0"]
AXES = (Axis("train_ratio", 0.3, 0.9), Axis("weight_decay", 0.02, 0.2, log=True))


def sweep(args: list[str], folder: Path, jobs: int) -> float:
    """One multirun of the command line into `folder`; its wall time."""
    cmd = [sys.executable, "-m", "grok_sweep", "-m", *CONFIG, *args, f"hydra.sweep.dir={folder}",
           f"hydra.launcher.n_jobs={jobs}", "~hydra.callbacks.view"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark: the sweep failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def labels_by_point(folder: Path, steps: int) -> dict[Point, str]:
    """Each lattice point's label (the majority of its jobs') from a sweep folder's summary."""
    summary = pd.read_parquet(folder / SUMMARY_FILE)
    summary["label"] = job_labels(summary)
    index = [{a.text(k, steps): k for k in range(steps + 1)} for a in AXES]
    out = {}
    for (u, v), group in summary.groupby([a.key for a in AXES]):
        out[(index[0][f"{u:.{AXES[0].digits(steps)}g}"], index[1][f"{v:.{AXES[1].digits(steps)}g}"])] = point_label(
            group["label"]
        )
    return out


def draw(plan: Plan, labels: dict[Point, str], path: Path, title: str) -> None:
    at = [(r, p) for r, rnd in enumerate(plan.rounds) for p in rnd]
    points = pd.DataFrame([{AXES[0].key: AXES[0].value(p[0], plan.steps), AXES[1].key: AXES[1].value(p[1], plan.steps),
                            "round": r, "label": labels[p]} for r, p in at])  # fmt: skip
    ref = Refined(AXES, plan, labels, points)
    frames = ref.frames(AXES[1].key)
    plot.refined_diagram(frames, (AXES[1].key, AXES[1].log), (AXES[0].key, AXES[0].log), DEFAULT_RULE, path, title)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--start", type=int, default=5)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2, help="jobs at a time (joblib's n_jobs), for both sweeps")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench" / "refine")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    plan = Plan(a.start, a.depth, 10**9)
    n = plan.steps + 1
    ranges = [f"{AXES[0].key}=interval({AXES[0].lo},{AXES[0].hi})",
              f"{AXES[1].key}=tag(log,interval({AXES[1].lo},{AXES[1].hi}))"]  # fmt: skip
    print(f"config: {' '.join(CONFIG)}; {' '.join(ranges)}; start {a.start}, depth {a.depth}: a {n} x {n} lattice")
    t_ref = sweep([*ranges, "hydra/sweeper=refine", f"hydra.sweeper.start={a.start}", f"hydra.sweeper.depth={a.depth}",
                   f"hydra.sweeper.max_jobs={n * n}"], a.out / "refined", a.jobs)  # fmt: skip
    grid = [f"{ax.key}={','.join(ax.text(k, plan.steps) for k in range(n))}" for ax in AXES]
    t_dense = sweep(grid, a.out / "dense", a.jobs)
    rounds = json.loads((a.out / "refined" / REFINE_FILE).read_text())["rounds"]
    plan.restore([[tuple(p["point"]) for p in r] for r in rounds])
    refined, dense = labels_by_point(a.out / "refined", plan.steps), labels_by_point(a.out / "dense", plan.steps)
    agree = sum(plan.label_at(p, refined) == lab for p, lab in dense.items()) / len(dense)
    print(f"dense grid:    {len(dense):4d} jobs, {t_dense:6.0f} s")
    print(f"refine sweep:  {len(refined):4d} jobs, {t_ref:6.0f} s, in {len(rounds)} rounds "
          f"({', '.join(str(len(r)) for r in rounds)} points)")  # fmt: skip
    print(f"jobs: {len(refined) / len(dense):.0%} of the dense grid's; wall time: {t_ref / t_dense:.0%} of its")
    print(f"agreement: the refined diagram gives the dense grid's label at {agree:.1%} of its {len(dense)} points")
    full = Plan(a.start, a.depth, 10**9)
    full.restore([full.rounds[0], [p for p in dense if p not in set(full.rounds[0])]])
    draw(full, dense, a.out / "dense.png", f"The dense grid: {len(dense)} points")
    shutil.copy(a.out / "refined" / "phase_diagram.png", a.out / "refined.png")
    print(f"diagrams: {a.out / 'refined.png'}, {a.out / 'dense.png'}")


if __name__ == "__main__":
    main()
