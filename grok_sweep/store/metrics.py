"""A job's metrics.parquet: a folder of parts, `part-<first step>.parquet`, read as one table.

train/metrics_log.py writes the parts as a job trains (a full part once, the last one at each flush); pandas and
pyarrow read the folder as one table (`pd.read_parquet(job / "metrics.parquet")`). Every part is written beside
its name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from grok_sweep.store.damage import Damaged, reading
from grok_sweep.store.layout import FLOAT_COLS, LAYER_NORMS, METRICS_FILE, PART_GLOB, part_name, part_start
from grok_sweep.util.files import atomic_write

SCHEMA = pa.schema(
    [
        ("step", pa.int64()),
        *((col, pa.float64()) for col in FLOAT_COLS),
        ("n_key_freqs", pa.int64()),
        ("key_freqs", pa.list_(pa.int64())),
        (LAYER_NORMS, pa.list_(pa.float64())),
    ]
)


def concat(tables: list[pa.Table]) -> pd.DataFrame:
    """Parts as one table. A job resumed from an earlier version's folder has older parts without the newer
    columns (softmax_collapse, zero_loss, ipr, layer_norms): they read as null there."""
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def part_paths(path: Path) -> list[Path]:
    return sorted(path.glob(PART_GLOB))


def first_step(path: Path) -> int:
    """The step of a part's first row, from its name."""
    return part_start(path.name)


def write_part(table: pa.Table, folder: Path, start: int) -> None:
    path = folder / METRICS_FILE
    path.mkdir(exist_ok=True)
    atomic_write(path / part_name(start), lambda p: pq.write_table(table, p))


def read_part(path: Path) -> pa.Table:
    # pyarrow opens a path twice (footer, then pages); a replace in between would pair the old footer with the new
    # file's pages. One open handle keeps both reads on the same inode, which the rename leaves intact.
    with open(path, "rb") as f:
        return pq.read_table(pa.BufferReader(f.read()))


def read_parts(path: Path, before: Optional[int] = None) -> list[pa.Table]:
    """The parts in step order (those starting before step `before`, if given)."""
    for attempt in range(10):
        paths = [p for p in part_paths(path) if before is None or first_step(p) < before]
        try:
            return [read_part(p) for p in paths]
        except FileNotFoundError:  # a resumed job dropped a part after the listing: list again
            if attempt == 9:
                raise
            time.sleep(0.05)
    return []


def read_metrics(path: Path) -> pd.DataFrame:
    """A job's metrics (a folder of parts, or one parquet file), whole even while the job is writing them."""
    if path.is_dir():
        parts = read_parts(path)
        return concat(parts)
    return read_part(path).to_pandas()


def read_sound_metrics(path: Path) -> pd.DataFrame:
    """A finished job's metrics, every part checked: it reads, and the parts follow on from step 0 with no gap.
    Raises Damaged naming the first part that fails; an empty table if the job has no metrics."""
    if not path.is_dir():
        if not (path.exists() or path.is_symlink()):
            return pd.DataFrame()
        with reading(path):
            return read_part(path).to_pandas()
    tables, at = [], 0
    for part in part_paths(path):
        if first_step(part) != at:
            raise Damaged(part, f"starts at step {first_step(part)}, but the parts before it end at step {at}", at)
        try:
            with reading(part):
                tables.append(read_part(part))
        except Damaged as err:
            raise Damaged(part, err.reason, at) from err
        at += tables[-1].num_rows
    return concat(tables)


def metrics_exist(path: Path) -> bool:
    """Whether a job has written metrics (either layout)."""
    return path.is_file() or (path.is_dir() and any(path.glob(PART_GLOB)))
