"""A refine sweep aggregated (hydra/sweeper=refine): each job's round and cell, each point's label, the refined
diagram's cells and the boundary's segments, from the sweep's record (store/refine_record.py) and its jobs.

Pure functions of the record, the jobs read back and their summary; the refining rule is detect/refine.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from grok_sweep.aggregate.table import LABEL_ORDER, job_labels
from grok_sweep.detect.refine import Axis, Cell, Plan, Point, point_label
from grok_sweep.store.jobs import Job
from grok_sweep.store.layout import INCOMPLETE
from grok_sweep.store.refine_record import Record

COARSE = "coarse grid"  # the `cell` of a job of round 0


@dataclass
class Refined:
    axes: tuple[Axis, Axis]
    plan: Plan  # as the sweep left it: its points, rounds and leaves
    labels: dict[Point, str]  # each point run: the majority of its jobs' labels (detect/refine.point_label)
    points: pd.DataFrame  # one row per point: both keys, i, j, round, label, agree, n, median_grok

    def cell_text(self, cell: Cell) -> str:
        """'train_ratio 0.3-0.425, weight_decay 0.1-0.548'"""
        s = self.plan.steps
        return ", ".join(f"{a.key} {a.text(lo, s)}-{a.text(lo + cell.size, s)}"
                         for a, lo in zip(self.axes, (cell.i, cell.j), strict=True))  # fmt: skip

    def frames(self, x_key: str) -> dict[str, pd.DataFrame]:
        """What the diagram draws, in the keys' values with `x_key`'s axis across: `lattice`, a rectangle per lattice
        point (half a step around it) with the label the diagram gives it; `leaves`, the cells where refinement
        ended; `points`, those run (x, y, label, round)."""
        flip = self.axes[0].key != x_key
        s = self.plan.steps

        def box(i0: float, i1: float, j0: float, j1: float) -> dict[str, float]:
            a, b = self.axes
            u = (a.value(max(i0, 0), s), a.value(min(i1, s), s))
            v = (b.value(max(j0, 0), s), b.value(min(j1, s), s))
            x, y = (v, u) if flip else (u, v)
            return {"x0": x[0], "x1": x[1], "y0": y[0], "y1": y[1]}

        grid = self.plan.label_grid(self.labels)
        lattice = pd.DataFrame(
            [{**box(i - 0.5, i + 0.5, j - 0.5, j + 0.5), "label": lab} for (i, j), lab in grid.items()]
        )
        leaves = pd.DataFrame([box(c.i, c.i + c.size, c.j, c.j + c.size) for c in self.plan.leaves])
        keys = [a.key for a in self.axes][:: -1 if flip else 1]
        points = self.points.rename(columns={keys[0]: "x", keys[1]: "y"})[["x", "y", "label", "round"]]
        return {"lattice": lattice, "leaves": leaves, "points": points}

    def boundary(self) -> list[str]:
        """One line per boundary segment: a leaf whose points disagree, and their labels."""
        order = {lab: k for k, lab in enumerate(LABEL_ORDER)}
        lines = []
        for cell in self.plan.boundary(self.labels):
            found = {self.labels[p] for p in self.plan.points if cell.contains(p) and p in self.labels}
            lines.append(f"{self.cell_text(cell)}: {' | '.join(sorted(found, key=lambda x: order.get(x, 99)))}")
        return lines


def refined(record: Record, jobs: list[Job], summary: pd.DataFrame) -> tuple[pd.DataFrame, Refined]:
    """The summary with each job's `round` and `cell` (the cell whose split added its point; COARSE for round 0),
    and the refined diagram of the sweep."""
    axes = tuple(Axis(a["key"], float(a["lo"]), float(a["hi"]), bool(a["log"])) for a in record.axes)
    replicates = max(len(record.rounds[0][0].jobs), 1) if record.rounds and record.rounds[0] else 1
    plan = Plan(record.start, record.depth, record.max_jobs // replicates)
    rounds = [[p.point for p in r] for r in record.rounds]
    plan.restore(rounds)
    where = {frozenset(o): (p.point, r) for r, rnd in enumerate(record.rounds) for p in rnd for o in p.jobs}
    by_name = {j.name: where.get(j.overrides) for j in jobs}
    point = [by_name.get(name) for name in summary["job"]]
    ref = Refined(axes, plan, {}, pd.DataFrame())  # type: ignore[arg-type]
    split = _split_cells(plan, rounds)
    cells = [None if w is None else COARSE if w[1] == 0 else ref.cell_text(split[w]) for w in point]
    at = list(summary.columns).index("seed") + 1
    summary = summary.copy()
    summary.insert(at, "round", pd.array([None if w is None else w[1] for w in point], dtype="Int64"))
    summary.insert(at + 1, "cell", pd.array(cells, dtype="string"))
    ref.points = _points(summary, point, axes, plan.steps)
    ref.labels = {(int(r.i), int(r.j)): r.label for r in ref.points.itertuples()}
    return summary, ref


def _split_cells(plan: Plan, rounds: list[list[Point]]) -> dict[tuple[Point, int], Cell]:
    """For each point of a round after the first, the leaf whose split in that round added it."""
    out = {}
    for r in range(1, len(rounds)):
        before = Plan(plan.start, plan.depth, plan.max_points)
        before.restore(rounds[:r])
        centres = set(rounds[r])
        split = [c for c in before.leaves if (c.i + c.size // 2, c.j + c.size // 2) in centres]
        for p in rounds[r]:
            out[(p, r)] = next(c for c in split if c.contains(p))
    return out


def _points(summary: pd.DataFrame, point: list[Optional[tuple]], axes: tuple[Axis, Axis], steps: int) -> pd.DataFrame:
    """One row per point run: its values, lattice place, round, label (TIE where its replicates split evenly), how
    many of its jobs carry that label, and their median sustained grokking step."""
    df = summary.assign(label=job_labels(summary), point=[None if w is None else w[0] for w in point],
                        round=[None if w is None else w[1] for w in point]).dropna(subset=["point"])  # fmt: skip
    rows = []
    for (p, r), group in df.groupby(["point", "round"], sort=True):
        label = point_label(group["label"].fillna(INCOMPLETE))
        steps_ = group.loc[group["label"] == label, "sustained_grokking_step"].dropna()
        rows.append({axes[0].key: float(axes[0].text(p[0], steps)), axes[1].key: float(axes[1].text(p[1], steps)),
                     "i": p[0],
                     "j": p[1], "round": r, "label": label, "agree": int((group["label"] == label).sum()),
                     "n": len(group), "median_grok": float(steps_.median()) if len(steps_) else None})  # fmt: skip
    return pd.DataFrame(rows)
