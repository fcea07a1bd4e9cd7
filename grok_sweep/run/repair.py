"""A re-run repairs a damaged job folder: damaged files are set aside, then the job trains again.

From its checkpoint when the checkpoint reads and nothing it would keep is lost (the metrics rows and snapshots
before its step), so the job ends with the metrics of an undamaged run; from scratch otherwise. It never takes a
job whose files are damaged for finished. docs/guide/failures.md describes what a user sees.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from grok_sweep.store.damage import set_aside
from grok_sweep.store.jobs import read_folder
from grok_sweep.store.layout import CHECKPOINT_FILE, RESULT_FILE, STATUS_FILE
from grok_sweep.store.weights import file_meta

log = logging.getLogger(__name__)


def repair(out_dir: Path) -> Optional[str]:
    """Set aside the job folder's damaged files; how the job must train again ('from its checkpoint at step N',
    'from scratch'), or None if nothing it trained is damaged (a damaged status file is only set aside)."""
    found = read_folder(out_dir, hydra=False).damaged  # Hydra rewrote .hydra at launch
    if not found:
        return None
    for err in found:
        log.warning("damaged: %s", err)
        if not err.gone and (err.path.exists() or err.path.is_symlink()):
            log.warning("set aside as %s", set_aside(err.path).name)
    if all(err.path.name == STATUS_FILE for err in found):
        return None
    checkpoint = out_dir / CHECKPOINT_FILE
    step = _checkpoint_step(checkpoint)
    lost = [err.step for err in found if err.step is not None]
    if step is not None and all(s > step for s in lost):
        how = f"from its checkpoint at step {step}"
    else:
        if step is not None:  # sound, but from before rows or snapshots that are lost: cannot rebuild them
            checkpoint.unlink()
        how = "from scratch"
    (out_dir / RESULT_FILE).unlink(missing_ok=True)  # describes the damaged run; the new one writes its own
    log.warning("the job's files were damaged: training it again %s", how)
    return how


def _checkpoint_step(path: Path) -> Optional[int]:
    if not path.exists():
        return None
    try:  # its file was checked (and set aside if damaged) with the others: here its step must read too
        return int(file_meta(path)["step"])
    except (KeyError, ValueError, TypeError) as err:
        log.warning("damaged: %s: %s; set aside as %s", path, err, set_aside(path).name)
        return None
