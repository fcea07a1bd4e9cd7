"""Export a sweep (or run) folder to the trackers labs use: one W&B run (offline by default) or one TensorBoard
event folder per job. `export(folder, "wandb")` from Python, `python -m grok_sweep.export wandb DIR` from a shell.

Run on a finished or running sweep's folder, never inside its jobs; each tracker is an optional extra
(`pip install 'grok_sweep[wandb]'`, `'grok_sweep[tensorboard]'`). The analysis side: never imports tinygrad.
"""

from grok_sweep.export.main import TRACKERS, export
from grok_sweep.export.source import ExportError

__all__ = ["TRACKERS", "ExportError", "export"]
