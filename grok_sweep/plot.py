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
from grok_sweep.files import atomic_write
from grok_sweep.store import COMPLETED

COLORS = {
    "comprehension": "#4daf4a",
    "grokking": "#984ea3",
    "memorization": "#377eb8",
    "confusion": "#e6ab02",
    "diverged": "#e41a1c",
    "failed": "#999999",
    "running": "#f0f0f0",
    "incomplete": "#dddddd",
}

LINES = (  # name, colour, line style of what the curves show (accuracy left, loss right)
    ("train", "#377eb8", "-"),
    ("test", "#e41a1c", "-"),
    ("memorization step", "#377eb8", "--"),
    ("grokking step (sustained)", "#984ea3", "--"),
)
MEASURE_LINES = (  # column, label, colour of measures.png's losses
    ("train_loss", "train loss", "#377eb8"),
    ("test_loss", "test loss", "#e41a1c"),
    ("restricted_loss", "restricted loss", "#4daf4a"),
    ("excluded_loss", "excluded loss", "#ff7f00"),
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
    _save(fig, path, dpi=110)
    return path


def curves(metrics: pd.DataFrame, summary: pd.DataFrame, keys: list[str], path: Path,
           ncols: Optional[int] = None) -> Path:  # fmt: skip
    """Small multiples, two panels per job: train and test accuracy against step (log), and their loss
    (log-log); memorization and grokking marked. One job per summary row, in its order, `ncols` to a row."""
    n = len(summary)
    ncols = min(n, ncols or (4 if n <= 16 else math.ceil(math.sqrt(n))))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(max(8.0, 5.6 * ncols), 2.6 * nrows + 0.8), layout="constrained")
    grid = fig.subplots(nrows, 2 * ncols, squeeze=False)
    pairs = list(zip(grid[:, 0::2].ravel(), grid[:, 1::2].ravel(), strict=True))
    for (acc, loss), (_, job) in zip(pairs, summary.iterrows(), strict=False):
        _draw_curve(acc, loss, metrics[metrics["job"] == job["job"]], job, keys)
    for acc, loss in pairs[n:]:
        acc.set_visible(False)
        loss.set_visible(False)
    for acc, loss in pairs[(nrows - 1) * ncols :]:
        acc.set_xlabel("step (log scale)")
        loss.set_xlabel("step (log scale)")
    fig.legend(handles=[Line2D([], [], color=c, ls=ls, label=name) for name, c, ls in LINES],
               loc="outside upper center", ncols=4)  # fmt: skip
    _save(fig, path, dpi=100 if n <= 36 else 60)
    return path


def _mark_phases(ax, job: pd.Series, at_least: int = 0) -> None:
    for col, (_, color, ls) in zip(("memorization_step", "sustained_grokking_step"), LINES[2:], strict=True):
        if not pd.isna(job[col]):
            ax.axvline(max(int(job[col]), at_least), color=color, ls=ls, lw=1)


def _draw_curve(acc, loss, rows: pd.DataFrame, job: pd.Series, keys: list[str]) -> None:
    rows = rows[rows["step"] >= 1]  # step 0 has no place on a log axis
    evals = rows.dropna(subset=["test_acc"])
    (_, c_train, _), (_, c_test, _) = LINES[:2]
    for ax, col in ((acc, "acc"), (loss, "loss")):
        ax.plot(rows["step"], rows[f"train_{col}"], color=c_train, lw=1)
        ax.plot(evals["step"], evals[f"test_{col}"], color=c_test, lw=1)
        _mark_phases(ax, job, at_least=1)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if rows.empty:
            ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    acc.set_ylim(-0.03, 1.03)
    acc.set_ylabel("accuracy", fontsize=8)
    loss.set_ylabel("loss", fontsize=8)
    _log_scale(loss, rows["train_loss"], evals["test_loss"])
    label = job["phase"] if job["status"] in COMPLETED else job["status"]
    title = ", ".join(f"{k.split('.')[-1]}={_fmt(job[k])}" for k in keys)
    title = title or ("" if job["job"] == "." else str(job["job"]))  # "." is a single run's own folder
    acc.set_title(f"{title}\n{label}" if title else label, fontsize=8)


def _log_scale(ax, *values: pd.Series) -> None:
    # matplotlib refuses a log axis with no positive finite value (a run that diverged at once)
    v = np.concatenate([s.to_numpy(dtype=float) for s in values])
    if np.any(np.isfinite(v) & (v > 0)):
        ax.set_yscale("log")


def measures(rows: pd.DataFrame, job: pd.Series, path: Path) -> Path:
    """One job's progress measures against step, as in Nanda et al.'s figure 7: train, test, restricted
    and excluded loss (log) with the weight norm, and the Fourier Gini with the number of key frequencies."""
    evals = rows.dropna(subset=["restricted_loss"])
    fig = Figure(figsize=(9.0, 6.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for col, name, color in MEASURE_LINES:
        data = rows if col == "train_loss" else evals
        top.plot(data["step"], data[col], color=color, lw=1, label=name)
    _log_scale(top, rows["train_loss"], *(evals[c] for c, _, _ in MEASURE_LINES[1:]))
    top.set_ylabel("loss (log scale)")
    norm = top.twinx()
    norm.plot(evals["step"], evals["weight_norm"], color="black", lw=1, ls=":", label="weight norm")
    norm.set_ylabel("weight norm")
    bottom.plot(evals["step"], evals["fourier_gini"], color="#984ea3", lw=1, label="Fourier Gini of the embedding")
    bottom.set_ylabel("Gini")
    keys = bottom.twinx()
    keys.step(evals["step"], evals["n_key_freqs"], color="#a65628", lw=1, where="post", label="key frequencies")
    keys.set_ylabel("key frequencies")
    for ax in (top, bottom):
        _mark_phases(ax, job)
        ax.grid(alpha=0.3)
    bottom.set_xlabel("step")
    handles = [h for ax in (top, norm, bottom, keys) for h in ax.get_legend_handles_labels()[0]]
    handles += [Line2D([], [], color=c, ls=ls, label=name) for name, c, ls in LINES[2:]]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    title = "progress measures"
    if len(evals):
        last = evals.iloc[-1]
        title += f"; key frequencies at step {int(last['step'])}: {[int(k) for k in last['key_freqs']]}"
    fig.suptitle(title, fontsize=10)
    _save(fig, path, dpi=100)
    return path


def _save(fig: Figure, path: Path, dpi: int) -> None:
    # atomic, like every artifact: a reader (or a full disk) never leaves half a PNG
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
