"""The curves: train and test accuracy and loss against step, one pair of panels per cell of the sweep (and the
fraction of train examples whose softmax collapsed, on the accuracy panel, where it is ever above 0).

A cell is one combination of the swept keys other than the seed; every seed of it is drawn in the cell's panels
as thin lines, so a figure summarizes a sweep of any number of seeds. A few dozen cells go to one figure, more to
further pages (curves_2.png, ...). Drawing stays cheap at thousands of jobs: no constrained layout, shared axes,
one line collection per panel and colour, and long runs thinned to a few hundred points on the log step axis.
Each job's own curves: `load_run(folder).metrics`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from grok_sweep.plot.style import COLLAPSE_LINE, LINES, fmt, log_scale, mark_phases, save

CELLS_PER_PAGE = 24
MAX_PAGES = 10  # beyond this many pages the figure stops; load_run draws any job
MAX_POINTS = 400  # per line: enough for a log axis a few hundred pixels wide
METRIC_COLS = ("train_acc", "test_acc", "train_loss", "test_loss", "softmax_collapse")


def page_paths(path: Path, n_cells: int) -> list[Path]:
    """curves.png, curves_2.png, ...: one per CELLS_PER_PAGE cells, at most MAX_PAGES."""
    pages = min(max(1, math.ceil(n_cells / CELLS_PER_PAGE)), MAX_PAGES)
    return [path if i == 0 else path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(pages)]


def curves(metrics: pd.DataFrame, summary: pd.DataFrame, cells: pd.DataFrame, keys: list[str], path: Path,
           ncols: Optional[int] = None) -> list[Path]:  # fmt: skip
    """Two panels per cell (`cells`: one row per cell, with its `keys` values, label, agree, n and jobs, as
    aggregate.table.cell_labels gives them): every job's train and test accuracy against step (log), and their
    loss (log-log); the medians of its jobs' memorization and sustained grokking steps marked. `ncols` cells to a
    row. Returns the pages written."""
    by_job = _per_job(metrics)
    jobs = summary.set_index("job", drop=False)
    paths = page_paths(path, len(cells))
    for page, out in enumerate(paths):
        part = cells.iloc[page * CELLS_PER_PAGE : (page + 1) * CELLS_PER_PAGE]
        _page(part, by_job, jobs, keys, out, ncols)
    return paths


def _page(cells: pd.DataFrame, by_job: dict, jobs: pd.DataFrame, keys: list[str], path: Path,
          ncols: Optional[int]) -> None:  # fmt: skip
    n = len(cells)
    ncols = min(n, ncols or (2 if n <= 4 else 3 if n <= 9 else 4))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(max(7.0, 5.6 * ncols), 2.5 * nrows + 0.9))
    grid = fig.subplots(nrows, 2 * ncols, squeeze=False, sharex=True)
    fig.subplots_adjust(left=0.06 / ncols + 0.02, right=0.99, top=1 - 0.75 / (2.5 * nrows + 0.9), bottom=0.45 /
                        (2.5 * nrows + 0.9), wspace=0.32, hspace=0.55)  # fmt: skip
    pairs = list(zip(grid[:, 0::2].ravel(), grid[:, 1::2].ravel(), strict=True))
    collapsed = False
    for (acc, loss), (_, cell) in zip(pairs, cells.iterrows(), strict=False):
        members = jobs.loc[[j for j in cell["jobs"] if j in jobs.index]]
        collapsed = _draw_cell(acc, loss, [by_job.get(j) for j in members["job"]], members, cell, keys) or collapsed
    for acc, loss in pairs[n:]:
        acc.set_visible(False)
        loss.set_visible(False)
    for acc, loss in pairs[(nrows - 1) * ncols :]:
        acc.set_xlabel("step (log scale)", fontsize=8)
        loss.set_xlabel("step (log scale)", fontsize=8)
    lines = [*LINES, COLLAPSE_LINE] if collapsed else LINES
    per_row = len(lines) if len(lines) <= 4 or ncols > 1 else 3  # one cell's figure is too narrow for five
    if per_row < len(lines):  # a second legend row: the panels start lower
        fig.subplots_adjust(top=1 - 1.0 / (2.5 * nrows + 0.9))
    fig.legend(handles=[Line2D([], [], color=c, ls=ls, label=name) for name, c, ls in lines], loc="upper center",
               ncols=per_row, fontsize=9)  # fmt: skip
    save(fig, path, dpi=100 if n <= 12 else 80)


def _thin(steps: np.ndarray) -> np.ndarray:
    """Indices of at most ~MAX_POINTS rows, spread evenly on a log step axis (all rows if fewer)."""
    if len(steps) <= MAX_POINTS:
        return np.arange(len(steps))
    marks = np.geomspace(max(steps[0], 1), steps[-1], MAX_POINTS)
    return np.unique(np.searchsorted(steps, marks).clip(0, len(steps) - 1))


def _per_job(metrics: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
    """Each job's step and metric columns as numpy arrays (slices of one array per column: no per-job frames)."""
    if not len(metrics):
        return {}
    names = metrics["job"].to_numpy()
    order = np.argsort(names, kind="stable")
    cols = {c: metrics[c].to_numpy(dtype=float, na_value=np.nan)[order] for c in ("step", *METRIC_COLS) if c in metrics}
    names = names[order]
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    ends = np.r_[starts[1:], len(names)]
    return {names[a]: {c: v[a:b] for c, v in cols.items()} for a, b in zip(starts, ends, strict=True)}


