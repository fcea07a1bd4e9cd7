"""The tensors a job keeps on disk: its checkpoint, its final weights and its snapshots (safetensors).

Each file is one atomic write, with our metadata (JSON under store.layout.META_KEY): a checkpoint's host state
(step, RNG, config), a weights file's step. store/weights.py finds the weight files; the API loads them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from tinygrad.nn.state import safe_load, safe_load_metadata, safe_save

from grok_sweep.store.layout import CHECKPOINT_FILE, FINAL_FILE, META_KEY, SNAPSHOT_DIR, snapshot_name
from grok_sweep.util.files import atomic_write


def _save(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> Path:
    atomic_write(path, lambda p: safe_save(tensors, str(p), metadata={META_KEY: json.dumps(meta)}))
    return path


def write_checkpoint(tensors: dict[str, Any], meta: dict[str, Any], out_dir: Path) -> Path:
    """Device state as safetensors, host state (step, RNG, config) as JSON in its metadata: one atomic file."""
    return _save(tensors, meta, out_dir / CHECKPOINT_FILE)


def read_checkpoint(out_dir: Path) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """(tensors, host state) of the job's checkpoint, or None if it has none."""
    path = out_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    meta = safe_load_metadata(path)[2]["__metadata__"]
    return safe_load(path), json.loads(meta[META_KEY])


def write_snapshot(weights: dict[str, Any], step: int, steps: int, out_dir: Path) -> Path:
    """The weights after `step` updates, of a job of `steps` steps."""
    folder = out_dir / SNAPSHOT_DIR
    folder.mkdir(exist_ok=True)
    return _save(weights, {"step": step}, folder / snapshot_name(step, steps))


def write_final(weights: dict[str, Any], step: int, out_dir: Path) -> Path:
    """The weights the job ended with, after `step` updates."""
    return _save(weights, {"step": step}, out_dir / FINAL_FILE)
