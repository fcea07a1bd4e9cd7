"""Collect a sweep's jobs into one metrics table and one summary row per job.

Works on a finished, running or interrupted sweep (it aggregates what is there and says what is
missing) and on a single run folder. `python -m grok_sweep.aggregate SWEEP_DIR --help`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from grok_sweep import plot
from grok_sweep.detect import DEFAULT_RULE, PHASES, Rule, detect
from grok_sweep.files import atomic_write
from grok_sweep.store import COMPLETED, METRICS_FILE, Job, find_jobs, planned_jobs
from grok_sweep.table import default_axes, panel_keys, panels, phase_cells, phase_table

STEP_COLS = ("memorization_step", "grokking_step", "sustained_grokking_step", "grokking_delay")
SUMMARY_TAIL = ("status", "steps_run", *STEP_COLS, "phase", "final_test_acc", "best_test_acc",
                "wall_time_s", "steps_per_s")  # fmt: skip


def swept_keys(jobs: list[Job], planned: list[str]) -> list[str]:
    """Keys the sweep varies: those it was asked to sweep, else those that differ between jobs."""
    if planned:
        return [k for k in planned if any(k in j.config for j in jobs)]
    keys = sorted({k for j in jobs for k in j.config})
    return [k for k in keys if len({repr(j.config.get(k)) for j in jobs}) > 1]


def summarize(jobs: list[Job], keys: list[str], rule: Rule = DEFAULT_RULE) -> pd.DataFrame:
    """One row per job: swept keys, seed, status, detected steps, phase, accuracies, timings."""
    rows = []
    for job in jobs:
        found = detect(job.metrics, rule) if job.metrics is not None and len(job.metrics) else {}
        if job.status not in COMPLETED:
            found["phase"] = None  # failed or diverged runs keep their status instead of a phase
        res = job.result or {}
        row = {"job": job.name, **{k: job.config.get(k) for k in keys}, "seed": job.config.get("seed")}
        row.update(status=job.status, steps_run=res.get("steps_run", _rows(job)), **found)
        row.update(wall_time_s=res.get("wall_time_s"), steps_per_s=res.get("steps_per_s"))
        rows.append(row)
    columns = ["job", *keys, *(["seed"] if "seed" not in keys else []), *SUMMARY_TAIL]
    df = pd.DataFrame(rows).reindex(columns=columns)
    for col in (*STEP_COLS, "steps_run"):
        df[col] = df[col].astype("Int64")
    for col in ("final_test_acc", "best_test_acc", "wall_time_s", "steps_per_s"):
        df[col] = df[col].astype("float64")
    df["phase"] = pd.Categorical(df["phase"], categories=list(PHASES), ordered=True)
    return df


def _rows(job: Job) -> Optional[int]:
    return None if job.metrics is None else len(job.metrics)


def combine_metrics(jobs: list[Job], keys: list[str]) -> pd.DataFrame:
    """Every job's per-step rows, with a `job` column and one column per swept key."""
    frames = [
        job.metrics.assign(job=job.name, **{k: job.config.get(k) for k in keys})
        for job in jobs
        if job.metrics is not None
    ]
    if not frames:
        return pd.DataFrame(columns=["job", *keys, "step"])
    df = pd.concat(frames, ignore_index=True)
    return df[["job", *keys, *(c for c in df.columns if c not in ("job", *keys))]]


def missing_jobs(jobs: list[Job], planned: list[frozenset[str]]) -> list[str]:
    """Planned jobs with no folder yet, as their override strings."""
    have = {j.overrides for j in jobs}
    return [",".join(sorted(p)) for p in planned if p not in have]


class AggregateError(ValueError):
    """A user error in what to aggregate; the message is one line."""


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


def aggregate(root: Path, rows: Optional[str] = None, cols: Optional[str] = None, rule: Rule = DEFAULT_RULE,
              echo=print) -> tuple[pd.DataFrame, dict[str, Path]]:  # fmt: skip
    """Write the sweep's metrics.parquet, summary.parquet and figures into `root`; print the phase table."""
    if not root.is_dir():
        raise AggregateError(f"{root}: no such folder")
    jobs = find_jobs(root)
    planned, planned_keys = planned_jobs(root)
    if not jobs:
        raise AggregateError(f"{root}: no job folders (folders with .hydra/config.yaml) in it")
    keys = swept_keys(jobs, planned_keys)
    rows, cols, keys = _choose_axes(jobs, keys, rows, cols)
    order = [k for k in (rows, cols) if k] + [k for k in keys if k not in (rows, cols)]
    summary = summarize(jobs, keys, rule).sort_values([*order, "job"], kind="stable", ignore_index=True)
    metrics = combine_metrics(jobs, keys)
    single = jobs[0].name == "."  # a run folder: its own metrics.parquet is already the table
    written = {"summary": root / "summary.parquet"}
    atomic_write(written["summary"], lambda p: summary.to_parquet(p, index=False))
    if not single:
        written["metrics"] = root / METRICS_FILE
        atomic_write(written["metrics"], lambda p: metrics.to_parquet(p, index=False))
    split = [(title, phase_cells(part, rows, cols)) for title, part in panels(summary, panel_keys(keys, rows, cols))]
    if not single:
        written["phase_diagram"] = plot.phase_diagram(split, rows, cols, rule, root / "phase_diagram.png")
    per_row = summary[cols].nunique() * summary["seed"].nunique() if cols else None
    written["curves"] = plot.curves(
        metrics, summary, keys, root / "curves.png", per_row if per_row and per_row <= 6 else None
    )
    figures = measure_figures(summary, metrics, root)
    if single and figures:
        written["measures"] = figures[0]
    if single:
        echo(run_line(summary.iloc[0], rule.threshold))
    else:
        _report(echo, split, rows, cols, summary, missing_jobs(jobs, planned))
    for name, path in written.items():
        echo(f"wrote {name}: {path}")
    if figures and not single:
        echo(f"wrote measures.png in the folders of the {len(figures)} jobs with measures, e.g. {figures[0]}")
    return summary, written


