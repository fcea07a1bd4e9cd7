"""Job folders read back: what aggregation and the API see of each job under a sweep (or run) folder.

Every file is read defensively (store/damage.py): a job with a file that cannot be read gets the status
`unreadable` and `damage`, the first such file and why, and keeps whatever else could be read, so one damaged
folder never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from grok_sweep.store.damage import Damaged, read_checked
from grok_sweep.store.integrity import (
    HYDRA_FILES,
    check_safetensors,
    hydra_mismatch,
    missing,
    read_json,
    read_yaml,
    weight_files,
)
from grok_sweep.store.layout import (
    CONFIG_FILE,
    FAILED,
    HYDRA_DIR,
    HYDRA_FILE,
    INCOMPLETE,
    METRICS_FILE,
    OVERRIDES_FILE,
    RESULT_FILE,
    RUNNING,
    STATUS_FILE,
    UNREADABLE,
)
from grok_sweep.store.lock import held_by
from grok_sweep.store.metrics import read_sound_metrics
from grok_sweep.store.yaml_files import parse_scalar, parse_yaml


@dataclass
class Job:
    name: str  # folder relative to the sweep folder ("." for a single run)
    config: dict[str, Any]  # flattened: {"optim.lr": 0.01, ...}
    overrides: frozenset[str]
    result: Optional[dict[str, Any]]
    metrics: Optional[pd.DataFrame]
    running: Optional[str] = None  # who trains it right now ("pid 12 on node3"), see store/lock.py
    damaged: list[str] = field(default_factory=list)  # 'path in the folder: reason' of each unreadable file

    @property
    def damage(self) -> Optional[str]:
        """The first file that cannot be read and why, one line (None if every file reads)."""
        return self.damaged[0] if self.damaged else None

    @property
    def status(self) -> str:
        if self.damaged and not self.running:  # a job being trained again rewrites what was damaged
            return UNREADABLE
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


class _Reader:
    """Reads one job folder's files, collecting the damaged ones instead of raising."""

    def __init__(self, folder: Path):
        self.folder, self.damaged = folder, []

    def get(self, read: Any, *args: Any) -> Any:
        try:
            return read(*args)
        except Damaged as err:
            self.damaged.append(err)
            return None

    def hydra(self, name: str) -> Any:
        path = self.folder / HYDRA_DIR / name
        return self.get(read_yaml, path, HYDRA_FILES[name])


def _guess_config(overrides: Optional[list], name: str) -> dict[str, Any]:
    """The swept values of a job whose config.yaml cannot be read: from its overrides, else its folder name."""
    pairs = [o.split("=", 1) for o in (overrides if overrides is not None else name.split(",")) if "=" in o]
    return {k.lstrip("+~"): parse_scalar(v) for k, v in pairs}


def _config(r: _Reader, result: Optional[dict]) -> tuple[dict[str, Any], Optional[list], Optional[dict]]:
    """The job's flattened config (its group choices as keys of their own: grokfast=ema), overrides, hydra.yaml."""
    folder = r.folder
    if not (folder / HYDRA_DIR).is_dir():  # run by run_job without Hydra: result.json holds the config
        text = (result or {}).get("config")
        config = r.get(lambda: read_checked(folder / RESULT_FILE, lambda _: parse_yaml(text))) if text else None
        return (_flatten(config) if isinstance(config, dict) else {}), None, None
    config, overrides = r.hydra(CONFIG_FILE), r.hydra(OVERRIDES_FILE)
    hydra = r.hydra(HYDRA_FILE) if (folder / HYDRA_DIR / HYDRA_FILE).exists() else None
    choices = (((hydra or {}).get("hydra") or {}).get("runtime") or {}).get("choices")
    choices = {k: v for k, v in (choices or {}).items() if not k.startswith("hydra/") and v is not None}
    flat = _flatten(config) if config is not None else _guess_config(overrides, folder.name)
    return {**choices, **flat}, overrides, hydra


def load_job(folder: Path, root: Path) -> Job:
    """One job folder read back; never raises for a damaged file (see Job.damaged)."""
    r, name = _Reader(folder), folder.relative_to(root).as_posix()
    result = r.get(read_json, folder / RESULT_FILE) if (folder / RESULT_FILE).exists() else None
    flat, overrides, hydra = _config(r, result)
    if (folder / STATUS_FILE).exists():
        r.get(read_json, folder / STATUS_FILE)
    for path in weight_files(folder):
        r.get(check_safetensors, path)
    metrics = r.get(read_sound_metrics, folder / METRICS_FILE)
    rows = None if metrics is None else len(metrics)
    r.damaged += missing(folder, result, rows, int(flat.get("train.snapshot_every") or 0))
    r.damaged += hydra_mismatch(folder, result, overrides, hydra)
    metrics = None if metrics is None or metrics.empty else metrics
    damaged = [f"{e.path.relative_to(folder).as_posix()}: {e.reason}" for e in r.damaged]
    return Job(name, flat, frozenset(overrides or ()), result, metrics, held_by(folder), damaged)


def job_folders(root: Path) -> list[Path]:
    """Every job folder under `root` (or `root` itself): those holding a .hydra folder, sorted."""
    found = {p.parent for p in root.rglob(HYDRA_DIR) if p.is_dir()}  # config.yaml itself may be damaged
    return sorted(f for f in found if f == root or root in f.parents)
