"""fast.fold.fma_chain rounds as an FMA accumulator (the folded model's values and gradients: test_model.py)."""

import numpy as np
import pytest
from tinygrad import Tensor

from conftest import has_fma
from grok_sweep.fast.fold import fma_chain


@pytest.mark.skipif(not has_fma(), reason="the CPU has no FMA: every add rounds its product first")
def test_fma_chain_rounds_as_an_accumulator_loop_of_fmas():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4, 4096)).astype(np.float32) for _ in range(2))
    got = fma_chain([Tensor(a[h]) * Tensor(b[h]) for h in range(4)]).numpy()
    acc = np.zeros(4096, np.float32)
    for h in range(4):  # fma(a, b, acc): the exact product (float64 holds it) plus acc, rounded once
        acc = (a[h].astype(np.float64) * b[h] + acc).astype(np.float32)
    plain = ((a[0] * b[0] + a[1] * b[1]) + a[2] * b[2]) + a[3] * b[3]  # each product rounded first
    assert np.array_equal(got, acc)
    assert not np.array_equal(got, plain)  # the test tells the orders apart
