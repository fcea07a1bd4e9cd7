"""Per-job artifacts: the per-step metrics table and result.json, written atomically.

Row `step` = s holds the metrics of the model after s optimizer updates (s = 0 .. steps-1):
train loss/accuracy on the whole train split come from the forward pass of update s + 1, and
on eval steps the test metrics and the weight norm are measured on those same weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METRICS_FILE = "metrics.parquet"
RESULT_FILE = "result.json"
SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        ("train_loss", pa.float64()),
        ("train_acc", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_acc", pa.float64()),
        ("weight_norm", pa.float64()),
    ]
)
TRAIN_COLS = ("train_loss", "train_acc")
EVAL_COLS = ("test_loss", "test_acc", "weight_norm")


class MetricsLog:
    """Preallocated per-step columns; NaN marks "not measured" and becomes null in the file."""

    def __init__(self, steps: int):
        self.cols = {c: np.full(steps, np.nan) for c in TRAIN_COLS + EVAL_COLS}
        self.filled = 0  # rows [0, filled) have their train metrics

    def add_train(self, rows: np.ndarray) -> None:
        """Append a block of (train_loss, train_acc) rows for the next steps."""
        end = self.filled + len(rows)
        for i, c in enumerate(TRAIN_COLS):
            self.cols[c][self.filled : end] = rows[:, i]
        self.filled = end

    def add_eval(self, step: int, values: np.ndarray) -> None:
        for c, v in zip(EVAL_COLS, values, strict=True):
            self.cols[c][step] = v

    def table(self) -> pa.Table:
        """The rows filled so far, with nulls where a metric was not measured."""
        n = self.filled
        arrays = [pa.array(np.arange(n, dtype=np.int64))]
        arrays += [pa.array(self.cols[c][:n], from_pandas=True) for c in TRAIN_COLS + EVAL_COLS]
        return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _atomic(path: Path, write: Any) -> None:
    # write beside the target and rename, so a reader never sees a half-written file
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def write_metrics(log: MetricsLog, out_dir: Path) -> Path:
    path = out_dir / METRICS_FILE
    _atomic(path, lambda p: pq.write_table(log.table(), p))
    return path


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / RESULT_FILE
    _atomic(path, lambda p: p.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n"))
    return path


def read_metrics(path: Path | str) -> pd.DataFrame:
    return pd.read_parquet(path)
