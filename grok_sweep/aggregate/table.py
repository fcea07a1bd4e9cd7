"""The phase table: one cell per (rows, cols) value pair of a sweep, labelled by its jobs' majority.

Pure functions on the summary DataFrame (one row per job, see summary.summarize).
"""

from __future__ import annotations

import itertools
from typing import Optional

import pandas as pd

from grok_sweep.detect import PHASES
from grok_sweep.store.layout import DIVERGED, FAILED, INCOMPLETE, INTERRUPTED, RUNNING, TRAINED, UNREADABLE


def default_axes(keys: list[str]) -> tuple[Optional[str], Optional[str]]:
    """Rows and columns of the phase table: train_ratio x weight_decay when swept, else the first two keys."""
    free = [k for k in keys if k != "seed"]
    rows = "train_ratio" if "train_ratio" in free else next(iter(free), None)
    rest = [k for k in free if k != rows]
    cols = "weight_decay" if "weight_decay" in rest else next(iter(rest), None)
    return rows, cols


def panel_keys(keys: list[str], rows: Optional[str], cols: Optional[str]) -> list[str]:
    return [k for k in keys if k not in (rows, cols, "seed")]


def panels(summary: pd.DataFrame, keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Split by the swept keys beyond rows and columns: one (title, rows) per combination."""
    if not keys:
        return [("", summary)]
    values = [sorted(summary[k].dropna().unique()) for k in keys]
    out = []
    for combo in itertools.product(*values):
        mask = pd.Series(True, index=summary.index)
        for k, v in zip(keys, combo, strict=True):
            mask &= summary[k] == v
        out.append((", ".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True)), summary[mask]))
    return out


LABEL_ORDER = (*PHASES, DIVERGED, FAILED, UNREADABLE, RUNNING, INTERRUPTED, INCOMPLETE)


def phase_panels(summary: pd.DataFrame, keys: list[str], rows: Optional[str],
                 cols: Optional[str]) -> list[tuple[str, pd.DataFrame]]:  # fmt: skip
    """The phase table's cells (phase_cells), one frame per panel (panels) of the keys beyond rows, cols and seed."""
    return [(title, phase_cells(part, rows, cols)) for title, part in panels(summary, panel_keys(keys, rows, cols))]


def with_text(cells: pd.DataFrame) -> pd.DataFrame:
    """The cells with their `text` column (cell_text): what the table, the report and the notebook show."""
    return cells.assign(text=cells.apply(cell_text, axis=1))


def phase_cells(summary: pd.DataFrame, rows: Optional[str], cols: Optional[str]) -> pd.DataFrame:
    """One row per (rows, cols) cell: majority label, how many jobs agree, median grokking step (cell_labels)."""
    return cell_labels(summary, [k for k in (rows, cols) if k])


def job_labels(summary: pd.DataFrame) -> list[str]:
    """Each job's label: its phase, or its status where it was not trained as configured (failed, diverged, ...)."""
    return [p if s in TRAINED else s for p, s in zip(summary["phase"].astype(object), summary["status"], strict=True)]


def cell_labels(summary: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per combination of the keys `by` (sorted): majority label, how many jobs agree, their number,
    the median grokking step and the cell's jobs.

    A job's label is its phase, or its status if it did not complete; the median is over the
    sustained grokking steps of the jobs that carry the majority label (seeds, usually).
    """
    df = summary.assign(label=job_labels(summary))
    groups = df.groupby(by, sort=True) if by else [((), df)]
    out = []
    for key, group in groups:
        counts = group["label"].value_counts()
        label = min(counts.index, key=lambda lab: (-counts[lab], LABEL_ORDER.index(lab)))
        steps = group.loc[group["label"] == label, "sustained_grokking_step"].dropna()
        values = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, values, strict=True)), "label": label, "agree": int(counts[label]),
                    "n": len(group), "median_grok": float(steps.median()) if len(steps) else None,
                    "jobs": group["job"].tolist() if "job" in group else []})  # fmt: skip
    return pd.DataFrame(out)


def cell_text(cell: pd.Series) -> str:
    text = cell["label"] if pd.isna(cell["median_grok"]) else f"{cell['label']} @{int(cell['median_grok'])}"
    return text if cell["n"] == 1 else f"{text} ({cell['agree']}/{cell['n']})"


def phase_table(cells: pd.DataFrame, rows: Optional[str], cols: Optional[str]) -> pd.DataFrame:
    """The cells as a text table: rows x cols, each 'phase @median_grokking_step (agree/n)'."""
    text = with_text(cells)
    if rows and cols:
        return text.pivot(index=rows, columns=cols, values="text")
    if rows:
        return text.set_index(rows)[["text"]].rename(columns={"text": "phase"})
    return text[["text"]].rename(columns={"text": "phase"})
