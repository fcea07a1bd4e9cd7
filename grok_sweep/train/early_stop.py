"""Early stopping: a run ends once test accuracy has held >= a threshold at every eval for `hold` steps.

Judged on the host, eval by eval in step order, as the trainer fetches them (the loop fetches early
enough that a run still ends at the eval step the rule names). The streak is detect.Streak, the rule
that detect.sustained_grokking_step reads on the run so far: the run stops at the first eval step s
with s - (sustained grokking step so far) >= hold, so a stopped run's phase and grokking steps are
those of its metrics.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from grok_sweep.detect.streak import Streak


class EarlyStop:
    def __init__(self, hold: int, acc: float):
        self.hold = hold  # 0: never stop
        self.streak = Streak(acc)

    @property
    def since(self) -> Optional[int]:
        """First eval step of the current streak of test accuracy held (kept in a checkpoint)."""
        return self.streak.since

    @since.setter
    def since(self, step: Optional[int]) -> None:
        self.streak.since = step

    def update(self, step: int, test_acc: float) -> bool:
        """Take the test accuracy of eval step `step`; True if the run should end here."""
        since = self.streak.update(step, test_acc)
        return self.hold > 0 and since is not None and step - since >= self.hold

    def restore(self, test_acc: np.ndarray) -> None:
        """Replay the eval rows of a resumed run: `test_acc` per step, NaN off eval steps."""
        self.since = None
        for step in np.flatnonzero(~np.isnan(test_acc)):
            self.update(int(step), float(test_acc[step]))
