"""The "test accuracy holds" rule, in one place: an eval holds when its accuracy is >= the threshold
(NaN does not), and a streak is a run of evals that all hold.

Read two ways that agree by construction: `Streak`, eval by eval as a run trains (early stopping, the status
file's phase so far), and `held_since`, over a finished run's evals at once (detect.phases). The sustained
grokking step is the first step of the streak that reaches the end of the run.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def holds(acc: np.ndarray | float, threshold: float) -> np.ndarray | bool:
    """Whether an accuracy counts as held: >= threshold; NaN (not measured, or a diverged eval) does not."""
    return np.greater_equal(acc, threshold)


class Streak:
    """The current streak of held evals, fed in step order."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.since: Optional[int] = None  # first eval step of the current streak, None when the last eval failed

    def update(self, step: int, acc: float) -> Optional[int]:
        """Take eval step `step`'s accuracy; the first step of the streak it belongs to (None if it fails)."""
        if not holds(acc, self.threshold):
            self.since = None
        elif self.since is None:
            self.since = step
        return self.since


def held_since(steps: np.ndarray, accs: np.ndarray, threshold: float) -> Optional[int]:
    """The first step of the streak that the last eval ends, or None: what Streak.since is after every eval
    (steps in order)."""
    held = holds(np.asarray(accs, dtype=float), threshold)
    if len(held) == 0 or not held[-1]:
        return None
    failed = np.flatnonzero(~held)
    return int(steps[failed[-1] + 1 if len(failed) else 0])
