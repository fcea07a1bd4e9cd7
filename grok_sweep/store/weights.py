"""Which weights a job folder holds: the final model and the snapshots, by step.

`model.safetensors` holds the weights when the job ended; `snapshots/step_<step>.safetensors` the weights after
that many updates (layout.snapshot_name). Each file's step is in its safetensors metadata, read here from the
file's header without loading a tensor (store/safetensors.py; train/checkpoint.py writes the files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grok_sweep.store import safetensors
from grok_sweep.store.layout import FINAL_FILE, META_KEY, SNAPSHOT_DIR, SNAPSHOT_NAME


def file_meta(path: Path) -> dict[str, Any]:
    """Our metadata of a safetensors file (the JSON under layout.META_KEY)."""
    return json.loads(safetensors.metadata(path)[META_KEY])


def snapshot_files(out_dir: Path) -> dict[int, Path]:
    """The job folder's snapshot files by step (layout.snapshot_name), without reading them."""
    named = ((SNAPSHOT_NAME.fullmatch(p.name), p) for p in (out_dir / SNAPSHOT_DIR).glob("step_*.safetensors"))
    return {int(m.group(1)): p for m, p in named if m}


def find_snapshots(out_dir: Path) -> dict[int, Path]:
    """Every step with weights in the job folder, the final model's included, in step order."""
    found = snapshot_files(out_dir)
    final = out_dir / FINAL_FILE
    if final.exists():
        found.setdefault(file_meta(final)["step"], final)
    return dict(sorted(found.items()))
