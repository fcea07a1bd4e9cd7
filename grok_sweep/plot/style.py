"""What every figure shares: the colours of phases and statuses, the lines' styles, and how a figure is saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from grok_sweep.detect.refine import TIE
from grok_sweep.store.layout import DIVERGED, FAILED, INCOMPLETE, INTERRUPTED, RUNNING, UNREADABLE
from grok_sweep.util.files import atomic_write

COLORS = {
    "comprehension": "#4daf4a",
    "grokking": "#984ea3",
    "memorization": "#377eb8",
    "confusion": "#e6ab02",
    DIVERGED: "#e41a1c",
    FAILED: "#999999",
    UNREADABLE: "#a65628",
    RUNNING: "#f0f0f0",
    INTERRUPTED: "#fee391",
    INCOMPLETE: "#dddddd",
    TIE: "#fbb4ae",  # a refine sweep's point whose replicates split evenly
}
DARK = ("grokking", "memorization", DIVERGED)  # labels whose colour takes white text

LINES = (  # name, colour, line style of what the curves show (accuracy left, loss right)
    ("train", "#377eb8", "-"),
    ("test", "#e41a1c", "-"),
    ("memorization step", "#377eb8", "--"),
    ("grokking step (sustained)", "#984ea3", "--"),
)
COLLAPSE_LINE = ("train softmax collapse", "#ff7f00", ":")  # on the accuracy panel, where a run has any
MEASURE_LINES = (  # column, label, colour of measures.png's losses
    ("train_loss", "train loss", "#377eb8"),
    ("test_loss", "test loss", "#e41a1c"),
    ("restricted_loss", "restricted loss", "#4daf4a"),
    ("excluded_loss", "excluded loss", "#ff7f00"),
)


def fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def mark_phases(ax, job: pd.Series, at_least: int = 0) -> None:
    for col, (_, color, ls) in zip(("memorization_step", "sustained_grokking_step"), LINES[2:], strict=True):
        if not pd.isna(job[col]):
            ax.axvline(max(int(job[col]), at_least), color=color, ls=ls, lw=1)


def log_scale(ax, *values: pd.Series) -> None:
    # matplotlib refuses a log axis with no positive finite value (a run that diverged at once)
    v = np.concatenate([s.to_numpy(dtype=float) for s in values])
    if np.any(np.isfinite(v) & (v > 0)):
        ax.set_yscale("log")


def save(fig: Figure, path: Path, dpi: int) -> None:
    # atomic, like every artifact: a reader (or a full disk) never leaves half a PNG
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
