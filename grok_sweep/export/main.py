"""The export's entry point: which tracker, which folder, and what it says when done."""

from __future__ import annotations

from pathlib import Path

from grok_sweep.export.source import ExportError, read_source
from grok_sweep.export.to_tensorboard import export_tensorboard, load_tensorboard
from grok_sweep.export.to_wandb import PROJECT, export_wandb, load_wandb, offline_runs
from grok_sweep.store.layout import TENSORBOARD_DIR, WANDB_DIR

TRACKERS = (WANDB_DIR, TENSORBOARD_DIR)  # each tracker's name is its folder's in the sweep's


def export(folder: str | Path, tracker: str, online: bool = False, project: str = PROJECT, echo=print) -> list[str]:
    """Export every job of a sweep (or run) folder that changed since its last export to `tracker` (TRACKERS);
    the names of the jobs written. `online` and `project`: W&B only."""
    if tracker not in TRACKERS:
        raise ExportError(f"unknown tracker {tracker!r}: choose {' or '.join(TRACKERS)}")
    if online and tracker != WANDB_DIR:
        raise ExportError("--online is for the W&B export; TensorBoard's event files are always local")
    (load_wandb if tracker == WANDB_DIR else load_tensorboard)()  # a missing extra is said before any work
    source = read_source(Path(folder))
    if tracker == WANDB_DIR:
        written = export_wandb(source, online, project, echo)
    else:
        written = export_tensorboard(source, echo)
    echo(_said(source.folder, tracker, online, project, written, len(source.jobs)))
    return written


def _said(folder: Path, tracker: str, online: bool, project: str, written: list[str], jobs: int) -> str:
    same = f"; {jobs - len(written)} unchanged since the last export" if len(written) < jobs else ""
    if tracker == TENSORBOARD_DIR:
        where = folder / TENSORBOARD_DIR
        return f"wrote {len(written)} of {jobs} jobs to {where}{same}; view them: tensorboard --logdir {where}"
    if online:
        return f"logged {len(written)} of {jobs} jobs to W&B project {project}{same}"
    runs = len(offline_runs(folder))
    return (f"wrote {len(written)} of {jobs} jobs as offline W&B runs ({runs} in {folder / WANDB_DIR}){same}; "
            f"upload them: wandb sync {folder / WANDB_DIR}/offline-run-*")  # fmt: skip
