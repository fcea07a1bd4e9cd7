"""Figures from DataFrames: the phase diagram of a sweep and the accuracy curves of its jobs.

Uses matplotlib's object API (no pyplot), so it needs no display and keeps no global state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from grok_sweep.detect import PHASES, Rule
from grok_sweep.store import COMPLETED

COLORS = {
    "comprehension": "#4daf4a",
    "grokking": "#984ea3",
    "memorization": "#377eb8",
    "confusion": "#e6ab02",
    "diverged": "#e41a1c",
    "failed": "#999999",
    "incomplete": "#dddddd",
}

LINES = (  # name, colour, line style of what the curves show
    ("train accuracy", "#377eb8", "-"),
    ("test accuracy", "#e41a1c", "-"),
    ("memorization step", "#377eb8", "--"),
    ("grokking step (sustained)", "#984ea3", "--"),
)


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def _draw_cells(ax, cells: pd.DataFrame, rows: Optional[str], cols: Optional[str]) -> None:
    row_vals = sorted(cells[rows].unique()) if rows else [None]
    col_vals = sorted(cells[cols].unique()) if cols else [None]
    for _, cell in cells.iterrows():
        i = row_vals.index(cell[rows]) if rows else 0
        j = col_vals.index(cell[cols]) if cols else 0
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor=COLORS[cell["label"]], edgecolor="white", lw=2))
        step = (
            ""
            if cell["label"] not in PHASES
            else "no grokking"
            if pd.isna(cell["median_grok"])
            else (f"step {int(cell['median_grok'])}")
        )
        agree = f"\n{cell['agree']}/{cell['n']} agree" if cell["n"] > 1 else ""
        ax.text(j, i, f"{cell['label']}\n{step}{agree}", ha="center", va="center", fontsize=9, color="white"
                if cell["label"] in ("grokking", "memorization", "diverged") else "black")  # fmt: skip
    ax.set_xlim(-0.5, len(col_vals) - 0.5)
    ax.set_ylim(-0.5, len(row_vals) - 0.5)
    ax.set_xticks(range(len(col_vals)), [_fmt(v) for v in col_vals] if cols else [""])
    ax.set_yticks(range(len(row_vals)), [_fmt(v) for v in row_vals] if rows else [""])
    ax.set_xlabel(cols or "")
    ax.set_ylabel(rows or "")


def phase_diagram(panels: list[tuple[str, pd.DataFrame]], rows: Optional[str], cols: Optional[str],
                  rule: Rule, path: Path) -> Path:  # fmt: skip
    """One grid per panel, cells coloured by majority phase, annotated with the median grokking step."""
    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(max(9.0, 4.5 * ncols + 2.5), 3.6 * nrows + 1.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, cells) in zip(axes, panels, strict=False):
        _draw_cells(ax, cells, rows, cols)
        ax.set_title(title, fontsize=10)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(
        f"Grokking phase diagram\ncell: phase (majority over seeds) and median step from which test accuracy "
        f"stays >= {rule.threshold:g}\ngrokking: that step is >= {rule.delay_ratio:g}x the memorization step "
        f"and >= {rule.min_delay} steps after it",
        fontsize=10,
    )
    used = [*PHASES, *sorted({lab for _, c in panels for lab in c["label"]} - set(PHASES), key=list(COLORS).index)]
    fig.legend(handles=[Patch(color=COLORS[lab], label=lab) for lab in used], loc="outside right center")
    fig.savefig(path, dpi=110)
    return path


def curves(metrics: pd.DataFrame, summary: pd.DataFrame, keys: list[str], path: Path,
           ncols: Optional[int] = None) -> Path:  # fmt: skip
    """Small multiples of train and test accuracy against step (log), memorization and grokking marked.

    One panel per summary row, in its order, `ncols` to a row (default: about square).
    """
    n = len(summary)
    ncols = min(n, ncols or (4 if n <= 16 else math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(max(8.0, 3.4 * ncols), 2.6 * nrows + 0.8), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    for ax, (_, job) in zip(axes, summary.iterrows(), strict=False):
        _draw_curve(ax, metrics[metrics["job"] == job["job"]], job, keys)
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[(nrows - 1) * ncols :]:
        ax.set_xlabel("step (log scale)")
    for ax in axes[::ncols]:
        ax.set_ylabel("accuracy")
    fig.legend(handles=[Line2D([], [], color=c, ls=ls, label=name) for name, c, ls in LINES],
               loc="outside upper center", ncols=4)  # fmt: skip
    fig.savefig(path, dpi=100 if n <= 36 else 60)
    return path


def _draw_curve(ax, rows: pd.DataFrame, job: pd.Series, keys: list[str]) -> None:
    rows = rows[rows["step"] >= 1]  # step 0 has no place on a log axis
    evals = rows.dropna(subset=["test_acc"])
    (train, c_train, _), (test, c_test, _), *marks = LINES
    ax.plot(rows["step"], rows["train_acc"], color=c_train, lw=1)
    ax.plot(evals["step"], evals["test_acc"], color=c_test, lw=1)
    for col, (_, color, ls) in zip(("memorization_step", "sustained_grokking_step"), marks, strict=True):
        if not pd.isna(job[col]):
            ax.axvline(max(int(job[col]), 1), color=color, ls=ls, lw=1)
    if rows.empty:
        ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    label = job["phase"] if job["status"] in COMPLETED else job["status"]
    title = ", ".join(f"{k.split('.')[-1]}={_fmt(job[k])}" for k in keys)
    title = title or ("" if job["job"] == "." else str(job["job"]))  # "." is a single run's own folder
    ax.set_title(f"{title}\n{label}" if title else label, fontsize=8)
