"""The Hydra callbacks of a multirun (registered in conf/config.yaml): the live view while its jobs run, the
aggregation once they have ended; and the console of a job inside a multirun."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from grok_sweep.aggregate import aggregate, unreadable_line
from grok_sweep.detect import Rule
from grok_sweep.run import sweep_stop
from grok_sweep.store.layout import DIVERGED, FAILED, INCOMPLETE, INTERRUPTED, RUNNING, TRAINED
from grok_sweep.util import interrupt
from grok_sweep.util.errors import first_line
from grok_sweep.view.live import View
from grok_sweep.view.state import Sweep, header

log = logging.getLogger(__name__)


class AggregateCallback(Callback):
    """Aggregates a multirun when its last job is done."""

    def __init__(self, rows: Optional[str] = None, cols: Optional[str] = None, threshold: float = 0.99,
                 delay_ratio: float = 5.0, min_delay: int = 100):  # fmt: skip
        self.rows, self.cols = rows, cols
        self.rule = Rule(threshold, delay_ratio, min_delay)
        self._unhook: Optional[Any] = None

    def __getstate__(self) -> dict[str, Any]:  # launchers pickle the callbacks with each job: not the signal hook
        return {**self.__dict__, "_unhook": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A new command on the sweep: a stop marker of an earlier one goes; a signal now stops this one."""
        sweep = Path(config.hydra.sweep.dir)
        sweep_stop.clear(sweep)
        self._unhook = interrupt.on_signal(lambda signum: sweep_stop.stop(sweep, signum))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        if self._unhook is not None:
            self._unhook()
        try:
            summary, _ = aggregate(sweep, self.rows, self.cols, self.rule)
        except Exception as err:  # Hydra would only warn and exit 0: the sweep's results were not written
            log.debug("aggregation failed", exc_info=True)  # the line below says why; a traceback is noise
            hint = "" if sweep.is_absolute() else (" (jobs that run in another working directory, as on Ray, "
                                                   "need an absolute hydra.sweep.dir)")  # fmt: skip
            sys.exit(f"grok_sweep: the sweep's jobs ran, but aggregating them failed: {type(err).__name__}: "
                     f"{first_line(err)}{hint}; once fixed: python -m grok_sweep.aggregate {sweep}")  # fmt: skip
        running = summary.loc[summary["status"] == RUNNING, "job"].tolist()
        if running:  # another command on this sweep trains them (store/lock.py)
            print(f"{len(running)} job(s) still being trained by another process: {'; '.join(running)}; "
                  f"once they have ended, aggregate again: python -m grok_sweep.aggregate {sweep}")  # fmt: skip
        if signum := sweep_stop.stopped(sweep):
            print(f"grok_sweep: {interrupted_line(summary, signum)}", file=sys.stderr, flush=True)
            sys.exit(interrupt.exit_code(signum))
        bad = summary.loc[summary["status"].isin([FAILED, DIVERGED]), "job"].tolist()
        damaged = unreadable_line(summary)
        if bad or damaged:
            failed = f"{len(bad)} job(s) failed or diverged: {'; '.join(bad)}" if bad else ""
            sys.exit("grok_sweep: " + "; ".join(x for x in (failed, damaged) if x))


def interrupted_line(summary: Any, signum: int) -> str:
    """What an interrupted sweep says: how its jobs ended, and how to resume it."""
    counts = summary["status"].value_counts()
    done = int(counts.reindex(list(TRAINED), fill_value=0).sum())
    said = [f"{done} job(s) finished"] + [
        f"{int(counts[s])} {w}" for s, w in ((INTERRUPTED, INTERRUPTED), (INCOMPLETE, "not started")) if s in counts
    ]
    return (f"the sweep was interrupted ({signal.Signals(signum).name}): {', '.join(said)}; the same command "
            "resumes it, each interrupted job from the step it stopped at")  # fmt: skip


class ViewCallback(Callback):
    """Shows the sweep view while a multirun's jobs run."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.view = interval, None

    def __getstate__(self) -> dict[str, Any]:  # launchers pickle the callbacks with each job: not the running view
        return {"interval": self.interval, "view": None}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Sweep.from_overrides(Path(config.hydra.sweep.dir), list(config.hydra.overrides.task), config.hydra)
        self.view = View(sweep, interval=self.interval).start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.view is not None:
            jobs = self.view.stop()
            if self.view.lines is not None:
                print(header(jobs, time.time() - self.view.t0), flush=True)


def quiet_console(multirun: bool) -> None:
    """In a multirun job: the console shows warnings only, and nothing on a terminal (the view is there);
    the job's own log file keeps every line."""
    if not multirun:
        return
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            tty = getattr(handler.stream, "isatty", lambda: False)()
            handler.setLevel(logging.CRITICAL + 1 if tty else logging.WARNING)
