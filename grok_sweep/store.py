"""Per-job artifacts: the per-step metrics table and result.json, written atomically.

Row `step` = s holds the metrics of the model after s optimizer updates (s = 0 .. steps-1):
train loss/accuracy on the whole train split come from the forward pass of update s + 1, and
on eval steps the test metrics and the weight norm are measured on those same weights.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import OmegaConf

METRICS_FILE = "metrics.parquet"
RESULT_FILE = "result.json"
# statuses of jobs that trained as configured (to the end, or until train.early_stop ended them): phases come from
# their metrics; the others are "failed", "diverged" and "incomplete" (no result.json yet)
COMPLETED = ("completed", "stopped_early")
SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("train_loss", pa.float64()),
        ("train_acc", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_acc", pa.float64()),
        ("weight_norm", pa.float64()),
        # progress measures (measures=true; grok_sweep/measures.py), null on other rows and jobs
        ("restricted_loss", pa.float64()),
        ("excluded_loss", pa.float64()),
        ("fourier_gini", pa.float64()),
        ("n_key_freqs", pa.int64()),
        ("key_freqs", pa.list_(pa.int64())),
    ]
)
TRAIN_COLS = ("train_loss", "train_acc")
EVAL_COLS = ("test_loss", "test_acc", "weight_norm")
MEASURE_COLS = ("restricted_loss", "excluded_loss", "fourier_gini")


class MetricsLog:
    """Preallocated per-step columns; NaN marks "not measured" and becomes null in the file.

    With `n_freqs` > 0 it also keeps the progress measures: one key-frequency flag per frequency 1..n_freqs."""

    def __init__(self, steps: int, n_freqs: int = 0):
        self.cols = {c: np.full(steps, np.nan) for c in TRAIN_COLS + EVAL_COLS + MEASURE_COLS}
        self.keys = np.zeros((steps, n_freqs), dtype=bool)
        self.filled = 0  # rows [0, filled) have their train metrics

    def add_train(self, rows: np.ndarray) -> None:
        """Append a block of (train_loss, train_acc) rows for the next steps."""
        end = self.filled + len(rows)
        for i, c in enumerate(TRAIN_COLS):
            self.cols[c][self.filled : end] = rows[:, i]
        self.filled = end

    def restore(self, df: pd.DataFrame, steps: int) -> None:
        """Take back rows [0, steps) of a metrics table written earlier by this job."""
        rows = df[df["step"] < steps]
        for c in TRAIN_COLS + EVAL_COLS + MEASURE_COLS:
            if c in rows:
                self.cols[c][:steps] = rows[c].to_numpy(dtype=float, na_value=np.nan)
        if "key_freqs" in rows:
            for step, freqs in zip(rows["step"], rows["key_freqs"], strict=True):
                if freqs is not None:
                    self.keys[step, np.asarray(freqs, dtype=int) - 1] = True
        self.filled = steps

    def add_eval(self, step: int, values: np.ndarray) -> None:
        """An eval's values: EVAL_COLS, then (with measures) MEASURE_COLS and one 0/1 per frequency."""
        for c, v in zip(EVAL_COLS + MEASURE_COLS, values, strict=False):
            self.cols[c][step] = v
        self.keys[step] = values[len(EVAL_COLS) + len(MEASURE_COLS) :] > 0.5

    def table(self) -> pa.Table:
        """The rows filled so far, with nulls where a metric was not measured."""
        n = self.filled
        arrays = [pa.array(np.arange(n, dtype=np.int64))]
        arrays += [pa.array(self.cols[c][:n], from_pandas=True) for c in TRAIN_COLS + EVAL_COLS + MEASURE_COLS]
        measured = ~np.isnan(self.cols["restricted_loss"][:n])
        arrays.append(pa.array(self.keys[:n].sum(axis=1), mask=~measured, type=pa.int64()))
        list_type = pa.list_(pa.int64())
        if self.keys.shape[1] == 0:
            arrays.append(pa.nulls(n, list_type))
        else:
            keys = zip(self.keys[:n], measured, strict=True)
            arrays.append(pa.array([(np.flatnonzero(k) + 1).tolist() if m else None for k, m in keys], list_type))
        return pa.Table.from_arrays(arrays, schema=SCHEMA)


