"""Grokfast filters against a plain numpy implementation of the formulas, and wired into training."""

import numpy as np
import pytest
from tinygrad import Tensor, TinyJit

from conftest import TINY, make_cfg
from grok_sweep.train.grokfast import EMA, MA, make_filter
from grok_sweep.train.trainer import Trainer

SHAPES = [(3, 4), (5,)]  # a matrix and a bias


def _grads(steps: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(steps)]


def _run(filt, grads):
    """The filter's outputs step by step, jitted as in the train step (state updated in place)."""

    @TinyJit
    def step(*gs: Tensor) -> list[Tensor]:
        out = filt(list(gs))
        Tensor.realize(*out, *filt.state().values())
        return out

    return [[t.numpy().copy() for t in step(*[Tensor(g).realize() for g in gs])] for gs in grads]


def _ema_reference(grads, alpha, lamb):
    mu, out = [g.astype(np.float64) for g in grads[0]], []  # mu starts as the first gradient
    for gs in grads:
        mu = [alpha * m + (1 - alpha) * g for m, g in zip(mu, gs, strict=True)]
        out.append([g + lamb * m for g, m in zip(gs, mu, strict=True)])
    return out


def _ma_reference(grads, window, lamb):
    out = []
    for t, gs in enumerate(grads):
        if t + 1 < window:  # warm-up: the window is not full yet
            out.append(gs)
            continue
        last = grads[t + 1 - window : t + 1]  # the current gradient included
        out.append([g + lamb * np.mean([step[i] for step in last], axis=0) for i, g in enumerate(gs)])
    return out


def _assert_close(got, want):
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want, strict=True)):
        for i, (a, b) in enumerate(zip(g, w, strict=True)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"step {t}, parameter {i}")


def _params():
    return [Tensor.zeros(*s).contiguous().realize() for s in SHAPES]


def test_ema_follows_the_formula_over_several_steps():
    grads = _grads(8)
    got = _run(EMA(_params(), alpha=0.9, lamb=2.0), grads)
    want = _ema_reference(grads, 0.9, 2.0)
    _assert_close(got, want)
    # the first step: mu is the first gradient, so the optimizer sees (1 + lamb) g
    np.testing.assert_allclose(got[0][0], 3.0 * grads[0][0], rtol=1e-6)


def test_ma_follows_the_formula_through_and_after_its_warm_up():
    window, grads = 3, _grads(9)  # steps 0-1 warm up, from step 2 the window is full and slides
    got = _run(MA(_params(), window=window, lamb=5.0), grads)
    want = _ma_reference(grads, window, 5.0)
    _assert_close(got, want)
    np.testing.assert_array_equal(got[0][0], grads[0][0])  # off during the warm-up
    assert not np.allclose(got[window - 1][0], grads[window - 1][0])  # on once the window is full


def test_make_filter_reads_the_config_group():
    params = _params()
    assert isinstance(make_filter(make_cfg("grokfast=ema", "grokfast.lamb=5").grokfast, params), EMA)
    ma = make_filter(make_cfg("grokfast=ma", "grokfast.window=7").grokfast, params)
    assert isinstance(ma, MA) and ma.window == 7 and ma.lamb == 5.0
    assert make_filter(make_cfg().grokfast, params).state() == {}


def _fit(*overrides: str) -> dict[str, np.ndarray]:
    trainer = Trainer(make_cfg(*TINY, "steps=30", *overrides))
    trainer.fit()
    return trainer.log.cols


@pytest.mark.parametrize("group", [["grokfast=ema"], ["grokfast=ma", "grokfast.window=4"]])
def test_lamb_zero_trains_exactly_like_no_filter_and_lamb_five_does_not(group):
    plain = _fit()
    for col, values in _fit(*group, "grokfast.lamb=0").items():
        np.testing.assert_array_equal(values, plain[col], err_msg=col)
    filtered = _fit(*group, "grokfast.lamb=5")
    assert not np.array_equal(filtered["train_loss"], plain["train_loss"])
