"""Model weights kept in a job folder: the final model, and snapshots every train.snapshot_every steps.

`model.safetensors` holds the weights when the job ended; `snapshots/step_<step>.safetensors` (the
step zero-padded to the width of `steps`, so that names sort) the weights after that many updates.
Each file is one atomic write of the model's state dict, with its step in the metadata.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grok_sweep.files import atomic_write

FINAL_FILE = "model.safetensors"
SNAPSHOT_DIR = "snapshots"
_NAME = re.compile(r"step_(\d+)\.safetensors")


def _save(weights: dict[str, Any], step: int, path: Path) -> Path:
    from tinygrad.nn.state import safe_save

    meta = {"grok_sweep": json.dumps({"step": step})}
    atomic_write(path, lambda p: safe_save(weights, str(p), metadata=meta))
    return path


def write_snapshot(weights: dict[str, Any], step: int, steps: int, out_dir: Path) -> Path:
    """The weights after `step` updates, of a job of `steps` steps."""
    folder = out_dir / SNAPSHOT_DIR
    folder.mkdir(exist_ok=True)
    return _save(weights, step, folder / f"step_{step:0{len(str(steps))}d}.safetensors")


def write_final(weights: dict[str, Any], step: int, out_dir: Path) -> Path:
    """The weights the job ended with, after `step` updates."""
    return _save(weights, step, out_dir / FINAL_FILE)


def file_step(path: Path) -> int:
    from tinygrad.nn.state import safe_load_metadata

    return json.loads(safe_load_metadata(path)[2]["__metadata__"]["grok_sweep"])["step"]


def find_snapshots(out_dir: Path) -> dict[int, Path]:
    """Every step with weights in the job folder, the final model's included, in step order."""
    named = ((_NAME.fullmatch(p.name), p) for p in (out_dir / SNAPSHOT_DIR).glob("step_*.safetensors"))
    found = {int(m.group(1)): p for m, p in named if m}
    final = out_dir / FINAL_FILE
    if final.exists():
        found.setdefault(file_step(final), final)
    return dict(sorted(found.items()))