def atomic_write(path: Path, write: Any) -> None:
    # write beside the target and rename, so a reader never sees a half-written file
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


CHECKPOINT_FILE = "checkpoint.safetensors"


def write_checkpoint(tensors: dict[str, Any], meta: dict[str, Any], out_dir: Path) -> Path:
    """Device state as safetensors, host state (step, RNG, config) as JSON in its metadata: one atomic file."""
    from tinygrad.nn.state import safe_save

    path = out_dir / CHECKPOINT_FILE
    atomic_write(path, lambda p: safe_save(tensors, str(p), metadata={"grok_sweep": json.dumps(meta)}))
    return path


def read_metrics(path: Path) -> pd.DataFrame:
    """Read a metrics table that its job may be replacing right now.

    pyarrow opens a path twice (footer, then pages); a replace in between pairs the old footer with the new
    file's pages. One open handle keeps both reads on the same inode, which the rename leaves intact.
    """
    with open(path, "rb") as f:
        return pq.read_table(pa.BufferReader(f.read())).to_pandas()


def read_checkpoint(out_dir: Path) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """(tensors, host state) of the job's checkpoint, or None if it has none."""
    from tinygrad.nn.state import safe_load, safe_load_metadata

    path = out_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    meta = safe_load_metadata(path)[2]["__metadata__"]
    return safe_load(path), json.loads(meta["grok_sweep"])


def read_result(out_dir: Path) -> Optional[dict[str, Any]]:
    path = out_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_metrics(log: MetricsLog, out_dir: Path) -> Path:
    path = out_dir / METRICS_FILE
    atomic_write(path, lambda p: pq.write_table(log.table(), p))
    return path


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / RESULT_FILE
    atomic_write(path, lambda p: p.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n"))
    return path


# reading a job folder back: what the aggregator sees of each job


@dataclass
class Job:
    name: str  # folder relative to the sweep folder ("." for a single run)
    config: dict[str, Any]  # flattened: {"optim.lr": 0.01, ...}
    overrides: frozenset[str]
    result: Optional[dict[str, Any]]
    metrics: Optional[pd.DataFrame]

    @property
    def status(self) -> str:
        # no result.json yet: the job is running, or was stopped before it finished
        return self.result["status"] if self.result else "incomplete"


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _group_choices(hydra_dir: Path) -> dict[str, Any]:
    """The job's config group choices ({"grokfast": "ema", "experiment": "nanda2023"}), Hydra's own left out."""
    path = hydra_dir / "hydra.yaml"
    if not path.exists():
        return {}
    choices = OmegaConf.select(OmegaConf.load(path), "hydra.runtime.choices", default=None) or {}
    return {k: v for k, v in choices.items() if not k.startswith("hydra/") and v is not None}


def load_job(folder: Path, root: Path) -> Job:
    hydra_dir = folder / ".hydra"
    config = _flatten(OmegaConf.to_container(OmegaConf.load(hydra_dir / "config.yaml")))
    config = {**_group_choices(hydra_dir), **config}  # a group's choice as a key of its own: grokfast=ema
    overrides = frozenset(OmegaConf.to_container(OmegaConf.load(hydra_dir / "overrides.yaml")))
    result = read_result(folder)
    metrics = read_metrics(folder / METRICS_FILE) if (folder / METRICS_FILE).exists() else None
    name = folder.relative_to(root).as_posix()
    return Job(name, config, overrides, result, metrics)


def find_jobs(root: Path) -> list[Job]:
    """Every job folder under `root` (or `root` itself): those holding a .hydra/config.yaml."""
    found = {p.parent.parent for p in root.rglob("config.yaml") if p.parent.name == ".hydra"}
    folders = sorted(f for f in found if f == root or root in f.parents)
    return [load_job(f, root) for f in folders]


def planned_jobs(root: Path) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a multirun asked for (from its multirun.yaml) and the keys it sweeps."""
    path = root / "multirun.yaml"
    if not path.exists():
        return [], []
    from grok_sweep.cli import expand_sweep

    parsed, jobs = expand_sweep(list(OmegaConf.load(path).hydra.overrides.task))
    swept = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    return [frozenset(job) for job in jobs], swept
