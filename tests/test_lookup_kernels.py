import numpy as np
import pytest
from tinygrad import Tensor

from grok_sweep.fast.cpu import lookup as L
from grok_sweep.fast.lookups import make_groups


def _case(b: int, vocab: int, heads: int, width: int, capacity: int | None = None):
    rng = np.random.default_rng(2)
    idx = rng.integers(0, vocab - 1, (b, 1))  # token vocab-1 unused: a group with no example
    members = make_groups(idx, vocab, capacity)[0][0]
    g = rng.standard_normal((b, width), dtype=np.float32)
    g[rng.random(g.shape) < 0.1] = -0.0
    table = rng.standard_normal((vocab, heads, width), dtype=np.float32)
    weights = rng.standard_normal((b, heads), dtype=np.float32)
    return g, table, weights, members


def _both(g, table, weights, members) -> tuple[np.ndarray, np.ndarray]:
    return (
        L.slot_dots(Tensor(g), Tensor(table), Tensor(members)).numpy(),
        L.table_grad(Tensor(g), Tensor(weights), Tensor(members)).numpy(),
    )


def _fma_sums(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over the last axis of a * b, in order from 0, one float32 FMA per product (a product of floats is
    exact in float64)."""
    acc = np.zeros(np.broadcast_shapes(a.shape, b.shape)[:-1], dtype=np.float32)
    for k in range(a.shape[-1]):
        acc = (a[..., k].astype(np.float64) * b[..., k] + acc).astype(np.float32)
    return acc


def test_c_kernels_give_tinygrads_bits_where_it_sums_in_a_loop(monkeypatch):
    # groups of ~50 and rows of 48: tinygrad's kernels loop over both sums, as on nanda2023's shapes (whose
    # whole step tests/test_model.py checks); shorter sums it unrolls, and clang contracts them otherwise
    case = _case(400, 9, 3, 48)
    outs = []
    for c in (True, False):
        monkeypatch.setattr(L, "_usable", lambda g, w, c=c: c)
        outs.append(_both(*case))
    for fast, plain in zip(*outs, strict=True):
        np.testing.assert_array_equal(fast.view(np.uint32), plain.view(np.uint32))


@pytest.mark.parametrize(("width", "capacity"), [(16, None), (24, None), (8, 21)])
def test_c_kernels_sum_in_order_with_one_fma_per_product(width, capacity):
    g, table, weights, members = _case(60, 9, 3, width, capacity)
    assert L._usable(Tensor(g), width)
    dots, dtab = _both(g, table, weights, members)
    valid = members < len(g)
    rows = np.where(valid[..., None], g[np.minimum(members, len(g) - 1)], 0)  # (V, C, W), unused slots 0
    expect = _fma_sums(rows[:, :, None, :], table[:, None, :, :])  # (V, C, H)
    np.testing.assert_array_equal(dots.view(np.uint32), np.where(valid[..., None], expect, 0).view(np.uint32))
    w_rows = np.where(valid[..., None], weights[np.minimum(members, len(g) - 1)], 0)  # (V, C, H)
    expect = _fma_sums(w_rows.transpose(0, 2, 1)[..., None, :], rows.transpose(0, 2, 1)[:, None])  # (V, H, W)
    np.testing.assert_array_equal(dtab.view(np.uint32), expect.view(np.uint32))
    assert (dtab[-1] == 0).all()  # the empty group


def test_widths_without_a_vector_use_tinygrad():
    assert L._usable(Tensor.zeros(4, 16), 16) and not L._usable(Tensor.zeros(4, 12), 12)


def test_group_sum_adds_each_tokens_rows_in_order_as_the_one_hot_product():
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 12, (300, 1))  # token 12 unused
    members = make_groups(idx, 13)[0][0]
    d = rng.standard_normal((300, 4), dtype=np.float32)
    got = L.group_sum(Tensor(d), Tensor(members)).numpy()
    onehot = Tensor(np.eye(13, dtype=np.float32)[idx[:, 0]])
    plain = (onehot.T @ Tensor(d)).numpy()
    np.testing.assert_array_equal(got.view(np.uint32), plain.view(np.uint32))
    expect = np.zeros((13, 4), dtype=np.float32)
    for b in range(300):  # float32 sums in ascending order
        expect[idx[b, 0]] += d[b]
    np.testing.assert_array_equal(got.view(np.uint32), expect.view(np.uint32))
