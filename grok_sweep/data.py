"""Modular addition data: every pair (a, b) in [0, p)^2 as tokens `a b =`, label (a + b) mod p.

The split is one seeded permutation of the p^2 pairs: the first floor(train_ratio * p^2) go
to train, all the others to test, so the two are disjoint and together cover every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grok_sweep.config import split_sizes


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray  # (n_train, 3) int32 tokens a, b, "="
    y_train: np.ndarray  # (n_train,) int32 labels
    x_test: np.ndarray
    y_test: np.ndarray


def all_pairs(modulus: int) -> tuple[np.ndarray, np.ndarray]:
    """All p^2 inputs `a b =` ("=" is token p, so the vocabulary is p + 1) and their labels."""
    a, b = np.divmod(np.arange(modulus * modulus), modulus)
    x = np.stack([a, b, np.full_like(a, modulus)], axis=1).astype(np.int32)
    y = ((a + b) % modulus).astype(np.int32)
    return x, y


def make_split(modulus: int, train_ratio: float, rng: np.random.Generator) -> Split:
    """Split all pairs by a permutation drawn from `rng` (sizes from `split_sizes`)."""
    x, y = all_pairs(modulus)
    n_train, _ = split_sizes(modulus, train_ratio)
    perm = rng.permutation(len(x))
    tr, te = perm[:n_train], perm[n_train:]
    return Split(x[tr], y[tr], x[te], y[te])
