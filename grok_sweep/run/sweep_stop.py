"""A sweep stopped by SIGINT or SIGTERM: its running jobs stop after their step in flight, its queued jobs do not start,
and what finished is aggregated.

The command's process gets the signal (Ctrl-C also reaches a local launcher's workers; a SIGTERM reaches the command
alone). It asks every process that holds a job's lock on this machine to stop with SIGUSR1 (util/interrupt.py: a
job's request, never its "at once"), and leaves a marker in the sweep folder that a job of this sweep reads before it
starts. The next command on the folder removes the marker.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Optional

from grok_sweep.store.layout import LOCK_FILE, STOP_FILE
from grok_sweep.store.lock import local_holder
from grok_sweep.util import interrupt

log = logging.getLogger(__name__)


def stopped(sweep: Path) -> Optional[int]:
    """The signal that stopped the sweep in `sweep`, or None if it was not stopped."""
    try:
        return int((sweep / STOP_FILE).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def clear(sweep: Path) -> None:
    """A new command on the sweep: its jobs may start again."""
    (sweep / STOP_FILE).unlink(missing_ok=True)


def stop(sweep: Path, signum: int) -> None:
    """Mark the sweep stopped and ask its running jobs on this machine to stop after their step in flight."""
    try:
        (sweep / STOP_FILE).write_text(f"{int(signum)} {signal.Signals(signum).name}\n")
    except OSError as err:  # the running jobs are still asked; queued ones may start and be asked in turn
        log.warning("could not mark the sweep stopped in %s: %s", sweep, err)
    for pid in _job_processes(sweep):
        try:
            os.kill(pid, interrupt.ASKED)
        except OSError:  # it ended meanwhile
            pass


def _job_processes(sweep: Path) -> set[int]:
    """The processes of this machine, other than this one, that hold the lock of a job under `sweep`."""
    return {pid for lock in sweep.rglob(LOCK_FILE) if (pid := local_holder(lock.parent)) not in (None, os.getpid())}
