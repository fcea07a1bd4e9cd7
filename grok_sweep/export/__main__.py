"""Export a sweep (or run) folder to W&B or TensorBoard: one run per job, again only what changed.

`python -m grok_sweep.export wandb DIR` (offline; `wandb sync` uploads later, or --online),
`python -m grok_sweep.export tensorboard DIR` (then `tensorboard --logdir DIR/tensorboard`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from grok_sweep.aggregate import AggregateError
from grok_sweep.export.main import TRACKERS, export
from grok_sweep.export.source import ExportError
from grok_sweep.export.to_wandb import PROJECT
from grok_sweep.util.files import WriteError


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m grok_sweep.export", description=__doc__.splitlines()[0])
    ap.add_argument("tracker", choices=TRACKERS, help="where to: W&B runs or TensorBoard event files")
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder (outputs/sweeps/<date>/<time>) or a run folder")
    ap.add_argument("--online", action="store_true", help="W&B: log to your W&B account now instead of offline")
    ap.add_argument("--project", default=PROJECT, help=f"W&B: the project (default {PROJECT})")
    args = ap.parse_args(argv)
    try:
        export(args.sweep_dir, args.tracker, args.online, args.project)
    except (ExportError, AggregateError, WriteError) as err:
        sys.exit(f"grok_sweep.export: error: {err}")
    except KeyboardInterrupt:
        sys.exit("grok_sweep.export: stopped; what was exported is kept, and exporting again goes on from there")


if __name__ == "__main__":
    main()
