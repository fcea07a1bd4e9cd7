"""The MLP of Prieto et al. 2025 ("Grokking at the Edge of Numerical Stability", their models.py), plainly.

Inputs: the one-hot vectors of a and of b concatenated (2p values). `layers` hidden layers of `width` units, each a
linear map (plus a bias with `bias`, off in their runs) and a ReLU, then a linear read-out to the p classes with no
activation. Their `MLP(2p, [200, 200], p, bias=False)` is layers=2, width=200.

Init: torch's default nn.Linear init, as theirs: weights (and biases) uniform in +-1/sqrt(fan in) (Kaiming-uniform
with a = sqrt(5)), layer by layer, the weight before the bias. The numbers come from NumPy, so a seed gives the same
model on every device (torch's own draws differ). A weight is stored (in, out) and applied as x @ w (torch's Linear
stores (out, in)).

The same class holds a pack's K members (model/family.py): every weight then has a leading member axis, and
`__call__` reads tokens (K, batch, 3).
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor, dtypes

from grok_sweep.fast import matmul


def one_hot_pair(x: Tensor, modulus: int) -> Tensor:
    """Tokens (..., 3) "a b =" -> (..., 2p): the one-hot of a, then the one-hot of b; written out, so that the first
    layer's weight gradient reads it rather than recomputing it inside its reduction (slower)."""
    return x[..., 0].one_hot(modulus).cat(x[..., 1].one_hot(modulus), dim=-1).cast(dtypes.float32).contiguous()


def mm(x: Tensor, w: Tensor, relu: bool = False) -> Tensor:
    """x @ w (x.relu() @ w with `relu`). One run's (batch, k) @ (k, n) goes through grok_sweep.fast's kernels, k and n
    padded with zeros to multiples of 8 for their vectors (p is often prime): the plain product's values up to float
    rounding (another summation order; tests/test_families.py), and Prieto et al.'s MLP's step ~4x faster on the
    CPU. A pack's stacked (K, batch, k) @ (K, k, n) plainly."""
    if x.ndim != 2 or w.ndim != 2:
        return (x.relu() if relu else x) @ w
    n, pad_k = w.shape[1], -w.shape[0] % 8
    out = matmul(x.pad(((0, 0), (0, pad_k))), w.pad(((0, pad_k), (0, -n % 8))), relu)
    return out[:, :n] if n % 8 else out


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, device: str) -> Tensor:
    bound = 1 / math.sqrt(fan_in)
    return Tensor(rng.uniform(-bound, bound, shape).astype(np.float32), device=device)


class MLP:
    def __init__(self, rng: np.random.Generator, modulus: int, width: int, layers: int, bias: bool, device: str):
        self.modulus = modulus
        sizes = [2 * modulus, *[width] * layers, modulus]
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        for fan_in, fan_out in zip(sizes, sizes[1:]):  # noqa: B905 - one shorter by design
            self.weights.append(_uniform(rng, (fan_in, fan_out), fan_in, device))
            if bias:
                self.biases.append(_uniform(rng, (fan_out,), fan_in, device))

    def __call__(self, x: Tensor) -> Tensor:
        """Tokens (batch, 3) -> logits (batch, p)."""
        h = one_hot_pair(x, self.modulus)
        for i, w in enumerate(self.weights):
            h = mm(h, w, relu=i > 0)  # the ReLU after each hidden layer, applied as the next layer reads it
            if self.biases:
                h = h + self.biases[i].unsqueeze(-2)  # (out,) as a row; a pack's (K, out) as (K, 1, out)
        return h

    def layers(self) -> list[list[Tensor]]:
        """Each linear map's parameters, input first: what the per-layer weight norms read."""
        return [[w, *self.biases[i : i + 1]] for i, w in enumerate(self.weights)]

    def input_blocks(self) -> list[Tensor]:
        """The first layer's weights of a's one-hot inputs and of b's, (p, width) each: what the IPR reads."""
        return [self.weights[0][..., : self.modulus, :], self.weights[0][..., self.modulus :, :]]
