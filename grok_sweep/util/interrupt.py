"""SIGINT and SIGTERM as a request to stop: a training job ends after the step in flight, writes a checkpoint at that
step and says so; a second signal ends the process at once.

One flag a process. `handling()` installs the handlers (the command for its whole life, a job while it trains) and
the training loop reads `requested()` after every step. Under submitit (hydra/launcher=slurm), whose SIGUSR2 handler
checkpoints and requeues a SLURM task that is timed out or preempted (`--signal=USR2@...`, then SIGTERM), SIGUSR2 and
SIGTERM stop the job the same way and that handler runs once the job has written its checkpoint: the requeued task
resumes from that step.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)
ASKED = signal.SIGUSR1  # a sweep's command asks its running jobs to stop (run/sweep_stop.py): never "at once"
_RELAYED = signal.SIGUSR2  # a cluster's notice; its earlier handler (submitit's) runs after the checkpoint

_state: dict[str, Any] = {"signal": None, "depth": 0, "hooks": [], "relay": None}


def requested() -> Optional[int]:
    """The signal that asked this process to stop, or None."""
    return _state["signal"]


def exit_code(signum: int) -> int:
    """What a shell reports for a process ended by `signum`: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def on_signal(hook: Callable[[int], None]) -> Callable[[], None]:
    """Call `hook(signum)` on the first signal (the sweep passes it on to its jobs); returns its removal."""
    _state["hooks"].append(hook)
    return lambda: _state["hooks"].remove(hook) if hook in _state["hooks"] else None


def _handle(signum: int, frame: Any) -> None:
    # the second: now, as the signal's default does; but a cluster sends SIGTERM right after its notice
    cluster = _state["signal"] in (_RELAYED, signal.SIGTERM) and signum == signal.SIGTERM and _state["relay"]
    if _state["signal"] is not None and signum in SIGNALS and not cluster:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _state["signal"] = _state["signal"] or signum
    for hook in list(_state["hooks"]):
        try:
            hook(signum)
        except Exception:  # noqa: BLE001 - a handler must not raise into whatever the process was doing
            pass


@contextmanager
def handling() -> Iterator[None]:
    """Signals as requests to stop inside the block (the main thread only: Python runs handlers there). The
    outermost block forgets the request when it ends, so a later command of the same process starts afresh."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _handle) for s in (*SIGNALS, ASKED)}
    relayed = signal.getsignal(_RELAYED)
    if callable(relayed):  # submitit's: checkpoint and requeue
        signal.signal(_RELAYED, _handle)
        _state["relay"] = relayed
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        for s, handler in before.items():
            signal.signal(s, handler)
        if callable(relayed):
            signal.signal(_RELAYED, relayed)
            _state["relay"] = None
            if _state["signal"] in (_RELAYED, signal.SIGTERM):  # timed out or preempted, and the job has written
                relayed(_RELAYED, None)  # its checkpoint: the cluster's handler requeues the task, which resumes
        if _state["depth"] == 0:
            _state["signal"] = None
