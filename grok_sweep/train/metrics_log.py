"""The per-step metrics of a job: a fixed-size block in host memory, flushed to parquet parts as it fills.

Row `step` = s holds the metrics of the model after s optimizer updates (s = 0 .. steps-1):
train loss/accuracy on the whole train split come from the forward pass of update s + 1, and
on eval steps the test metrics and the weight norm are measured on those same weights.

A job's `metrics.parquet` is a folder of parts (store/metrics.py), each BLOCK_ROWS rows but the last.
A full block is written once and never again; the last one is rewritten at each flush. Host memory
holds one block whatever `steps` is (BLOCK_ROWS x ~80 bytes). A job folder of an early version holds
one parquet file instead: a resumed job rewrites it as parts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from grok_sweep.store.layout import (
    EVAL_COLS,
    FLOAT_COLS,
    LAYER_NORMS,
    MEASURE_COLS,
    METRICS_FILE,
    TRAIN_COLS,
    part_name,
)
from grok_sweep.store.metrics import (
    SCHEMA,
    concat,
    first_step,
    part_paths,
    read_metrics,
    read_part,
    read_parts,
    write_part,
)

BLOCK_ROWS = 50_000


class MetricsLog:
    """One block of per-step columns; NaN marks "not measured" and becomes null in the file.

    With `n_freqs` > 0 it also keeps the progress measures: one key-frequency flag per frequency 1..n_freqs; with
    `n_layers` > 0, each eval's `n_layers` layer norms. Full blocks go to the folder given to `attach` (kept in memory
    until then)."""

    def __init__(self, steps: int, n_freqs: int = 0, block: Optional[int] = None, n_layers: int = 0):
        # GROK_SWEEP_BLOCK_ROWS: blocks of a few rows, for the tests of a real job across block boundaries
        block = block or int(os.environ.get("GROK_SWEEP_BLOCK_ROWS", BLOCK_ROWS))
        self.rows, self.n_freqs, self.n_layers = max(1, min(block, steps)), n_freqs, n_layers
        self.start = 0  # the step of the block's first row
        self.filled = 0  # rows [0, filled) have their train metrics
        self.last_train: Optional[tuple[float, float]] = None  # row filled - 1's (loss, acc)
        self.folder: Optional[Path] = None
        self.sealed: list[pa.Table] = []  # full blocks not written anywhere yet
        self._clear()

    def _clear(self) -> None:
        self.cols = {c: np.full(self.rows, np.nan) for c in FLOAT_COLS}
        self.keys = np.zeros((self.rows, self.n_freqs), dtype=bool)
        self.norms = np.full((self.rows, self.n_layers), np.nan)

    def attach(self, folder: Path) -> None:
        """Write full blocks into `folder`'s metrics from now on; a log with no rows yet replaces what was there."""
        self.folder = folder
        path = folder / METRICS_FILE
        if self.filled == 0 and path.is_file():
            path.unlink()
        elif self.filled == 0 and path.is_dir():  # a run started again from step 0: no stale part may outlive it
            for part in part_paths(path):
                part.unlink()
        for table in self.sealed:
            write_part(table, folder, table["step"][0].as_py())
        self.sealed = []

    def _make_room(self, step: int) -> None:
        """Seal blocks until `step` falls in the current one (only blocks whose rows all have train metrics)."""
        while step >= self.start + self.rows and self.filled >= self.start + self.rows:
            table = self.block_table()
            write_part(table, self.folder, self.start) if self.folder else self.sealed.append(table)
            self.start += self.rows
            self._clear()

    def add_train(self, rows: np.ndarray) -> None:
        """Append a block of (train_loss, train_acc) rows for the next steps."""
        done = 0
        while done < len(rows):
            self._make_room(self.filled)
            i = self.filled - self.start
            n = min(len(rows) - done, self.rows - i)
            for j, c in enumerate(TRAIN_COLS):
                self.cols[c][i : i + n] = rows[done : done + n, j]
            self.filled, done = self.filled + n, done + n
        if len(rows):
            self.last_train = (float(rows[-1, 0]), float(rows[-1, 1]))

    def add_eval(self, step: int, values: np.ndarray) -> None:
        """An eval's values (store.layout.eval_row_width): EVAL_COLS, the layer norms, then (with measures)
        MEASURE_COLS and one 0/1 per frequency."""
        self._make_room(step)
        at, n = step - self.start, len(EVAL_COLS)
        for c, v in zip(EVAL_COLS, values, strict=False):
            self.cols[c][at] = v
        self.norms[at] = values[n : n + self.n_layers]
        rest = values[n + self.n_layers :]
        for c, v in zip(MEASURE_COLS, rest, strict=False):
            self.cols[c][at] = v
        self.keys[at] = rest[len(MEASURE_COLS) :] > 0.5

    def value(self, col: str, step: int) -> float:
        """One metric of a step of the current block."""
        if not self.start <= step < self.start + self.rows:
            raise IndexError(f"step {step} is not in the block in memory (steps {self.start}..)")
        return float(self.cols[col][step - self.start])

    def block_table(self) -> pa.Table:
        """The current block's rows filled so far, with nulls where a metric was not measured."""
        n, at = max(self.filled - self.start, 0), self.start
        arrays = [pa.array(np.arange(at, at + n, dtype=np.int64))]
        arrays += [pa.array(self.cols[c][:n], from_pandas=True) for c in FLOAT_COLS]
        measured = ~np.isnan(self.cols["restricted_loss"][:n])
        arrays.append(pa.array(self.keys[:n].sum(axis=1), mask=~measured, type=pa.int64()))
        list_type = pa.list_(pa.int64())
        if self.n_freqs == 0:
            arrays.append(pa.nulls(n, list_type))
        else:
            keys = zip(self.keys[:n], measured, strict=True)
            arrays.append(pa.array([(np.flatnonzero(k) + 1).tolist() if m else None for k, m in keys], list_type))
        evaluated = ~np.isnan(self.norms[:n]).all(axis=1)  # none without layers
        norms = [r.tolist() if e else None for r, e in zip(self.norms[:n], evaluated, strict=True)]
        arrays.append(pa.array(norms, pa.list_(pa.float64())))
        return pa.Table.from_arrays(arrays, schema=SCHEMA)

    def frame(self) -> pd.DataFrame:
        """Every row so far, from the folder's parts and memory."""
        parts = read_parts(self.folder / METRICS_FILE, before=self.start) if self.folder else []
        return concat([*parts, *self.sealed, self.block_table()])

    def column(self, col: str) -> np.ndarray:
        """One metric of every row so far, NaN where not measured."""
        return self.frame()[col].to_numpy(dtype=float, na_value=np.nan)

    def restore(self, folder: Path, steps: int) -> None:
        """Continue with rows [0, steps) as written earlier into `folder` by this job (rows after are dropped)."""
        self.folder = folder
        path = folder / METRICS_FILE
        if path.is_file():  # the single-file layout: rewrite it as parts
            _from_single_file(path, self, steps)
            return
        self.start = steps // self.rows * self.rows
        for part in part_paths(path):
            if first_step(part) > self.start:
                part.unlink()
        have = sum(pq.read_metadata(p).num_rows for p in part_paths(path) if first_step(p) < self.start)
        if have != self.start:
            raise ValueError(f"{path} holds {have} rows before step {self.start}, not {self.start}")
        tail = path / part_name(self.start)
        self._load(read_part(tail).to_pandas() if tail.exists() else None, steps)
        write_metrics(self, folder)

    def _load(self, df: Optional[pd.DataFrame], steps: int) -> None:
        self._clear()
        self.filled = steps
        if df is None:
            return
        rows = df[(df["step"] >= self.start) & (df["step"] < steps)]
        at = rows["step"].to_numpy() - self.start
        for c in FLOAT_COLS:
            if c in rows:
                self.cols[c][at] = rows[c].to_numpy(dtype=float, na_value=np.nan)
        if "key_freqs" in rows and self.n_freqs:
            for i, freqs in zip(at, rows["key_freqs"], strict=True):
                if freqs is not None:
                    self.keys[i, np.asarray(freqs, dtype=int) - 1] = True
        if LAYER_NORMS in rows and self.n_layers:
            for i, norms in zip(at, rows[LAYER_NORMS], strict=True):
                if norms is not None and len(norms) == self.n_layers:
                    self.norms[i] = norms
        if len(rows):
            last = rows.iloc[-1]
            self.last_train = (float(last["train_loss"]), float(last["train_acc"]))


def _from_single_file(path: Path, log: MetricsLog, steps: int) -> None:
    rows = read_metrics(path)
    old = path.with_name(f".{path.name}.single")
    path.rename(old)  # its rows are in memory now; the parts take the name
    for start in range(0, steps // log.rows * log.rows, log.rows):  # the full blocks, one at a time
        log.start = start
        log._load(rows, start + log.rows)
        write_part(log.block_table(), log.folder, start)
    log.start = steps // log.rows * log.rows
    log._load(rows, steps)
    write_metrics(log, log.folder)
    old.unlink()


def write_metrics(log: MetricsLog, out_dir: Path) -> Path:
    """Write what `log` holds that is not on disk yet: its full blocks, then the block in memory."""
    if log.folder != out_dir:
        log.attach(out_dir)
    write_part(log.block_table(), out_dir, log.start)
    return out_dir / METRICS_FILE
