"""A job's progress as it trains: status.json in its folder, for the sweep view, and its tqdm bar in a single run.

The file (store/status.py) is written at most every `interval` seconds, plus once at each change of state, so a
job pays a few microseconds a step (a clock read) and a write a few times a second. view/state.py reads it.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from grok_sweep.detect import DEFAULT_RULE, Streak, detect, holds, phase
from grok_sweep.store.layout import COMPILING, ENDED, TEST_ACC, TEST_LOSS, TRAINING
from grok_sweep.store.status import write_status


class JobStatus:
    """What Trainer.fit reports to: `advance` each step, `evals` at each sync, `stopped` when it stops early.

    `folder` None writes no file; `bar` shows a tqdm bar (a single run in a terminal)."""

    def __init__(self, folder: Optional[Path], steps: int, step: int = 0, bar: bool = False, interval: float = 0.5):
        self.folder, self.interval = folder, interval
        self.bar = tqdm(total=steps, initial=step, desc="train", unit="step", disable=not bar, mininterval=0.5,
                        dynamic_ncols=True)  # fmt: skip
        self.fields: dict[str, Any] = {
            "state": COMPILING, "step": step, "steps": steps, "train_acc": None, "test_acc": None, "phase": None,
            "steps_per_s": None, "error": None, "started": time.time(), "pid": os.getpid(),
            "host": socket.gethostname(),
        }  # fmt: skip
        self.first, self.step = step, step
        self.t_trained: Optional[float] = None  # when the compiling steps were done
        self.memorized: Optional[int] = None  # first sync step with train acc >= threshold
        self.test_held = Streak(DEFAULT_RULE.threshold)  # the streak of test acc >= threshold so far
        self.written = 0.0
        self._write()

    def advance(self) -> None:
        self.step += 1
        self.bar.update(1)
        if self.step == self.first + 2:  # the first two steps compile (see train.Outcome)
            self.t_trained, self.fields["state"] = time.perf_counter(), TRAINING
            self._write()
        elif time.perf_counter() - self.written >= self.interval:
            self._write()

    def evals(self, last_train: Optional[tuple[float, float]], evals: list[tuple[int, Any]]) -> None:
        """The evals fetched at a sync, (step, its eval row: store.layout.eval_row_width); the latest train row."""
        for s, values in evals:
            self.test_held.update(s, float(values[TEST_ACC]))
        s, values = evals[-1]
        if last_train is not None and holds(last_train[1], DEFAULT_RULE.threshold) and self.memorized is None:
            self.memorized = s
        self.fields.update(test_acc=float(values[TEST_ACC]), phase=phase(self.memorized, self.test_held.since))
        if last_train is not None:
            self.fields["train_acc"] = last_train[1]
        train = f"train loss {last_train[0]:.3g} acc {last_train[1]:.3f} | " if last_train else ""
        self.bar.set_postfix_str(f"{train}test loss {values[TEST_LOSS]:.3g} acc {values[TEST_ACC]:.3f}", refresh=False)

    def stopped(self, step: int) -> None:
        self.bar.set_description_str(f"stopped early at step {step}", refresh=False)

    def finish(self, result: dict[str, Any], metrics: Any = None) -> None:
        """The job's end, from what it wrote to result.json; `metrics` (a DataFrame) gives the exact phase."""
        self.bar.close()
        self.fields.update(state=ENDED.get(result["status"], result["status"]), error=result.get("error"))
        self.fields["step"] = result.get("steps_run", self.step)
        if metrics is not None and len(metrics):
            found = detect(metrics)
            self.fields.update(phase=found["phase"], test_acc=found["final_test_acc"])
        self._write()

    def _write(self) -> None:
        now = time.perf_counter()
        self.written = now
        if self.t_trained is not None and self.step > self.first + 2:
            self.fields["steps_per_s"] = round((self.step - self.first - 2) / max(now - self.t_trained, 1e-9), 2)
        if self.folder is None:
            return
        self.fields.update(step=self.fields["step"] if self.fields["state"] in ENDED.values() else self.step,
                           updated=time.time())  # fmt: skip
        try:
            write_status(self.fields, self.folder)
        except OSError:  # the view misses an update; the job's own files say whether the disk is the problem
            pass
