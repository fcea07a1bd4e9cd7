"""The curves: train and test accuracy and loss against step, with memorization and grokking marked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from grok_sweep.plot.style import LINES, fmt, log_scale, mark_phases, save
from grok_sweep.store.layout import TRAINED


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
    save(fig, path, dpi=100 if n <= 36 else 60)
    return path


def _draw_curve(acc, loss, rows: pd.DataFrame, job: pd.Series, keys: list[str]) -> None:
    rows = rows[rows["step"] >= 1]  # step 0 has no place on a log axis
    evals = rows.dropna(subset=["test_acc"])
    (_, c_train, _), (_, c_test, _) = LINES[:2]
    for ax, col in ((acc, "acc"), (loss, "loss")):
        ax.plot(rows["step"], rows[f"train_{col}"], color=c_train, lw=1)
        ax.plot(evals["step"], evals[f"test_{col}"], color=c_test, lw=1)
        mark_phases(ax, job, at_least=1)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if rows.empty:
            ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    acc.set_ylim(-0.03, 1.03)
    acc.set_ylabel("accuracy", fontsize=8)
    loss.set_ylabel("loss", fontsize=8)
    log_scale(loss, rows["train_loss"], evals["test_loss"])
    label = job["phase"] if job["status"] in TRAINED else job["status"]
    title = ", ".join(f"{k.split('.')[-1]}={fmt(job[k])}" for k in keys)
    title = title or ("" if job["job"] == "." else str(job["job"]))  # "." is a single run's own folder
    acc.set_title(f"{title}\n{label}" if title else label, fontsize=8)
