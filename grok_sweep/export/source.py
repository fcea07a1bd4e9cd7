"""What an export sends of a sweep (or run) folder: each job's config with the swept keys first, its summary row
and its metrics rows, read as aggregation reads them (store/scan.py) and never written back into the jobs."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grok_sweep.aggregate import aggregate
from grok_sweep.aggregate.summary import SUMMARY_TAIL, summary_keys
from grok_sweep.store.jobs import Job, job_folders
from grok_sweep.store.layout import LAYER_NORMS, SUMMARY_FILE
from grok_sweep.store.scan import aggregates_stale, read_jobs


class ExportError(ValueError):
    """A folder that cannot be exported, or a tracker that is not installed; the message is one line."""


@dataclass
class JobData:
    name: str  # the job's folder relative to the sweep's; a run folder's own name
    swept: dict[str, Any]  # the sweep's swept keys and this job's values
    config: dict[str, Any]  # its resolved config, flattened ("optim.lr"), the swept keys first
    summary: dict[str, Any]  # its summary.parquet row after the swept keys: status, phase, steps, accuracies
    metrics: pd.DataFrame  # its metrics rows (none yet for a job that has not started)

    @property
    def last_step(self) -> int:
        return int(self.metrics["step"].iloc[-1]) if len(self.metrics) else -1

    @property
    def fingerprint(self) -> str:
        """What changes when the job has more to export: a running job's rows, a job's end, a new phase rule."""
        return f"{self.summary.get('status')}|{self.summary.get('phase')}|{len(self.metrics)}|{self.last_step}"


@dataclass
class Source:
    folder: Path
    group: str  # the sweep's name for the trackers: its folder's last two parts ("2026-12-05/10-00-00")
    keys: list[str]  # its swept keys
    jobs: list[JobData]


def python_value(value: Any) -> Any:
    """A cell of a table as a plain Python value for a tracker; None for a missing one (NaN, NA, None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def measured(metrics: pd.DataFrame) -> Iterator[tuple[int, dict[str, float]]]:
    """Each metrics row as (step, {column: value}) without the columns it did not measure (eval-only ones); each
    layer's norm as `layer_norms/<layer>` (the key frequencies' list is left out: `n_key_freqs` counts it)."""
    lists = [c for c in metrics.columns if metrics[c].dtype == object]
    cols = [c for c in metrics.columns if c != "step" and c not in lists]
    values = metrics[cols].to_numpy(dtype=np.float64)
    norms = metrics[LAYER_NORMS] if LAYER_NORMS in lists else pd.Series([None] * len(metrics), dtype=object)
    for step, row, layers in zip(metrics["step"].to_numpy(), values, norms, strict=True):
        out = {c: float(v) for c, v in zip(cols, row, strict=True) if not math.isnan(v)}
        if layers is not None:
            out.update({f"{LAYER_NORMS}/{i}": float(v) for i, v in enumerate(layers)})
        yield int(step), out


def _summary(folder: Path, folders: list[Path]) -> pd.DataFrame:
    """The folder's summary.parquet, as the last aggregation wrote it (its phase rule); made first if stale."""
    if aggregates_stale(folder, folders):
        aggregate(folder, echo=lambda *_: None, figures=False)
    try:
        return pd.read_parquet(folder / SUMMARY_FILE)
    except Exception:  # noqa: BLE001 - a damaged summary.parquet is made again from the jobs, as load_sweep does
        aggregate(folder, echo=lambda *_: None, figures=False)
        return pd.read_parquet(folder / SUMMARY_FILE)


def _job(job: Job, row: dict[str, Any], keys: list[str], folder: Path) -> JobData:
    swept = {k: python_value(row.get(k)) for k in keys}
    config = {**swept, **{k: v for k, v in job.config.items() if k not in swept}}
    summary = {k: v for k in SUMMARY_TAIL if (v := python_value(row.get(k))) is not None}
    metrics = job.metrics if job.metrics is not None else pd.DataFrame({"step": pd.Series([], dtype="int64")})
    name = folder.resolve().name if job.name == "." else job.name
    return JobData(name, swept, config, summary, metrics)


def read_source(folder: Path) -> Source:
    """Every job of a sweep or run folder, ready to export; ExportError if it is not one."""
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder")
    folders = job_folders(folder)
    if not folders:
        raise ExportError(f"{folder} is not a grok_sweep sweep or run folder (no job folder with a .hydra folder in "
                          f"it); give the folder that `python -m grok_sweep` printed")  # fmt: skip
    summary = _summary(folder, folders)
    keys = [k for k in summary_keys(summary) if k != "seed" or summary["seed"].nunique() > 1]
    rows = {r["job"]: r for r in summary.to_dict("records")}
    jobs = [_job(j, rows.get(j.name, {}), keys, folder) for j in read_jobs(folders, folder)]
    return Source(folder, "/".join(folder.resolve().parts[-2:]), keys, jobs)
