"""The tasks: a binary operation mod p over the pairs (a, b) it defines, and their train/test split.

Every pair is the input `a b =` ("=" is token p, so the vocabulary is p + 1 tokens; `encode`) and its
label is the operation's value mod p (`labels`). The operations are those of Power et al. 2022 that take two
numbers mod p. Those that divide by b leave out the pairs with b = 0, and need a prime modulus so
that every other b has an inverse.

The split is one seeded permutation of the operation's pairs (in a-major order): the first
floor(train_ratio * pairs) go to train, all the others to test, so the two are disjoint and
together cover every pair the operation defines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

Label = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def _inverse(b: np.ndarray, p: int) -> np.ndarray:
    """b^-1 mod p for b in 1..p-1, p prime (Fermat: b^(p-2))."""
    table = np.array([0] + [pow(v, p - 2, p) for v in range(1, p)], dtype=np.int64)
    return table[b]


def _div(a: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    return a * _inverse(b, p)


@dataclass(frozen=True)
class Operation:
    formula: str  # as the docs write it
    label: Label  # (a, b, p) -> the value, reduced mod p by `labels`
    b_nonzero: bool = False  # divides by b: pairs with b = 0 are left out, and p must be prime
    # +1 or -1 where the learned circuit is cos/sin(w (a +- b)), whose progress measures are defined
    # (model/measures.py); None for the other operations
    fourier_sign: Optional[int] = None


# int64 products of numbers below p: a^3 stays exact for p < 2 million
OPERATIONS: dict[str, Operation] = {
    "add": Operation("a + b", lambda a, b, p: a + b, fourier_sign=1),
    "sub": Operation("a - b", lambda a, b, p: a - b, fourier_sign=-1),
    "mul": Operation("a * b", lambda a, b, p: a * b),
    "div": Operation("a * b^-1 (b != 0)", _div, b_nonzero=True),
    "sq_sum": Operation("a^2 + b^2", lambda a, b, p: a * a + b * b),
    "quad": Operation("a^2 + ab + b^2", lambda a, b, p: a * a + a * b + b * b),
    "quad_plus": Operation("a^2 + ab + b^2 + a", lambda a, b, p: a * a + a * b + b * b + a),
    "cube_mix": Operation("a^3 + ab", lambda a, b, p: a * a % p * a + a * b),
    "cube_mix2": Operation("a^3 + ab^2 + b", lambda a, b, p: a * a % p * a + a * b % p * b + b),
    "div_or_sub": Operation(
        "a * b^-1 if b is odd, else a - b (b != 0)",
        lambda a, b, p: np.where(b % 2 == 1, _div(a, b, p), a - b),
        b_nonzero=True,
    ),
}


MEASURED = tuple(name for name, op in OPERATIONS.items() if op.fourier_sign is not None)


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, math.isqrt(n) + 1))


def operation_problem(operation: str, modulus: int) -> Optional[str]:
    """Why `operation` cannot be trained mod `modulus`, or None if it can."""
    if operation not in OPERATIONS:
        return f"one of {', '.join(OPERATIONS)}"
    if OPERATIONS[operation].b_nonzero and not is_prime(modulus):
        return f"{operation} divides by b, so it needs a prime modulus (with modulus={modulus}, not prime)"
    return None


def n_pairs(modulus: int, operation: str = "add") -> int:
    """How many pairs (a, b) the operation defines mod `modulus`."""
    return modulus * (modulus - 1 if OPERATIONS[operation].b_nonzero else modulus)


def split_sizes(modulus: int, train_ratio: float, operation: str = "add") -> tuple[int, int]:
    """Train and test sizes: floor(train_ratio * pairs) pairs train, the rest test."""
    total = n_pairs(modulus, operation)
    # the epsilon keeps 0.29 * 100 = 28.999999999999996 from flooring to 28
    n_train = math.floor(train_ratio * total + 1e-9)
    return n_train, total - n_train


def encode(a: np.ndarray, b: np.ndarray, modulus: int) -> np.ndarray:
    """The model's input for pairs (a, b): tokens `a b =` (n, 3) int32, "=" being token `modulus`."""
    a = np.asarray(a)
    return np.stack([a, np.asarray(b), np.full_like(a, modulus)], axis=1).astype(np.int32)


def labels(a: np.ndarray, b: np.ndarray, modulus: int, operation: str = "add") -> np.ndarray:
    """(a op b) mod p (n,) int32, for pairs the operation defines."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return (OPERATIONS[operation].label(a, b, modulus) % modulus).astype(np.int32)


def every_pair(modulus: int) -> tuple[np.ndarray, np.ndarray]:
    """All p^2 pairs (a, b) in a-major order (row a * p + b), as int64 arrays a and b."""
    return np.divmod(np.arange(modulus * modulus, dtype=np.int64), modulus)


def all_pairs(modulus: int, operation: str = "add") -> tuple[np.ndarray, np.ndarray]:
    """The operation's inputs `a b =` (n, 3) in a-major order and their labels (n,), int32."""
    a, b = every_pair(modulus)
    if OPERATIONS[operation].b_nonzero:
        a, b = a[b != 0], b[b != 0]
    return encode(a, b, modulus), labels(a, b, modulus, operation)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray  # (n_train, 3) int32 tokens a, b, "="
    y_train: np.ndarray  # (n_train,) int32 labels
    x_test: np.ndarray
    y_test: np.ndarray


def make_split(modulus: int, train_ratio: float, rng: np.random.Generator, operation: str = "add") -> Split:
    """Split the operation's pairs by a permutation drawn from `rng` (sizes from `split_sizes`)."""
    x, y = all_pairs(modulus, operation)
    n_train, _ = split_sizes(modulus, train_ratio, operation)
    perm = rng.permutation(len(x))
    tr, te = perm[:n_train], perm[n_train:]
    return Split(x[tr], y[tr], x[te], y[te])


def seed_streams(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence, np.random.SeedSequence]:
    """A job's three independent random streams: its split, its initial weights, its mini-batches."""
    split, init, batches = np.random.SeedSequence(seed).spawn(3)
    return split, init, batches


def job_split(cfg) -> Split:  # noqa: ANN001 - a job's config (DictConfig or the schema's Config)
    """The train and test pairs of a job of `cfg` (its seed's split stream)."""
    rng = np.random.default_rng(seed_streams(cfg.seed)[0])
    return make_split(cfg.modulus, cfg.train_ratio, rng, cfg.operation)
