"""Job folders read back: what aggregation and the API see of each job under a sweep (or run) folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from omegaconf import OmegaConf

from grok_sweep.store.layout import (
    CONFIG_FILE,
    FAILED,
    HYDRA_DIR,
    HYDRA_FILE,
    INCOMPLETE,
    METRICS_FILE,
    OVERRIDES_FILE,
    RUNNING,
)
from grok_sweep.store.lock import held_by
from grok_sweep.store.metrics import metrics_exist, read_metrics
from grok_sweep.store.results import read_result


@dataclass
class Job:
    name: str  # folder relative to the sweep folder ("." for a single run)
    config: dict[str, Any]  # flattened: {"optim.lr": 0.01, ...}
    overrides: frozenset[str]
    result: Optional[dict[str, Any]]
    metrics: Optional[pd.DataFrame]
    running: Optional[str] = None  # who trains it right now ("pid 12 on node3"), see store/lock.py

    @property
    def status(self) -> str:
        # a failed job may be running again; no result.json yet: running, or stopped before it finished
        if self.running and (not self.result or self.result["status"] == FAILED):
            return RUNNING
        return self.result["status"] if self.result else INCOMPLETE


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
    path = hydra_dir / HYDRA_FILE
    if not path.exists():
        return {}
    choices = OmegaConf.select(OmegaConf.load(path), "hydra.runtime.choices", default=None) or {}
    return {k: v for k, v in choices.items() if not k.startswith("hydra/") and v is not None}


def load_job(folder: Path, root: Path) -> Job:
    hydra_dir = folder / HYDRA_DIR
    config = _flatten(OmegaConf.to_container(OmegaConf.load(hydra_dir / CONFIG_FILE)))
    config = {**_group_choices(hydra_dir), **config}  # a group's choice as a key of its own: grokfast=ema
    overrides = frozenset(OmegaConf.to_container(OmegaConf.load(hydra_dir / OVERRIDES_FILE)))
    result = read_result(folder)
    metrics = read_metrics(folder / METRICS_FILE) if metrics_exist(folder / METRICS_FILE) else None
    name = folder.relative_to(root).as_posix()
    return Job(name, config, overrides, result, metrics, held_by(folder))


def job_folders(root: Path) -> list[Path]:
    """Every job folder under `root` (or `root` itself): those holding a .hydra/config.yaml, sorted."""
    found = {p.parent.parent for p in root.rglob(CONFIG_FILE) if p.parent.name == HYDRA_DIR}
    return sorted(f for f in found if f == root or root in f.parents)


def find_jobs(root: Path) -> list[Job]:
    """Every job under `root` (see job_folders), read back."""
    return [load_job(f, root) for f in job_folders(root)]
