"""A measure of the weights that every model family has, at every eval: store.layout's "ipr" (beside it, each
layer's weight norm, "layer_norms", is train/norm_constraint.global_norm of the family's layers(); Thilak et al.'s
slingshots show in the last layer's).

The inverse participation ratio (IPR) of the first layer in the Fourier basis over the input's p values (Doshi et
al., d-doshi/Grokking: `calculate_ipr(abs(np.fft.rfft(U[k])), r=2)` for each unit k of each input's block): per unit,
with c its weights' real DFT coefficients (frequencies 0..p // 2), sum |c|^4 / (sum |c|^2)^2, then the mean over the
units (and over a's and b's blocks for the MLPs). 1 when every unit is one pure frequency; about 4 / p for random
weights; it grows as the model's Fourier features form.
"""

from __future__ import annotations

import numpy as np
from tinygrad import Tensor


def dft_rows(p: int, device: str) -> Tensor:
    """(2 * (p // 2 + 1), p): the real DFT's cos rows, then its sin rows, so that rows @ w gives every coefficient's
    real and imaginary part (up to sign) of each column of w."""
    k, a = np.arange(p // 2 + 1)[:, None], np.arange(p)[None, :]
    angle = 2 * np.pi * k * a / p
    return Tensor(np.concatenate([np.cos(angle), np.sin(angle)]).astype(np.float32), device=device)


def ipr(blocks: list[Tensor], rows: Tensor) -> Tensor:
    """The mean over the units of every block (p, units) of sum |c|^4 / (sum |c|^2)^2, as a scalar."""
    n = rows.shape[0] // 2
    per_block = []
    for w in blocks:
        # each stage written out: a pack member's block is a view into the stacked weights, and its sums fused
        # with the other members' would be scheduled (and rounded) otherwise than its single run's
        parts = rows @ w.contiguous()  # (2n, units)
        power = (parts[:n].square() + parts[n:].square()).contiguous()  # |c_k|^2 per frequency and unit
        per_block.append((power.square().sum(axis=0) / power.sum(axis=0).square()).contiguous().mean())
    return Tensor.stack(*per_block).mean()
