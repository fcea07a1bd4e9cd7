"""Detection on synthetic curves whose answers are known by construction."""

import numpy as np
import pandas as pd
import pytest

from grok_sweep.detect import (
    Rule,
    Streak,
    detect,
    grokking_delay,
    grokking_step,
    held_since,
    memorization_step,
    phase,
    sustained_grokking_step,
)


def curves(train, test, steps=3000, eval_every=10):
    """A metrics frame: train(step) every step, test(step) on eval steps and the last step."""
    step = np.arange(steps)
    is_eval = (step % eval_every == 0) | (step == steps - 1)
    test_acc = np.where(is_eval, [test(s) for s in step], np.nan)
    return pd.DataFrame({"step": step, "train_acc": [train(s) for s in step], "test_acc": test_acc})


def ramp(at, low=0.0):
    """Accuracy `low` before step `at`, 1.0 from it on."""
    return lambda s: 1.0 if s >= at else low


def test_clean_grokking():
    df = curves(ramp(100), ramp(2000, low=0.3))
    assert memorization_step(df) == 100
    assert grokking_step(df) == 2000 and sustained_grokking_step(df) == 2000
    got = detect(df)
    assert got["grokking_delay"] == 1900 and got["phase"] == "grokking"
    assert got["final_test_acc"] == 1.0 and got["best_test_acc"] == 1.0


def test_immediate_generalization_is_comprehension():
    df = curves(ramp(100), ramp(150))
    got = detect(df)
    assert (got["memorization_step"], got["sustained_grokking_step"]) == (100, 150)
    assert got["phase"] == "comprehension"


def test_never_generalizes_is_memorization():
    df = curves(ramp(100), lambda s: 0.5)
    got = detect(df)
    assert got["memorization_step"] == 100 and got["grokking_step"] is None
    assert got["sustained_grokking_step"] is None and got["grokking_delay"] is None
    assert got["phase"] == "memorization" and got["best_test_acc"] == 0.5


def test_never_memorizes_is_confusion():
    got = detect(curves(lambda s: 0.6, lambda s: 0.1))
    assert got["memorization_step"] is None and got["phase"] == "confusion"


def test_generalizes_then_collapses_has_a_first_but_no_sustained_step():
    df = curves(ramp(100), lambda s: 1.0 if 1000 <= s < 1500 else 0.3)
    assert grokking_step(df) == 1000
    assert sustained_grokking_step(df) is None
    assert detect(df)["phase"] == "memorization"


def test_one_step_spike_is_first_but_not_sustained():
    df = curves(ramp(100), lambda s: 1.0 if s == 500 or s >= 2200 else 0.4)
    assert grokking_step(df) == 500
    assert sustained_grokking_step(df) == 2200
    assert detect(df)["phase"] == "grokking"


def test_eval_steps_sparser_than_train_steps():
    # train fits at step 130, but the first eval at or after it is 200
    df = curves(ramp(130), ramp(1234, low=0.2), eval_every=100)
    assert memorization_step(df) == 200
    assert grokking_step(df) == 1300 and sustained_grokking_step(df) == 1300


def test_threshold_is_an_argument():
    df = curves(lambda s: 0.95 if s >= 100 else 0.1, lambda s: 0.92 if s >= 2000 else 0.1)
    assert memorization_step(df) is None
    assert memorization_step(df, threshold=0.9) == 100
    assert detect(df, Rule(threshold=0.9))["phase"] == "grokking"


@pytest.mark.parametrize(
    "mem,sus,rule,want",
    [
        (100, 499, Rule(), "comprehension"),  # under 5x
        (100, 500, Rule(), "grokking"),  # exactly 5x and 400 steps
        (10, 60, Rule(), "comprehension"),  # 6x but only 50 steps
        (10, 60, Rule(min_delay=10), "grokking"),
        (100, 1099, Rule(delay_ratio=1, min_delay=1000), "comprehension"),  # Liu et al.'s absolute lag
        (100, 1100, Rule(delay_ratio=1, min_delay=1000), "grokking"),
        (300, 200, Rule(), "comprehension"),  # test fit before train
    ],
)
def test_delay_rule(mem, sus, rule, want):
    assert phase(mem, sus, rule) == want


def test_delay_needs_both_steps():
    assert grokking_delay(None, 5) is None and grokking_delay(5, None) is None
    assert grokking_delay(100, 2000) == 1900


def test_the_streak_eval_by_eval_agrees_with_the_whole_run():
    # early stopping and the live view read the rule eval by eval (Streak), the summary over the whole run
    # (held_since): on random runs, with NaN evals and accuracies at the threshold, they name the same step
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 30))
        accs = rng.choice([0.5, 0.98, 0.99, 1.0, np.nan], size=n, p=[0.2, 0.1, 0.2, 0.4, 0.1])
        steps = np.sort(rng.choice(1000, size=n, replace=False))
        streak = Streak(0.99)
        for s, a in zip(steps, accs, strict=True):
            streak.update(int(s), float(a))
        assert held_since(steps, accs, 0.99) == streak.since, (steps, accs)
    assert held_since(np.array([0, 10, 20]), np.array([1.0, 0.99, 0.99]), 0.99) == 0
    assert held_since(np.array([0, 10, 20]), np.array([1.0, np.nan, 1.0]), 0.99) == 20
