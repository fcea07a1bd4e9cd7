"""Metrics rows that the jitted steps write on the device, and when the host reads them.

The train step writes one row per step (train loss and accuracy), the eval step one row per test
chunk (test loss and accuracy, weight norm, the measures), each into a ring buffer at its own
counter, so that neither step hands back anything the host must read at once. The host copies a
ring in one block at a sync (Trainer._sync): every SYNC_STEPS steps' worth of evals, at checkpoints,
when the train ring is full, at the end, and at every eval while early stopping may fire.
"""

from __future__ import annotations

import numpy as np
from tinygrad import Tensor, dtypes

# the train ring: SYNC_STEPS rows or one eval period, but no more than this
HIST_ROWS = 1000
# evals between syncs: as many as fall in this many steps, at most EVAL_ROWS (the eval ring holds
# EVAL_ROWS per test chunk whatever the config, so jobs that differ in train.early_stop share their
# compiled steps)
SYNC_STEPS = 100
EVAL_ROWS = 16


def evals_per_sync(eval_every: int, hold: int) -> int:
    """Evals between syncs: SYNC_STEPS steps' worth, at most EVAL_ROWS, and none more than fit in
    `hold` (train.early_stop) steps (see Trainer._sync); at least one."""
    n = min(EVAL_ROWS, SYNC_STEPS // eval_every)
    return max(1, min(n, hold // eval_every) if hold > 0 else n)


class Ring:
    """A (slots, cols) float buffer on the device that a jitted step writes one row of per call."""

    def __init__(self, slots: int, cols: int, device: str):
        self.buf = Tensor.zeros(slots, cols, device=device).contiguous()
        self.counter = Tensor.zeros(1, dtype=dtypes.int32, device=device).contiguous()

    def write(self, row: Tensor) -> tuple[Tensor, Tensor]:
        """Inside a jitted step: `row` into this call's slot; the tensors to realize with the step."""
        n = self.buf.shape[0]
        here = (Tensor.arange(n) == self.counter % n).reshape(n, 1)
        # contiguous: the row is computed once; else tinygrad fuses its reductions (the loss over the whole batch,
        # the measures) into the slots' select and computes them again for every slot and column
        self.buf.assign(here.where(row.reshape(1, -1).contiguous(), self.buf))
        self.counter.assign(self.counter + 1)
        return self.buf, self.counter

    @staticmethod
    def take(host: np.ndarray, first: int, n: int) -> np.ndarray:
        """The rows of calls first .. first + n - 1, from a host copy of the buffer."""
        return host[[c % len(host) for c in range(first, first + n)]]
