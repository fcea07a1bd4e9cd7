"""How a Run and a Sweep (grok_sweep.api) show themselves in Jupyter: a few lines and a figure, with the way to
report.html for the rest. Plain repr stays one line (api.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from grok_sweep.report.html import esc, image, pairs
from grok_sweep.report.pages import phase_tables
from grok_sweep.store.layout import CURVES_FILE, PHASE_DIAGRAM_FILE, REPORT_FILE

STEPS = ("memorization_step", "grokking_step", "sustained_grokking_step")
# scoped to the view's own block: a notebook's page keeps its own style
STYLE = (".grok-sweep table { border-collapse: collapse; font-size: 12px; } .grok-sweep th, .grok-sweep td { border: "
         "1px solid #ddd; padding: 2px 6px; text-align: right; } .grok-sweep .l { text-align: left; } "
         ".grok-sweep img { max-width: 100%; } .grok-sweep .dim { color: #777; }")  # fmt: skip


def _frame(title: str, body: str, folder: Path) -> str:
    report = folder / REPORT_FILE
    more = f'<p class="dim">everything: <a href="{esc(report)}">{esc(report)}</a></p>' if report.exists() else ""
    return f'<div class="grok-sweep"><style>{STYLE}</style><b>{esc(title)}</b>{body}{more}</div>'


def run_view(folder: Path, result: dict[str, Any], found: dict[str, Any]) -> str:
    """A run: its status, phase and key steps (detect's `found`), speed, and its curves."""
    items = [("status", result.get("status")), ("phase", found.get("phase")), ("steps run", result.get("steps_run"))]
    items += [(k.replace("_", " "), found.get(k)) for k in STEPS]
    items.append(("steps/s", result.get("steps_per_s")))
    return _frame(f"Run {folder}", pairs(items) + image(folder / CURVES_FILE, "curves"), folder)


def sweep_view(folder: Path, summary: pd.DataFrame, panels: list[tuple[str, pd.DataFrame]], rows: Optional[str],
               cols: Optional[str]) -> str:  # fmt: skip
    """A sweep: how many jobs ended how, its phase table (panels' cells with `label` and `text`) and its diagram."""
    counts = ", ".join(f"{n} {s}" for s, n in summary["status"].value_counts().items())
    body = f"<p>{len(summary)} jobs: {esc(counts)}</p>" + phase_tables(panels, rows, cols)
    return _frame(f"Sweep {folder}", body + image(folder / PHASE_DIAGRAM_FILE, "phase diagram"), folder)
