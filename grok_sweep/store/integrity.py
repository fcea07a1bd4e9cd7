"""Which files of a job folder cannot be read, or are missing though the job's result says they were written.

The checks of one file kind each; store/jobs.read_folder applies them to a job folder, for aggregation, the live
view and the API, and for the job runner (run/repair.py) before it trusts what a job left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from grok_sweep.store import safetensors
from grok_sweep.store.damage import Damaged, reading
from grok_sweep.store.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FINAL_FILE,
    FINISHED,
    HYDRA_DIR,
    HYDRA_FILE,
    METRICS_FILE,
    OVERRIDES_FILE,
    RESULT_FILE,
    SNAPSHOT_DIR,
)
from grok_sweep.store.weights import snapshot_files
from grok_sweep.store.yaml_files import load_yaml

HYDRA_FILES = {CONFIG_FILE: dict, OVERRIDES_FILE: list, HYDRA_FILE: dict}  # each file's top-level type


def read_json(path: Path) -> dict[str, Any]:
    with reading(path):
        value = json.loads(path.read_text())
        if not isinstance(value, dict):
            raise ValueError(f"not a JSON object but {type(value).__name__}")
        return value


def read_yaml(path: Path, kind: type) -> Any:
    """A Hydra file: its content, of type `kind` (a dict or a list)."""
    with reading(path):
        value = load_yaml(path)
        if not isinstance(value, kind):
            raise ValueError(f"not a YAML {'mapping' if kind is dict else 'list'} but {type(value).__name__}")
        return value


def check_safetensors(path: Path) -> None:
    """The header parses and the file holds every byte the header promises (a truncated copy does not)."""
    with reading(path):
        safetensors.check(path)


def check_weights(folder: Path) -> list[Damaged]:
    """The safetensors files of a job folder that cannot be read: checkpoint, final weights, snapshots (a damaged
    snapshot carries its step)."""
    files = [(None, p) for p in (folder / CHECKPOINT_FILE, folder / FINAL_FILE) if _there(p)]
    found = []
    for step, path in files + list(snapshot_files(folder).items()):
        try:
            check_safetensors(path)
        except Damaged as err:
            found.append(Damaged(path, err.reason, step))
    return found


def missing(folder: Path, result: Optional[dict], rows: Optional[int], snapshot_every: int) -> list[Damaged]:
    """What a finished job wrote before its result.json and is no longer there: metrics rows, the final
    weights, the snapshots (every `snapshot_every` steps before the last row)."""
    if result is None and _there(folder / FINAL_FILE):  # written just before result.json, at the job's end
        return [Damaged(folder / RESULT_FILE, f"missing, though the job wrote its final weights ({FINAL_FILE})",
                        gone=True)]  # fmt: skip
    if not result or result.get("status") not in FINISHED or not isinstance(result.get("steps_run"), int):
        return []
    ran, found = result["steps_run"], []
    if rows is not None and rows != ran:
        reason = f"holds {rows} rows; {RESULT_FILE} says {ran} steps ran"
        found.append(Damaged(folder / METRICS_FILE, reason, min(rows, ran), gone=True))
    if result.get("final_weights") == FINAL_FILE and not _there(folder / FINAL_FILE):
        found.append(Damaged(folder / FINAL_FILE, f"missing; {RESULT_FILE} says the job wrote it", gone=True))
    if snapshot_every > 0:
        have = snapshot_files(folder)
        lost = [s for s in range(0, ran, snapshot_every) if s not in have]
        if lost:
            reason = f"missing the snapshots of steps {_steps(lost)}"
            found.append(Damaged(folder / SNAPSHOT_DIR, reason, lost[0], gone=True))
    return found


def hydra_mismatch(folder: Path, result: Optional[dict], overrides: Optional[list], hydra: Optional[dict]) -> list:
    """Hydra's files of a finished job that are not the ones it ran with: its config.yaml against the config in
    result.json, its overrides against result.json's, hydra.yaml without the config group choices. A truncated
    YAML file often still parses; these catch it."""
    found, where = [], folder / HYDRA_DIR
    if result and result.get("overrides") is not None:  # run by Hydra, which writes all three files
        found += [Damaged(where / n, "missing", gone=True) for n in HYDRA_FILES if not _there(where / n)]
    if hydra is not None and not isinstance(((hydra.get("hydra") or {}).get("runtime") or {}).get("choices"), dict):
        found.append(Damaged(where / HYDRA_FILE, "holds no hydra.runtime.choices"))
    if not result or result.get("status") not in FINISHED:
        return found
    config = where / CONFIG_FILE
    if isinstance(result.get("config"), str) and config.is_file() and config.read_bytes() != result["config"].encode():
        found.append(Damaged(config, f"differs from the config in {RESULT_FILE} (the one the job ran with)"))
    recorded = result.get("overrides")  # the same set in another order: the command line's keys retyped
    if overrides is not None and recorded is not None and sorted(map(str, recorded)) != sorted(map(str, overrides)):
        found.append(Damaged(where / OVERRIDES_FILE, f"differs from the overrides in {RESULT_FILE}"))
    return found


def _there(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _steps(steps: list[int]) -> str:
    return ", ".join(map(str, steps[:5])) + (f", ... ({len(steps)} in all)" if len(steps) > 5 else "")