def measure_figures(summary: pd.DataFrame, metrics: pd.DataFrame, root: Path) -> list[Path]:
    """measures.png in the folder of every job that measured its progress (measures=true)."""
    if "restricted_loss" not in metrics or metrics["restricted_loss"].isna().all():
        return []
    per_job = metrics.groupby("job", sort=False)
    measured = {name: rows for name, rows in per_job if rows["restricted_loss"].notna().any()}
    return [plot.measures(measured[job["job"]], job, root / job["job"] / "measures.png")
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
    phase = job["phase"] if job["status"] in COMPLETED else job["status"]
    stopped = f" (stopped early: {job['steps_run']} steps)" if job["status"] == "stopped_early" else ""
    return f"{train}; {test}; phase: {phase}{stopped}"


def _report(echo, split, rows, cols, summary, missing) -> None:
    for title, cells in split:
        echo(f"\nphase table{': ' + title if title else ''} (rows {rows or '-'}, columns {cols or '-'}; "
             f"phase @median sustained grokking step)")  # fmt: skip
        echo(phase_table(cells, rows, cols).to_string())
    bad = summary[~summary["status"].isin(COMPLETED)]
    for _, job in bad.iterrows():
        echo(f"{job['status']}: {job['job']}")
    if missing:
        echo(f"missing ({len(missing)} planned jobs not started): " + "; ".join(missing))


class AggregateCallback(Callback):
    """Aggregates a multirun when its last job is done (registered in conf/config.yaml)."""

    def __init__(self, rows: Optional[str] = None, cols: Optional[str] = None, threshold: float = 0.99,
                 delay_ratio: float = 5.0, min_delay: int = 100):  # fmt: skip
        self.rows, self.cols = rows, cols
        self.rule = Rule(threshold, delay_ratio, min_delay)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        summary, _ = aggregate(sweep, self.rows, self.cols, self.rule)
        running = summary.loc[summary["status"] == "running", "job"].tolist()
        if running:  # another command on this sweep trains them (lock.py)
            print(f"{len(running)} job(s) still being trained by another process: {'; '.join(running)}; "
                  f"once they have ended, aggregate again: python -m grok_sweep.aggregate {sweep}")  # fmt: skip
        bad = summary.loc[summary["status"].isin(["failed", "diverged"]), "job"].tolist()
        if bad:
            sys.exit(f"grok_sweep: {len(bad)} job(s) failed or diverged: {'; '.join(bad)}")


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m grok_sweep.aggregate", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder (outputs/sweeps/<date>/<time>) or a run folder")
    ap.add_argument("--rows", help="config key for the table's rows (default: train_ratio if swept)")
    ap.add_argument("--cols", help="config key for its columns (default: weight_decay if swept)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_RULE.threshold, help="accuracy that counts as fit")
    ap.add_argument("--delay-ratio", type=float, default=DEFAULT_RULE.delay_ratio,
                    help="grokking: sustained grokking step >= this x memorization step ...")  # fmt: skip
    ap.add_argument("--min-delay", type=int, default=DEFAULT_RULE.min_delay, help="... and >= this many steps after")
    ap.add_argument("--watch", action="store_true",
                    help="show the sweep's jobs live until every planned job has ended, then aggregate")  # fmt: skip
    args = ap.parse_args(argv)
    if not 0 < args.threshold <= 1:
        ap.error(f"--threshold {args.threshold}: must be in (0, 1]")
    try:
        if args.watch:
            _watch(args.sweep_dir)
        aggregate(args.sweep_dir, args.rows, args.cols, Rule(args.threshold, args.delay_ratio, args.min_delay))
    except AggregateError as err:
        sys.exit(f"grok_sweep.aggregate: error: {err}")


def _watch(root: Path) -> None:
    from grok_sweep.live import watch

    if not root.is_dir():
        raise AggregateError(f"{root}: no such folder")
    if not (root / "multirun.yaml").exists() and not find_jobs(root):
        raise AggregateError(f"{root}: not a sweep (no multirun.yaml and no job folders); nothing to watch")
    try:
        watch(root)
    except KeyboardInterrupt:
        sys.exit("grok_sweep.aggregate: stopped watching; the jobs go on (watch again, or aggregate later)")


if __name__ == "__main__":
    main()
