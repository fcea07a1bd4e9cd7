"""The phase diagram: one grid per panel, each cell coloured by its jobs' majority phase."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from grok_sweep.detect import PHASES, Rule
from grok_sweep.plot.style import COLORS, DARK, fmt, save


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
                if cell["label"] in DARK else "black")  # fmt: skip
    ax.set_xlim(-0.5, len(col_vals) - 0.5)
    ax.set_ylim(-0.5, len(row_vals) - 0.5)
    ax.set_xticks(range(len(col_vals)), [fmt(v) for v in col_vals] if cols else [""])
    ax.set_yticks(range(len(row_vals)), [fmt(v) for v in row_vals] if rows else [""])
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
    save(fig, path, dpi=110)
    return path
