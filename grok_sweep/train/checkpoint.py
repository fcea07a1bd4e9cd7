"""The tensors a job keeps on disk: its checkpoint, its final weights and its snapshots (safetensors).

Each file is one atomic write, with our metadata (JSON under store.layout.META_KEY): a checkpoint's host state
(step, RNG, config), a weights file's step. The tensors are copied to the host and written from numpy arrays
(store/safetensors.py: the safetensors package), so saving needs no tinygrad device beside the one training runs
on. store/weights.py finds the weight files and reads that metadata; the API loads the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
from tinygrad import Tensor

from grok_sweep.store import safetensors
from grok_sweep.store.layout import CHECKPOINT_FILE, FINAL_FILE, META_KEY, SNAPSHOT_DIR, snapshot_name
from grok_sweep.store.weights import file_meta
from grok_sweep.util.files import atomic_write


def _save(tensors: dict[str, Tensor | np.ndarray], meta: dict[str, Any], path: Path) -> Path:
    # a pack's member hands host arrays (train/pack_member.py): cut from one copy of the pack's state
    arrays = {k: t if isinstance(t, np.ndarray) else t.numpy() for k, t in tensors.items()}
    atomic_write(path, lambda p: safetensors.write(p, arrays, {META_KEY: json.dumps(meta)}))
    return path


def write_checkpoint(tensors: dict[str, Tensor], meta: dict[str, Any], out_dir: Path) -> Path:
    """Device state as safetensors, host state (step, RNG, config) as JSON in its metadata: one atomic file."""
    return _save(tensors, meta, out_dir / CHECKPOINT_FILE)


def read_checkpoint(out_dir: Path) -> Optional[tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """(device state as host arrays, host state) of the job's checkpoint, or None if it has none."""
    path = out_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    return safetensors.read(path), file_meta(path)


def write_snapshot(weights: dict[str, Tensor], step: int, steps: int, out_dir: Path) -> Path:
    """The weights after `step` updates, of a job of `steps` steps."""
    folder = out_dir / SNAPSHOT_DIR
    folder.mkdir(exist_ok=True)
    return _save(weights, {"step": step}, folder / snapshot_name(step, steps))


def write_final(weights: dict[str, Tensor], step: int, out_dir: Path) -> Path:
    """The weights the job ended with, after `step` updates."""
    return _save(weights, {"step": step}, out_dir / FINAL_FILE)
