"""A refine sweep's phase diagram: the plane of its two ranges on their real (linear or log) scales, every lattice
point's area coloured by the phase the refined cells give it, the cells' edges, and the points run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from grok_sweep.detect import PHASES, Rule
from grok_sweep.plot.style import COLORS, save


def _rects(df: pd.DataFrame) -> list[Rectangle]:
    return [Rectangle((r.x0, r.y0), r.x1 - r.x0, r.y1 - r.y0) for r in df.itertuples()]


def refined_diagram(frames: dict[str, pd.DataFrame], x: tuple[str, bool], y: tuple[str, bool], rule: Rule,
                    path: Path, title: Optional[str] = None) -> Path:  # fmt: skip
    """`frames` as aggregate/refined.Refined.frames gives them (lattice, leaves, points); `x` and `y` the keys
    across and up, each with whether its axis is logarithmic; `title` the first line of the title."""
    lattice, leaves, points = frames["lattice"], frames["leaves"], frames["points"]
    fig = Figure(figsize=(9.0, 6.4), layout="constrained")
    ax = fig.subplots()
    ax.add_collection(PatchCollection(_rects(lattice), facecolors=[COLORS[lab] for lab in lattice["label"]],
                                      edgecolors="none", alpha=0.85))  # fmt: skip
    ax.add_collection(PatchCollection(_rects(leaves), facecolors="none", edgecolors="white", linewidths=0.8))
    for r, group in points.groupby("round"):
        ax.scatter(group["x"], group["y"], s=26 if r == 0 else 12, c="black", marker="o" if r == 0 else ".",
                   zorder=3, linewidths=0, clip_on=False)  # fmt: skip
    for (key, log), set_scale, set_lim, set_label, edges in (
        (x, ax.set_xscale, ax.set_xlim, ax.set_xlabel, (lattice["x0"].min(), lattice["x1"].max())),
        (y, ax.set_yscale, ax.set_ylim, ax.set_ylabel, (lattice["y0"].min(), lattice["y1"].max())),
    ):
        set_scale("log" if log else "linear")
        set_lim(*edges)
        set_label(key + (" (log scale)" if log else ""))
    title = title or f"Refined phase diagram: {len(points)} points in {points['round'].nunique()} rounds"
    fig.suptitle(f"{title}\neach area: the "
                 f"phase of the nearest point run in its cell (majority over the point's jobs)\ngrokking: test acc >= "
                 f"{rule.threshold:g} for good from >= {rule.delay_ratio:g}x the memorization step, "
                 f">= {rule.min_delay} steps after it", fontsize=10)  # fmt: skip
    used = [lab for lab in COLORS if lab in set(lattice["label"]) or lab in PHASES]
    handles = [Patch(color=COLORS[lab], label=lab) for lab in used]
    handles += [Line2D([], [], color="black", marker="o", ls="", label="coarse grid"),
                Line2D([], [], color="black", marker=".", ls="", label="refined points")]  # fmt: skip
    fig.legend(handles=handles, loc="outside right center")
    save(fig, path, dpi=110)
    return path
