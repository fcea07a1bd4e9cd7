"""Detection: memorization and grokking steps and phase labels, pure functions of a run's metrics.

phases.py labels a finished run; streak.py holds the rule "test accuracy holds" that early stopping and the
live view apply eval by eval. Light (pandas and NumPy): the training job and the analysis side both use it.
"""

from grok_sweep.detect.phases import (
    DEFAULT_RULE,
    PHASES,
    Rule,
    detect,
    grokking_delay,
    grokking_step,
    memorization_step,
    phase,
    sustained_grokking_step,
)
from grok_sweep.detect.streak import Streak, held_since, holds

__all__ = ["DEFAULT_RULE", "PHASES", "Rule", "Streak", "detect", "grokking_delay", "grokking_step", "held_since",
           "holds", "memorization_step", "phase", "sustained_grokking_step"]  # fmt: skip