def _segments(runs: list[Optional[dict]], col: str) -> list[np.ndarray]:
    out = []
    for run in runs:
        if run is None or col not in run:
            continue
        keep = (run["step"] >= 1) & ~np.isnan(run[col])  # step 0 has no place on a log axis
        xy = np.column_stack([run["step"][keep], run[col][keep]])
        if len(xy):
            out.append(xy[_thin(xy[:, 0])])
    return out


def _draw_cell(acc, loss, runs: list[Optional[dict]], members: pd.DataFrame, cell: pd.Series,
               keys: list[str]) -> bool:  # fmt: skip
    """Draw one cell's panels; whether it drew a softmax collapse (drawn only where some run's is above 0)."""
    (_, c_train, _), (_, c_test, _) = LINES[:2]
    alpha = 1.0 if len(runs) <= 1 else max(0.15, 1.0 / math.sqrt(len(runs)))
    width = 1.0 if len(runs) <= 3 else 0.6
    medians = members[["memorization_step", "sustained_grokking_step"]].median(skipna=True)
    segs = {col: _segments(runs, col) for col in METRIC_COLS}
    for ax, what in ((acc, "acc"), (loss, "loss")):
        for col, color in ((f"train_{what}", c_train), (f"test_{what}", c_test)):
            if segs[col]:
                ax.add_collection(LineCollection(segs[col], colors=color, linewidths=width, alpha=alpha))
        mark_phases(ax, medians, at_least=1)
        ax.set_xscale("log")
        ax.autoscale_view()
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        if not any(r is not None and len(r["step"]) for r in runs):
            ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    acc.set_ylim(-0.03, 1.03)
    acc.set_ylabel("accuracy", fontsize=8)
    loss.set_ylabel("loss", fontsize=8)
    losses = [pd.Series(s[:, 1]) for s in segs["train_loss"] + segs["test_loss"]]
    log_scale(loss, *(losses or [pd.Series(dtype=float)]))
    acc.set_title(_title(cell, keys, members), fontsize=8, loc="left")
    collapsed = any((s[:, 1] > 0).any() for s in segs["softmax_collapse"])
    if collapsed:
        _, color, ls = COLLAPSE_LINE
        acc.add_collection(LineCollection(segs["softmax_collapse"], colors=color, linestyles=ls, linewidths=width,
                                          alpha=alpha))  # fmt: skip
    return collapsed


def _title(cell: pd.Series, keys: list[str], members: pd.DataFrame) -> str:
    where = ", ".join(f"{k.split('.')[-1]}={fmt(cell[k])}" for k in keys if k in cell)
    if not where and len(members) == 1 and members["job"].iloc[0] != ".":  # "." is a single run's own folder
        where = str(members["job"].iloc[0])
    seeds = f" ({cell['agree']}/{cell['n']} seeds)" if cell["n"] > 1 else ""
    grok = "" if pd.isna(cell["median_grok"]) else f", grokked @{int(cell['median_grok'])}"
    return f"{where}\n{cell['label']}{seeds}{grok}" if where else f"{cell['label']}{seeds}{grok}"
