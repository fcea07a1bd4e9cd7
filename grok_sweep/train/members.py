"""The runs a trainer trains at once: one for a single job (train/trainer.py), K for a pack (train/pack.py).

Each run (a `Member`) keeps its own metrics log, early-stopping streak, step count and end; the device rings
(device_rows.py) hold a row of every member per call, member k's columns at [k * cols, (k + 1) * cols), so one
fetch copies every member's rows. `Runs` is what both trainers share: the fetch that hands each member its rows
and evals, and which marks a member whose train rows stop being finite as diverged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from tinygrad import Tensor

from grok_sweep.store.layout import DIVERGED
from grok_sweep.train.device_rows import Ring
from grok_sweep.train.early_stop import EarlyStop
from grok_sweep.train.inputs import combine
from grok_sweep.train.metrics_log import MetricsLog


@dataclass
class Member:
    log: MetricsLog
    early_stop: EarlyStop
    steps: int  # its run's steps: rows [0, steps) unless it ends before
    first: int = 0  # the step it starts at (a resumed run's); it takes no update before
    end: Optional[int] = None  # once ended: its rows are [0, end), its weights those after `end` updates
    status: Optional[str] = None  # store.layout's COMPLETED, STOPPED_EARLY, DIVERGED or INTERRUPTED once ended
    reported: bool = False  # its end handed to its plan's `ended` (loop.py)
    chunk_n: list[int] = field(default_factory=list)  # its real test examples per eval chunk (empty: the chunks' n)

    def running(self, step: int) -> bool:
        """Whether step `step`'s update is its own."""
        return self.end is None and self.first <= step

    def finish(self, end: int, status: str) -> None:
        if self.end is None:
            self.end, self.status = end, status


Eval = tuple[int, int, np.ndarray]  # (member, step, the eval's values)


class Runs:
    """Fetching for a trainer with `members`, `train_rows`, `eval_rows`, `pending` and `test` (its eval chunks)."""

    members: list[Member]
    train_rows: Ring
    eval_rows: Ring
    pending: list[tuple[int, int, list[int]]]  # (step, its first eval call, the members it is an eval of)
    test: list
    eval_jit: Any  # the jitted eval of one test chunk
    eval_calls: int  # eval calls so far: the number of the next one's row

    def run_eval(self) -> int:
        """Evaluate every test chunk into the device buffer; the number of its first call."""
        first = self.eval_calls
        for c in self.test:
            self.eval_jit(c.x, c.y, c.w)
        self.eval_calls += len(self.test)
        return first

    def _eval_values(self, rows: np.ndarray, first: int, k: int) -> np.ndarray:
        """Member k's eval of the calls first, first + 1, ... (one per test chunk), its chunks combined."""
        calls = Ring.take(rows, first, len(self.test)).reshape(len(self.test), len(self.members), -1)
        sizes = self.members[k].chunk_n or [c.n for c in self.test]
        # a pack's member with a smaller test set than another's may have chunks of padding only (their means 0/0)
        return combine([v for v, n in zip(calls[:, k], sizes, strict=True) if n], [n for n in sizes if n])

    def _add_train_rows(self, hist: Optional[np.ndarray], k: int, upto: int) -> bool:
        """Member k's train rows up to `upto` (its end at most) into its log; False if one is not finite."""
        m = self.members[k]
        upto = upto if m.end is None else min(upto, m.end)
        if upto <= m.log.filled:
            return True
        rows = Ring.take(hist, m.log.filled, upto - m.log.filled)
        rows = rows.reshape(len(rows), len(self.members), -1)[:, k]
        m.log.add_train(rows)
        return bool(np.isfinite(rows).all())

    def fetch(self, upto: int) -> list[Eval]:
        """Copy every member's train rows of steps [its log.filled, upto) and the queued evals from the device into
        the logs; the evals. A member with a non-finite train row ends here, DIVERGED."""
        need = any(upto > m.log.filled and (m.end is None or m.end > m.log.filled) for m in self.members)
        hist = self.train_rows.buf.numpy() if need else None
        rows = self.eval_rows.buf.numpy() if self.pending else None
        finite, evals = [True] * len(self.members), []
        for step, first, who in self.pending:  # in step order, as if each had been fetched at its step
            for k in who:
                finite[k] &= self._add_train_rows(hist, k, step)
                evals.append((k, step, self._eval_values(rows, first, k)))
                self.members[k].log.add_eval(step, evals[-1][2])
        self.pending = []
        for k, m in enumerate(self.members):
            if not (self._add_train_rows(hist, k, upto) & finite[k]):  # even a run that had ended: it diverged
                m.end, m.status = upto if m.end is None else min(m.end, upto), DIVERGED
        return evals

    def fetch_train_rows(self, upto: int) -> bool:
        """Copy the train metrics of steps [log.filled, upto) from the device; False if any member's is not
        finite."""
        hist = self.train_rows.buf.numpy()
        return all([self._add_train_rows(hist, k, upto) for k in range(len(self.members))])

    def ended(self) -> bool:
        return all(m.end is not None for m in self.members)


def write_ring(ring: Ring, rows: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Inside a jitted step: one row per member, (K, cols) as one ring row."""
    return ring.write(Tensor.stack(*rows, dim=-1).flatten())
