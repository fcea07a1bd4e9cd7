import numpy as np
import pytest

from grok_sweep.config import split_sizes
from grok_sweep.data import all_pairs, make_split


@pytest.mark.parametrize("p", [2, 7, 13])
def test_all_pairs_cover_every_pair_once(p):
    x, y = all_pairs(p)
    assert x.shape == (p * p, 3) and y.shape == (p * p,)
    assert len({(a, b) for a, b, _ in x}) == p * p
    assert (x[:, 2] == p).all()  # "=" is token p
    assert y.min() >= 0 and y.max() < p
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) % p)


def _keys(x):
    return {(int(a), int(b)) for a, b, _ in x}


def test_split_is_disjoint_exact_and_complete():
    p, ratio = 11, 0.3
    s = make_split(p, ratio, np.random.default_rng(0))
    n_train, n_test = split_sizes(p, ratio)
    assert (n_train, n_test) == (36, 85)  # floor(0.3 * 121) = 36
    assert len(s.x_train) == n_train and len(s.x_test) == n_test
    assert not _keys(s.x_train) & _keys(s.x_test)
    assert len(_keys(s.x_train) | _keys(s.x_test)) == p * p
    np.testing.assert_array_equal(s.y_train, (s.x_train[:, 0] + s.x_train[:, 1]) % p)


def test_split_depends_on_seed_only():
    a = make_split(13, 0.5, np.random.default_rng(1))
    b = make_split(13, 0.5, np.random.default_rng(1))
    c = make_split(13, 0.5, np.random.default_rng(2))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert _keys(a.x_train) != _keys(c.x_train)


def test_split_sizes_do_not_lose_a_pair_to_float_rounding():
    assert split_sizes(10, 0.29) == (29, 71)  # 0.29 * 100 is 28.999999999999996 in floats
