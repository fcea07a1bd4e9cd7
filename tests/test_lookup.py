import numpy as np
import pytest
from tinygrad import Tensor

from grok_sweep.fast.lookups import make_groups, mix_rows, mix_rows_grouped


def test_groups_list_each_tokens_examples_then_the_zero_row():
    idx = np.random.default_rng(0).integers(0, 6, (40, 2))
    groups, slots = make_groups(idx, 7)
    assert groups.shape == (2, 7, max(np.bincount(idx[:, p]).max() for p in range(2))) and slots.shape == (40, 2)
    for p in range(2):
        for v in range(7):
            members = groups[p, v][groups[p, v] != 40]
            assert sorted(members.tolist()) == np.nonzero(idx[:, p] == v)[0].tolist()
        assert (groups[p].reshape(-1)[slots[:, p]] == np.arange(40)).all()  # each example's own slot
    wide, wide_slots = make_groups(idx, 7, capacity=40)
    assert wide.shape == (2, 7, 40) and (wide[1].reshape(-1)[wide_slots[:, 1]] == np.arange(40)).all()


@pytest.mark.parametrize("capacity", [None, 50])
def test_grouped_gradient_matches_the_plain_lookup(capacity):
    rng = np.random.default_rng(1)
    b, n_pos, vocab, heads, width = 50, 2, 8, 3, 5
    idx = rng.integers(0, vocab - 1, (b, n_pos)).astype(np.int32)  # token vocab-1 unused: an empty group
    tables = rng.standard_normal((n_pos, vocab, heads, width)).astype(np.float32)
    weights = rng.standard_normal((b, n_pos, heads)).astype(np.float32)
    target = Tensor(rng.standard_normal((b, width)).astype(np.float32))
    results = []
    for grouped in (True, False):
        t, w, i = Tensor(tables), Tensor(weights), Tensor(idx)
        groups = tuple(Tensor(a) for a in make_groups(idx, vocab, capacity))
        out = mix_rows_grouped(t, w, i, groups) if grouped else mix_rows(t, w, i)
        loss = ((out - target) ** 2).sum()
        results.append([out.numpy(), *(g.numpy() for g in loss.gradient(t, w))])
    for fast, plain in zip(*results, strict=True):
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)
    assert np.abs(results[0][1][:, vocab - 1]).max() == 0  # no example reads the unused token's rows
