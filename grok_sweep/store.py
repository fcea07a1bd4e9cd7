"""Per-job artifacts: result.json and the checkpoint, written atomically; job folders read back.

The per-step metrics are written by metrics_log.py; their parts are read here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import OmegaConf

from grok_sweep.files import atomic_write
from grok_sweep.lock import held_by

METRICS_FILE = "metrics.parquet"  # a folder of parts, see metrics_log.py
RESULT_FILE = "result.json"
# statuses of jobs that trained as configured (to the end, or until train.early_stop ended them): phases come from
# their metrics; the others are "failed", "diverged", "running" (locked by a process) and "incomplete"
COMPLETED = ("completed", "stopped_early")


CHECKPOINT_FILE = "checkpoint.safetensors"


def write_checkpoint(tensors: dict[str, Any], meta: dict[str, Any], out_dir: Path) -> Path:
    """Device state as safetensors, host state (step, RNG, config) as JSON in its metadata: one atomic file."""
    from tinygrad.nn.state import safe_save

    path = out_dir / CHECKPOINT_FILE
    atomic_write(path, lambda p: safe_save(tensors, str(p), metadata={"grok_sweep": json.dumps(meta)}))
    return path


def read_checkpoint(out_dir: Path) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """(tensors, host state) of the job's checkpoint, or None if it has none."""
    from tinygrad.nn.state import safe_load, safe_load_metadata

    path = out_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    meta = safe_load_metadata(path)[2]["__metadata__"]
    return safe_load(path), json.loads(meta["grok_sweep"])


# a job's metrics: parts written by metrics_log.MetricsLog


def part_name(start: int) -> str:
    return f"part-{start:012d}.parquet"


def part_start(path: Path) -> int:
    return int(path.stem.split("-")[1])


def part_paths(path: Path) -> list[Path]:
    return sorted(path.glob("part-*.parquet"))


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
        paths = [p for p in part_paths(path) if before is None or part_start(p) < before]
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
        return pa.concat_tables(parts).to_pandas() if parts else pd.DataFrame()
    return read_part(path).to_pandas()


def metrics_exist(path: Path) -> bool:
    """Whether a job has written metrics (either layout)."""
    return path.is_file() or (path.is_dir() and any(path.glob("part-*.parquet")))


def read_result(out_dir: Path) -> Optional[dict[str, Any]]:
    path = out_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


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
    running: Optional[str] = None  # who trains it right now ("pid 12 on node3"), see lock.py

    @property
    def status(self) -> str:
        # a failed job may be running again; no result.json yet: running, or stopped before it finished
        if self.running and (not self.result or self.result["status"] == "failed"):
            return "running"
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
    metrics = read_metrics(folder / METRICS_FILE) if metrics_exist(folder / METRICS_FILE) else None
    name = folder.relative_to(root).as_posix()
    return Job(name, config, overrides, result, metrics, held_by(folder))


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
    return plan(list(OmegaConf.load(path).hydra.overrides.task))


def plan(overrides: list[str]) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a multirun's task overrides ask for, and the keys they sweep."""
    from grok_sweep.cli import expand_sweep

    parsed, jobs = expand_sweep(overrides)
    swept = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    return [frozenset(job) for job in jobs], swept
