"""One job's progress measures (Nanda et al. 2023, figure 7) against step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from grok_sweep.plot.style import LINES, MEASURE_LINES, log_scale, mark_phases, save


def measures(rows: pd.DataFrame, job: pd.Series, path: Path) -> Path:
    """One job's progress measures against step, as in Nanda et al.'s figure 7: train, test, restricted
    and excluded loss (log) with the weight norm, and the Fourier Gini with the number of key frequencies."""
    evals = rows.dropna(subset=["restricted_loss"])
    fig = Figure(figsize=(9.0, 6.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for col, name, color in MEASURE_LINES:
        data = rows if col == "train_loss" else evals
        top.plot(data["step"], data[col], color=color, lw=1, label=name)
    log_scale(top, rows["train_loss"], *(evals[c] for c, _, _ in MEASURE_LINES[1:]))
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
        mark_phases(ax, job)
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
    save(fig, path, dpi=100)
    return path
