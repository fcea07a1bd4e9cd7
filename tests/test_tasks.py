import numpy as np
import pytest

from grok_sweep.data.tasks import OPERATIONS, all_pairs, is_prime, make_split, n_pairs, operation_problem, split_sizes

P = 11  # a small prime: every operation is defined


def _inv(b, p):
    return next(c for c in range(1, p) if b * c % p == 1)


# each operation's formula written out once more, one pair at a time, in plain Python integers
FORMULAS = {
    "add": lambda a, b, p: a + b,
    "sub": lambda a, b, p: a - b,
    "mul": lambda a, b, p: a * b,
    "div": lambda a, b, p: a * _inv(b, p),
    "sq_sum": lambda a, b, p: a**2 + b**2,
    "quad": lambda a, b, p: a**2 + a * b + b**2,
    "quad_plus": lambda a, b, p: a**2 + a * b + b**2 + a,
    "cube_mix": lambda a, b, p: a**3 + a * b,
    "cube_mix2": lambda a, b, p: a**3 + a * b**2 + b,
    "div_or_sub": lambda a, b, p: a * _inv(b, p) if b % 2 == 1 else a - b,
}
DIVIDES = {"div", "div_or_sub"}


def test_every_operation_has_a_reference_formula():
    assert set(FORMULAS) == set(OPERATIONS)


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_labels_follow_the_formula_over_all_pairs(op):
    x, y = all_pairs(P, op)
    want = {(a, b) for a in range(P) for b in range(P) if b != 0 or op not in DIVIDES}
    assert {(int(a), int(b)) for a, b, _ in x} == want and len(x) == len(want) == n_pairs(P, op)
    assert (x[:, 2] == P).all()  # "=" is token p
    for (a, b, _), label in zip(x.tolist(), y.tolist(), strict=True):
        assert label == FORMULAS[op](a, b, P) % P, (op, a, b)


@pytest.mark.parametrize("op", sorted(OPERATIONS))
def test_split_is_disjoint_and_covers_exactly_the_operations_pairs(op):
    ratio = 0.3
    s = make_split(P, ratio, np.random.default_rng(0), op)
    n_train, n_test = split_sizes(P, ratio, op)
    assert (len(s.x_train), len(s.x_test)) == (n_train, n_test)
    assert n_train == int(ratio * n_pairs(P, op))  # floor(0.3 * 121) = 36, floor(0.3 * 110) = 33
    train, test = _keys(s.x_train), _keys(s.x_test)
    assert not train & test
    assert train | test == _keys(all_pairs(P, op)[0])
    x, y = all_pairs(P, op)
    label = {(int(a), int(b)): int(c) for (a, b, _), c in zip(x, y, strict=True)}
    assert [label[k] for k in map(tuple, s.x_train[:, :2].tolist())] == s.y_train.tolist()


@pytest.mark.parametrize("p", [2, 7, 13])
def test_add_covers_every_pair_once(p):
    x, y = all_pairs(p)
    assert x.shape == (p * p, 3) and y.shape == (p * p,)
    assert len({(a, b) for a, b, _ in x}) == p * p
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) % p)


def test_division_needs_a_prime_modulus():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]
    for op in DIVIDES:
        assert "prime" in operation_problem(op, 32) and operation_problem(op, 31) is None
    assert all(operation_problem(op, 32) is None for op in OPERATIONS if op not in DIVIDES)
    assert "one of add, sub" in operation_problem("pow", 31)


def _keys(x):
    return {(int(a), int(b)) for a, b, _ in x}


def test_split_depends_on_seed_only():
    a = make_split(13, 0.5, np.random.default_rng(1))
    b = make_split(13, 0.5, np.random.default_rng(1))
    c = make_split(13, 0.5, np.random.default_rng(2))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert _keys(a.x_train) != _keys(c.x_train)


def test_split_sizes_do_not_lose_a_pair_to_float_rounding():
    assert split_sizes(10, 0.29) == (29, 71)  # 0.29 * 100 is 28.999999999999996 in floats
