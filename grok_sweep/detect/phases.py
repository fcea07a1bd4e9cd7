"""Grokking detection and phase labels: pure functions of one job's metrics DataFrame.

They read the eval rows (those with a test accuracy), so train and test are judged at the same
steps. The phase names follow Liu et al. 2022, "Towards Understanding Grokking":

- comprehension: train and test both fit, test soon after train;
- grokking: both fit, test long after train;
- memorization: train fits, test never fits for good by the end of the run;
- confusion: train never fits.

"Long after" is relative by default: the sustained grokking step is at least `delay_ratio` times the
memorization step and at least `min_delay` steps after it. Liu et al. used an absolute 10^3-step lag
at 90% accuracy, which suits one learning rate and horizon; a ratio reads the same at any speed (a
5x lag is a visible gap on a log-step plot), and the floor keeps a 10 -> 60 step lag from counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from grok_sweep.detect.streak import held_since, holds

PHASES = ("comprehension", "grokking", "memorization", "confusion")


@dataclass(frozen=True)
class Rule:
    threshold: float = 0.99  # accuracy that counts as "fits", train and test alike
    delay_ratio: float = 5.0  # grokking: sustained step >= delay_ratio * memorization step ...
    min_delay: int = 100  # ... and at least this many steps after it


DEFAULT_RULE = Rule()


def _evals(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The eval rows (those with a test accuracy), in step order: steps, train and test accuracy."""
    test = df["test_acc"].to_numpy(dtype=float, na_value=np.nan)
    at = np.flatnonzero(~np.isnan(test))
    steps = df["step"].to_numpy()[at]
    order = at[np.argsort(steps, kind="stable")]
    train = df["train_acc"].to_numpy(dtype=float, na_value=np.nan)[order]
    return df["step"].to_numpy()[order], train, test[order]


def _first_step(steps: np.ndarray, acc: np.ndarray, threshold: float) -> Optional[int]:
    hits = np.flatnonzero(holds(acc, threshold))
    return int(steps[hits[0]]) if len(hits) else None


def memorization_step(df: pd.DataFrame, threshold: float = 0.99) -> Optional[int]:
    """First eval step with train accuracy >= threshold, or None."""
    steps, train, _ = _evals(df)
    return _first_step(steps, train, threshold)


def grokking_step(df: pd.DataFrame, threshold: float = 0.99) -> Optional[int]:
    """First eval step with test accuracy >= threshold, or None."""
    steps, _, test = _evals(df)
    return _first_step(steps, test, threshold)


def sustained_grokking_step(df: pd.DataFrame, threshold: float = 0.99) -> Optional[int]:
    """First eval step from which test accuracy stays >= threshold to the end of the run, or None."""
    steps, _, test = _evals(df)
    return held_since(steps, test, threshold)


def grokking_delay(memorization: Optional[int], sustained: Optional[int]) -> Optional[int]:
    """Sustained grokking step minus memorization step (None unless both happened)."""
    return None if memorization is None or sustained is None else sustained - memorization


def phase(memorization: Optional[int], sustained: Optional[int], rule: Rule = DEFAULT_RULE) -> str:
    """The phase label of a finished run from its memorization and sustained grokking steps."""
    if memorization is None:
        return "confusion"
    if sustained is None:
        return "memorization"
    late = sustained >= rule.delay_ratio * memorization and sustained - memorization >= rule.min_delay
    return "grokking" if late else "comprehension"


def detect(df: pd.DataFrame, rule: Rule = DEFAULT_RULE) -> dict[str, object]:
    """All detected steps and the phase of one run, as one summary row's fields."""
    steps, train, test = _evals(df)
    mem = _first_step(steps, train, rule.threshold)
    sus = held_since(steps, test, rule.threshold)
    return {
        "memorization_step": mem,
        "grokking_step": _first_step(steps, test, rule.threshold),
        "sustained_grokking_step": sus,
        "grokking_delay": grokking_delay(mem, sus),
        "phase": phase(mem, sus, rule),
        "final_test_acc": float(test[-1]) if len(test) else None,
        "best_test_acc": float(test.max()) if len(test) else None,
    }
