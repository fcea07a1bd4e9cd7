"""The quadratic MLP of Gromov 2023 ("Grokking modular arithmetic") as Doshi et al. train it (d-doshi/Grokking,
utils/models.py `fcn`), plainly.

The one-hot vectors of a and of b concatenated (2p values) -> `width` units (N), no bias -> x**2 -> p outputs, no
bias; trained with the squared error to the one-hot label (loss=mse). Init as theirs: both weights normal with
std 0.5 / (2N)^(1/3), the first layer's drawn first (from NumPy: the same model on every device, not torch's
numbers). With `mean_field` (Gromov's parametrization): weights N(0, 1), the first layer's output times 1/sqrt(2p)
and the second's times 1/N. A weight is stored (in, out) and applied as x @ w.

The same class holds a pack's K members (model/family.py): each weight then has a leading member axis.
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor

from grok_sweep.model.mlp import mm, one_hot_pair


class Quadratic:
    def __init__(self, rng: np.random.Generator, modulus: int, width: int, mean_field: bool, device: str):
        self.modulus = modulus
        std = 1.0 if mean_field else 0.5 / (2 * width) ** (1 / 3)
        self.fc1 = Tensor((rng.standard_normal((2 * modulus, width)) * std).astype(np.float32), device=device)
        self.fc2 = Tensor((rng.standard_normal((width, modulus)) * std).astype(np.float32), device=device)
        self.scales = (1 / math.sqrt(2 * modulus), 1 / width) if mean_field else None

    def __call__(self, x: Tensor) -> Tensor:
        """Tokens (batch, 3) -> outputs (batch, p)."""
        h = mm(one_hot_pair(x, self.modulus), self.fc1)  # x @ w, faster (mlp.mm)
        if self.scales is not None:
            h = h * self.scales[0]
        out = mm(h * h, self.fc2)
        return out if self.scales is None else out * self.scales[1]

    def layers(self) -> list[list[Tensor]]:
        """Each layer's parameters, input first: what the per-layer weight norms read."""
        return [[self.fc1], [self.fc2]]

    def input_blocks(self) -> list[Tensor]:
        """The first layer's weights of a's one-hot inputs (their U) and of b's (their V), (p, N) each: what the IPR
        reads."""
        return [self.fc1[..., : self.modulus, :], self.fc1[..., self.modulus :, :]]
