"""Early stopping: a run ends once test accuracy has held >= a threshold at every eval for `hold` steps.

Judged on the host, eval by eval in step order, as the trainer fetches them (Trainer._sync fetches
early enough that a run still ends at the eval step the rule names). The rule reads
the same as detect.sustained_grokking_step on the run so far: the run stops at the first eval step
s with s - (sustained grokking step so far) >= hold, so a stopped run's phase and grokking steps
are those of its metrics.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


class EarlyStop:
    def __init__(self, hold: int, acc: float):
        self.hold, self.acc = hold, acc  # hold 0: never stop
        self.since: Optional[int] = None  # first eval step of the current run of evals >= acc

    def update(self, step: int, test_acc: float) -> bool:
        """Take the test accuracy of eval step `step`; True if the run should end here."""
        if not test_acc >= self.acc:  # NaN counts as below
            self.since = None
            return False
        if self.since is None:
            self.since = step
        return self.hold > 0 and step - self.since >= self.hold

    def restore(self, test_acc: np.ndarray) -> None:
        """Replay the eval rows of a resumed run: `test_acc` per step, NaN off eval steps."""
        self.since = None
        for step in np.flatnonzero(~np.isnan(test_acc)):
            self.update(int(step), float(test_acc[step]))
