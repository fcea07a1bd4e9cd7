"""A sweep's jobs as tables: one summary row per job, every job's metrics rows in one table.

Pure functions of the jobs read back (store.jobs.Job) and the swept keys.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

from grok_sweep.detect import DEFAULT_RULE, PHASES, Rule, detect
from grok_sweep.store.jobs import Job
from grok_sweep.store.layout import FAILED, TRAINED

STEP_COLS = ("memorization_step", "grokking_step", "sustained_grokking_step", "grokking_delay")
COLLAPSE_COLS = ("softmax_collapse", "zero_loss")  # their last values: final_softmax_collapse, final_zero_loss
SUMMARY_TAIL = ("status", "steps_run", *STEP_COLS, "phase", "final_test_acc", "best_test_acc",
                *(f"final_{c}" for c in COLLAPSE_COLS), "wall_time_s", "steps_per_s", "error")  # fmt: skip
INIT_COLS = ("init_from", "init_step", "init_subset")  # a sweep of continued runs (init.from): result.json's "init"


def summary_keys(summary: pd.DataFrame) -> list[str]:
    """The swept keys of a summary table as summarize wrote it (the seed among them), without the round and cell a
    refine sweep adds after them (aggregate/refined.py)."""
    cols = list(summary.columns)
    return [c for c in cols[1 : cols.index("status")] if c not in ("round", "cell")]


def swept_keys(jobs: list[Job], planned: list[str]) -> list[str]:
    """Keys the sweep varies: those it was asked to sweep, else those that differ between jobs."""
    if planned:
        return [k for k in planned if any(k in j.config for j in jobs)]
    keys = sorted({k for j in jobs for k in j.config})
    return [k for k in keys if len({repr(j.config.get(k)) for j in jobs}) > 1]


def summarize(jobs: list[Job], keys: list[str], rule: Rule = DEFAULT_RULE) -> pd.DataFrame:
    """One row per job: swept keys, seed, status, detected steps, phase, accuracies, timings, and the error of a
    failed job or the unreadable file of a damaged one (one line)."""
    rows = []
    for job in jobs:
        found = detect(job.metrics, rule) if job.metrics is not None and len(job.metrics) else {}
        if job.status not in TRAINED:
            found["phase"] = None  # failed or diverged runs keep their status instead of a phase
        res = job.result or {}
        row = {"job": job.name, **{k: job.config.get(k) for k in keys}, "seed": job.config.get("seed")}
        row.update(status=job.status, steps_run=res.get("steps_run", _rows(job)), **found)
        row.update(_final_collapse(job.metrics), wall_time_s=res.get("wall_time_s"), steps_per_s=res.get("steps_per_s"))
        row["error"] = job.damage or (res.get("error") if job.status == FAILED else None)
        row.update({f"init_{k}": (res.get("init") or {}).get(k) for k in ("from", "step", "subset")})
        rows.append(row)
    continued = any(row["init_from"] is not None for row in rows)  # the parent, its step, the pairs trained on
    columns = ["job", *keys, *(["seed"] if "seed" not in keys else []), *SUMMARY_TAIL]
    columns += list(INIT_COLS) if continued else []
    df = pd.DataFrame(rows).reindex(columns=columns)
    for col in (*STEP_COLS, "steps_run", *(INIT_COLS[1:] if continued else ())):
        df[col] = df[col].astype("Int64")
    for col in ("final_test_acc", "best_test_acc", *(f"final_{c}" for c in COLLAPSE_COLS), "wall_time_s",
                "steps_per_s"):  # fmt: skip
        df[col] = df[col].astype("float64")
    df["error"] = df["error"].astype("string")
    df["phase"] = pd.Categorical(df["phase"], categories=list(PHASES), ordered=True)
    return df


def _final_collapse(metrics: Optional[pd.DataFrame]) -> dict[str, float]:
    """The softmax-collapse measures of the last step (absent from a job of an earlier version: NaN)."""
    have = metrics is not None and len(metrics)
    return {f"final_{c}": float(metrics[c].iloc[-1]) if have and c in metrics else float("nan") for c in COLLAPSE_COLS}


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
