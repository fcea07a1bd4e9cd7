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
    check_weights,
    hydra_mismatch,
    missing,
    read_json,
    read_yaml,
)
from grok_sweep.store.layout import (
    CONFIG_FILE,
    FAILED,
    HYDRA_DIR,
    HYDRA_FILE,
    INCOMPLETE,
    INTERRUPTED,
    METRICS_FILE,
    OVERRIDES_FILE,
    RESULT_FILE,
    RUNNING,
    STATUS_FILE,
    UNREADABLE,
)
from grok_sweep.store.lock import held_by
from grok_sweep.store.metrics import read_sound_metrics
from grok_sweep.store.yaml_files import flatten, parse_scalar, parse_yaml


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
        if self.running and (not self.result or self.result["status"] in (FAILED, INTERRUPTED)):
            return RUNNING
        return self.result["status"] if self.result else INCOMPLETE


@dataclass
class FolderRead:
    """What one job folder's files hold, as far as they can be read, and the files that cannot."""

    folder: Path
    damaged: list[Damaged] = field(default_factory=list)  # first found first
    result: Optional[dict[str, Any]] = None
    config: dict[str, Any] = field(default_factory=dict)  # flattened, group choices included (grokfast=ema)
    overrides: Optional[list] = None
    metrics: Optional[pd.DataFrame] = None

    def get(self, read: Any, *args: Any) -> Any:
        """read(*args), or None with the damage noted."""
        try:
            return read(*args)
        except Damaged as err:
            self.damaged.append(err)
            return None


def _guess_config(overrides: Optional[list], name: str) -> dict[str, Any]:
    """The swept values of a job whose config.yaml cannot be read: from its overrides, else its folder name."""
    pairs = [o.split("=", 1) for o in (overrides if overrides is not None else name.split(",")) if "=" in o]
    return {k.lstrip("+~"): parse_scalar(v) for k, v in pairs}


def _read_hydra(r: FolderRead) -> Optional[dict]:
    """The job's config, overrides and group choices from Hydra's files; hydra.yaml's content."""
    where = r.folder / HYDRA_DIR
    config = r.get(read_yaml, where / CONFIG_FILE, HYDRA_FILES[CONFIG_FILE])
    r.overrides = r.get(read_yaml, where / OVERRIDES_FILE, HYDRA_FILES[OVERRIDES_FILE])
    hydra = r.get(read_yaml, where / HYDRA_FILE, HYDRA_FILES[HYDRA_FILE]) if (where / HYDRA_FILE).exists() else None
    choices = (((hydra or {}).get("hydra") or {}).get("runtime") or {}).get("choices")
    choices = {k: v for k, v in (choices or {}).items() if not k.startswith("hydra/") and v is not None}
    r.config = {**choices, **(flatten(config) if config is not None else _guess_config(r.overrides, r.folder.name))}
    return hydra


def read_folder(folder: Path, hydra: bool = True) -> FolderRead:
    """Every file of a job folder read back, never raising for a damaged one (store/integrity.py's checks).

    `hydra=False` leaves `.hydra` alone and takes the config from result.json, as for a job run without Hydra:
    the job runner's view, for whom Hydra has just written those files again."""
    r = FolderRead(folder)
    if (folder / RESULT_FILE).exists():
        r.result = r.get(read_json, folder / RESULT_FILE)
    with_hydra = hydra and (folder / HYDRA_DIR).is_dir()
    hydra_yaml = _read_hydra(r) if with_hydra else None
    if not with_hydra and isinstance(text := (r.result or {}).get("config"), str):
        config = r.get(read_checked, folder / RESULT_FILE, lambda _: parse_yaml(text))
        r.config = flatten(config) if isinstance(config, dict) else {}
    if (folder / STATUS_FILE).exists():
        r.get(read_json, folder / STATUS_FILE)
    r.damaged += check_weights(folder)
    r.metrics = r.get(read_sound_metrics, folder / METRICS_FILE)
    if not any(e.path.name == RESULT_FILE for e in r.damaged):  # what the result says the job wrote
        rows = None if r.metrics is None else len(r.metrics)
        r.damaged += missing(folder, r.result, rows, int(r.config.get("train.snapshot_every") or 0))
    if with_hydra:
        r.damaged += hydra_mismatch(folder, r.result, r.overrides, hydra_yaml)
    return r


def load_job(folder: Path, root: Path) -> Job:
    """One job folder read back; never raises for a damaged file (see Job.damaged)."""
    r = read_folder(folder)
    metrics = None if r.metrics is None or r.metrics.empty else r.metrics
    damaged = [f"{e.path.relative_to(folder).as_posix()}: {e.reason}" for e in r.damaged]
    name = folder.relative_to(root).as_posix()
    return Job(name, r.config, frozenset(r.overrides or ()), r.result, metrics, held_by(folder), damaged)


def job_folders(root: Path) -> list[Path]:
    """Every job folder under `root` (or `root` itself): those holding a .hydra folder, sorted."""
    found = {p.parent for p in root.rglob(HYDRA_DIR) if p.is_dir()}  # config.yaml itself may be damaged
    return sorted(f for f in found if f == root or root in f.parents)
