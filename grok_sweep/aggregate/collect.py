"""Aggregate a sweep folder (or a run folder): summary.parquet, metrics.parquet, figures, and the phase table.

Works on a finished, running or interrupted sweep: it aggregates what is there and says what is missing.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Optional

import pandas as pd

from grok_sweep import plot, report
from grok_sweep.aggregate.about import about
from grok_sweep.aggregate.refined import COARSE, Refined, refined
from grok_sweep.aggregate.summary import combine_metrics, missing_jobs, summarize, swept_keys
from grok_sweep.aggregate.table import cell_labels, default_axes, phase_panels, phase_table, with_text
from grok_sweep.detect import DEFAULT_RULE, Rule
from grok_sweep.store.damage import Damaged
from grok_sweep.store.jobs import Job
from grok_sweep.store.layout import (
    CURVES_FILE,
    MEASURES_FIGURE,
    METRICS_FILE,
    PHASE_DIAGRAM_FILE,
    REFINE_FILE,
    REPORT_FILE,
    STOPPED_EARLY,
    SUMMARY_FILE,
    TRAINED,
    UNREADABLE,
)
from grok_sweep.store.plan import planned_jobs
from grok_sweep.store.refine_record import Record, read_record
from grok_sweep.store.scan import find_jobs, folder_problem
from grok_sweep.util.errors import first_line
from grok_sweep.util.files import atomic_write


class AggregateError(ValueError):
    """A user error in what to aggregate; the message is one line."""


def unreadable_line(summary: pd.DataFrame) -> Optional[str]:
    """One line if some jobs have a file that cannot be read (each was named in the report), else None."""
    n = int((summary["status"] == UNREADABLE).sum())
    if not n:
        return None
    return (f"{n} job(s) unreadable (a damaged file, named above): run the sweep's command again to repair them; "
            f"the damaged files are kept beside, renamed *.damaged")  # fmt: skip


def _choose_axes(jobs: list[Job], keys: list[str], rows: Optional[str], cols: Optional[str]) -> tuple:
    known = sorted({k for j in jobs for k in j.config})
    for name, key in (("--rows", rows), ("--cols", cols)):
        if key is not None and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; swept keys: {', '.join(keys) or 'none'}"
            raise AggregateError(f"{name} {key}: no such config key{hint}")
    auto_rows, auto_cols = default_axes(keys)
    rows = rows or auto_rows
    cols = cols or next((k for k in (auto_cols, *keys) if k and k not in (rows, "seed")), None)
    return rows, cols, [*keys, *(k for k in (rows, cols) if k and k not in keys)]


def _refine_axes(ranges: list[str], rows: Optional[str], cols: Optional[str], echo) -> tuple[str, str]:
    """A refine sweep's rows and columns: its two ranges, oriented as --rows/--cols ask; a key that is not one of
    them is said and left out."""
    for name, key in (("--rows", rows), ("--cols", cols)):
        if key is not None and key not in ranges:
            echo(f"warning: {name} {key} left out: a refine sweep's table and diagram are on its two ranges, "
                 f"{' and '.join(ranges)}")  # fmt: skip
    rows, cols = (k if k in ranges else None for k in (rows, cols))
    cols = None if cols == rows else cols
    if rows is None and cols is None:
        return default_axes(ranges)
    return (rows or next(k for k in ranges if k != cols)), (cols or next(k for k in ranges if k != rows))


def aggregate(root: str | Path, rows: Optional[str] = None, cols: Optional[str] = None, rule: Rule = DEFAULT_RULE,
              echo=print, figures: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:  # fmt: skip
    """Write the sweep's metrics.parquet, summary.parquet and (if `figures`) figures into `root`; print the
    phase table."""
    root = Path(root)
    if problem := folder_problem(root):
        raise AggregateError(problem)
    jobs = find_jobs(root)
    planned, planned_keys = planned_jobs(root)
    if not jobs:
        raise AggregateError(f"{root}: no job folders (folders with a .hydra folder) in it")
    keys = swept_keys(jobs, planned_keys)
    record = _record(root, echo)
    if record is not None:  # a refine sweep: its table and diagram are on its two ranges
        rows, cols = _refine_axes([a["key"] for a in record.axes], rows, cols, echo)
    rows, cols, keys = _choose_axes(jobs, keys, rows, cols)
    order = [k for k in (rows, cols) if k] + [k for k in keys if k not in (rows, cols)]
    summary = summarize(jobs, keys, rule).sort_values([*order, "job"], kind="stable", ignore_index=True)
    ref = None
    if record is not None:
        try:
            summary, ref = refined(record, jobs, summary)
        except (ValueError, KeyError, IndexError, StopIteration) as err:  # a record at odds with its own lattice
            echo(f"warning: {root / REFINE_FILE} does not fit its own lattice ({type(err).__name__}: "
                 f"{first_line(err)}); aggregated as a plain sweep")  # fmt: skip
    metrics = combine_metrics(jobs, keys)
    single = jobs[0].name == "."  # a run folder: its own metrics.parquet is already the table
    written = {"summary": root / SUMMARY_FILE}
    atomic_write(written["summary"], lambda p: summary.to_parquet(p, index=False))
    if not single:
        written["metrics"] = root / METRICS_FILE
        atomic_write(written["metrics"], lambda p: metrics.to_parquet(p, index=False))
    if ref is None:
        split = phase_panels(summary, keys, rows, cols)
    else:
        split = [(COARSE, ref.points[ref.points["round"] == 0])]
    measured = []
    if figures:
        drawn, pages = _figures(root, summary, metrics, split, order, rows, cols, rule, ref)
        written.update(drawn)
        measured = measure_figures(summary, metrics, root)
        shown = {"phase_diagram": [drawn["phase_diagram"]] if "phase_diagram" in drawn else [], "curves": pages,
                 "measures": measured}  # fmt: skip
        written["report"] = _report_html(root, jobs, summary, keys, split, rows, cols, shown, rule, ref)
    if single and measured:
        written["measures"] = measured[0]
    if single:
        echo(run_line(summary.iloc[0], rule.threshold))
    else:
        _report(echo, split, rows, cols, summary, missing_jobs(jobs, planned), ref)
    for name, path in written.items():
        echo(f"wrote {name}: {path}")
    if measured and not single:
        echo(f"wrote {MEASURES_FIGURE} in the folders of the {len(measured)} jobs with measures, e.g. {measured[0]}")
    return summary, written


def _record(root: Path, echo) -> Optional[Record]:
    """The refine sweep's record, if the folder is one's; a damaged one is said, and the sweep aggregated as a grid."""
    try:
        return read_record(root)
    except Damaged as err:
        echo(f"warning: {err}; aggregated as a plain sweep (running the sweep's command again rewrites it)")
        return None


def _figures(root: Path, summary: pd.DataFrame, metrics: pd.DataFrame, split: list, order: list[str],
             rows: Optional[str], cols: Optional[str], rule: Rule,
             ref: Optional[Refined]) -> tuple[dict[str, Path], list[Path]]:  # fmt: skip
    """The phase diagram (a sweep's, or a refine sweep's refined one) and the curves, one pair of panels per cell of
    the keys other than the seed; and every page of the curves."""
    written = {}
    path = root / PHASE_DIAGRAM_FILE
    if ref is not None:
        log = {a.key: a.log for a in ref.axes}
        written["phase_diagram"] = plot.refined_diagram(ref.frames(cols), (cols, log[cols]), (rows, log[rows]), rule,
                                                        path)  # fmt: skip
    elif summary["job"].iloc[0] != ".":
        written["phase_diagram"] = plot.phase_diagram(split, rows, cols, rule, path)
    by = [k for k in order if k != "seed"]  # a cell of the curves: every seed of one point of the sweep
    per_row = summary[cols].nunique() if cols else None
    pages = plot.curves(metrics, summary, cell_labels(summary, by), by, root / CURVES_FILE,
                        per_row if per_row and per_row <= 4 else None)  # fmt: skip
    written["curves"] = pages[0]
    if len(pages) > 1:
        written[f"curves (+{len(pages) - 1} pages)"] = pages[-1]
    return written, pages


def _report_html(root: Path, jobs: list[Job], summary: pd.DataFrame, keys: list[str], split: list,
                 rows: Optional[str], cols: Optional[str], shown: dict[str, list[Path]], rule: Rule,
                 ref: Optional[Refined]) -> Path:  # fmt: skip
    """report.html: what ran, the phase table, the figures, every job (report/pages.py)."""
    items, config = about(root, jobs, summary, keys)
    if summary["job"].iloc[0] == ".":
        return report.run_report(root / REPORT_FILE, items, config, run_line(summary.iloc[0], rule.threshold),
                                 jobs[0].result or {}, shown)  # fmt: skip
    panels = [(title, with_text(cells)) for title, cells in split]
    notes = "" if ref is None else "<pre>boundary segments:\n" + "\n".join(ref.boundary()) + "</pre>"
    return report.sweep_report(root / REPORT_FILE, items, config, summary, keys, panels, rows, cols, shown,
                               notes)  # fmt: skip


def measure_figures(summary: pd.DataFrame, metrics: pd.DataFrame, root: Path) -> list[Path]:
    """measures.png in the folder of every job that measured its progress (measures=true)."""
    if "restricted_loss" not in metrics or metrics["restricted_loss"].isna().all():
        return []
    per_job = metrics.groupby("job", sort=False)
    measured = {name: rows for name, rows in per_job if rows["restricted_loss"].notna().any()}
    return [plot.measures(measured[job["job"]], job, root / job["job"] / MEASURES_FIGURE)
            for _, job in summary.iterrows() if job["job"] in measured]  # fmt: skip


def run_line(job: pd.Series, threshold: float) -> str:
    """One run's detection in words."""
    at = f">= {threshold:g}"
    mem, first, sus = (job[c] for c in ("memorization_step", "grokking_step", "sustained_grokking_step"))
    train = f"train acc {at} at step {mem}" if not pd.isna(mem) else f"train acc never {at}"
    test = (
        f"test acc never {at}"
        if pd.isna(first)
        else f"test acc {at} first at step {first}, "
        + (f"for good from step {sus}" if not pd.isna(sus) else "not at the end")
    )
    if job["status"] == UNREADABLE:
        return f"{UNREADABLE}: {job['error']}"
    phase = job["phase"] if job["status"] in TRAINED else job["status"]
    stopped = f" (stopped early: {job['steps_run']} steps)" if job["status"] == STOPPED_EARLY else ""
    return f"{train}; {test}; phase: {phase}{stopped}"


def _report(echo, split, rows, cols, summary, missing, ref: Optional[Refined] = None) -> None:
    for title, cells in split:
        axes = ", ".join(f"{w} {k}" for w, k in (("rows", rows), ("columns", cols)) if k) or "one cell, every job"
        echo(f"\nphase table{': ' + title if title else ''} ({axes}; phase @median sustained grokking step)")
        echo(phase_table(cells, rows, cols).to_string())
    if ref is not None:
        segments = ref.boundary()
        echo(f"\nboundary: {len(segments)} refined cell(s) whose points disagree, of {len(ref.points)} points in "
             f"{ref.points['round'].nunique()} rounds" + (":" if segments else ""))  # fmt: skip
        for line in segments:
            echo(f"  {line}")
    bad = summary[~summary["status"].isin(TRAINED)]
    for _, job in bad.iterrows():
        echo(f"{job['status']}: {job['job']}" + (f": {job['error']}" if job["status"] == UNREADABLE else ""))
    if missing:
        echo(f"missing ({len(missing)} planned jobs not started): " + "; ".join(missing))
