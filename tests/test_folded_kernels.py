import numpy as np
import pytest
from tinygrad import Tensor

from grok_sweep.fast import fold as FS
from grok_sweep.fast.cpu import folded as FK
from grok_sweep.fast.lookups import make_groups


def _case(b: int, vocab: int, heads: int, width: int):
    rng = np.random.default_rng(3)
    return (
        rng.standard_normal((2, vocab, heads, width), dtype=np.float32),  # tables
        rng.random((b, 3, heads), dtype=np.float32),  # attention weights
        rng.integers(0, vocab, (b, 2)).astype(np.int32),  # tokens
        rng.standard_normal((heads, width), dtype=np.float32),  # the "=" key's rows
        rng.standard_normal((1, width), dtype=np.float32),  # fixed
    )


def _run(case, groups: bool) -> list[np.ndarray]:
    """pre, one position's head rows, and the gradients of a loss of both for tables and weights."""
    tables, weights, idx, last, fixed = (Tensor(a) for a in case)
    g = tuple(Tensor(a) for a in make_groups(case[2], tables.shape[1])) if groups else None
    pos1 = None if g is None else (g[0][1:2], g[1][:, 1:2])
    pre = FS.mixed_pre(tables, weights, idx, g, last, fixed)
    rows = FS.head_rows(tables[1:], weights[:, 1:2], idx[:, 1:2], pos1)
    grads = ((pre * pre).sum() + (rows * rows.exp()).sum()).gradient(tables, weights)
    # gradients taken before the kernels' outputs are realized, as with any custom kernel (fast/matmuls.py)
    Tensor.realize(pre, rows, *grads)
    return [t.numpy() for t in (pre, rows, *grads)]


@pytest.mark.parametrize("groups", [False, True])
def test_c_kernels_give_tinygrads_bits_with_four_heads(monkeypatch, groups):
    # four heads, as nanda2023's (whose whole step tests/test_model.py checks): tinygrad sums them in a loop
    case = _case(64, 13, 4, 48)
    outs = []
    for c in (True, False):
        monkeypatch.setattr(FK, "usable", lambda t, width, c=c: c)
        outs.append(_run(case, groups))
    # without groups (evals, which take no gradient) tinygrad fuses the gradients' batch sums otherwise around
    # the kernels: the same values up to rounding
    exact = outs[0] if groups else outs[0][:2]
    for fast, plain in zip(exact, outs[1], strict=False):
        np.testing.assert_array_equal(fast.view(np.uint32), plain.view(np.uint32))
    for fast, plain in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)


def _fma(a, b, c):
    """float32 fma: a product of floats is exact in float64."""
    return (np.float64(1) * a * b + c).astype(np.float32)


@pytest.mark.parametrize(("heads", "width"), [(1, 24), (2, 8), (3, 16), (4, 32)])
def test_c_kernels_sum_heads_in_order_with_one_fma_each(heads, width):
    tables, weights, idx, last, fixed = case = _case(40, 9, heads, width)
    assert FK.usable(Tensor(tables), width)
    pre, rows = _run(case, groups=False)[:2]
    s = []
    for p in (0, 1):
        acc = np.zeros((40, width), dtype=np.float32)
        for h in range(heads):
            acc = _fma(weights[:, p, h, None], tables[p, idx[:, p], h], acc)
        s.append(acc)
    out = s[0] + s[1]
    for h in range(heads):
        out = _fma(weights[:, 2, h, None], last[h], out)
    np.testing.assert_array_equal(pre.view(np.uint32), (out + fixed).view(np.uint32))
    # head rows: folded_sums.fma_chain (h1's product fused onto h0's rounded one, then one FMA each)
    t, w = tables[1, idx[:, 1]], weights[:, 1]
    chain = (w[:, 0, None] * t[:, 0]).astype(np.float32)
    for h in range(1, heads):
        chain = _fma(w[:, h, None], t[:, h], chain)
    np.testing.assert_array_equal(rows.view(np.uint32), chain.view(np.uint32))
