"""Nanda et al. 2023's progress measures for (a + b) and (a - b) mod p: pure tensor functions.

All of them read the model on every pair (a, b), a-major (row a * p + b), and work in the Fourier
basis F of Z_p (p x p, orthonormal rows: F[0] constant, F[2k-1] = cos(2 pi k x / p), F[2k] = sin),
so that every DFT is a matmul and the whole measurement runs inside the jitted eval step.

- Key frequencies (their transformers.py, recomputed at every eval): each MLP neuron's post-ReLU
  activation at the last position, centred over the inputs, is taken to the 2D Fourier basis
  (F A F^T over a and b); the neuron's frequency is the k in 1..(p-1)/2 whose terms (i, j) with
  i, j in {0, 2k-1, 2k} hold the largest share of its energy; the key frequencies are the set of
  those. Dead neurons (variance under DEAD times the liveliest neuron's) have none; in their code
  such a neuron's share is NaN and it adds frequency -1. (Their loop stops at k = p//2 - 1; this
  one includes the top frequency.)
- Restricted loss: the logits projected on the key frequencies' cos/sin(w (a +- b)) directions in
  R^{p^2}, plus the mean over inputs of what the projection removed (per class); cross entropy
  over all p^2 pairs.
- Excluded loss: the logits with those directions removed; cross entropy over the train pairs.
  (Their transformers.py logs one excluded loss per key frequency, that one removed alone; the
  paper's figure removes all of them at once, as here.)
- Fourier Gini: Gini coefficient (Hurley & Rickard) of the norms of the token embedding's p
  Fourier components, as the mean absolute difference form sum_ij |c_i - c_j| / (2 N sum_i c_i).
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor, dtypes

from grok_sweep.data.tasks import OPERATIONS, encode, every_pair, labels
from grok_sweep.model.forward import last_residual
from grok_sweep.model.gpt import GPT
from grok_sweep.model.loss import cross_entropy

DEAD = 1e-6  # a neuron whose variance is under this share of the liveliest one's has no frequency


def n_freqs(p: int) -> int:
    return (p - 1) // 2


def fourier_basis(p: int) -> np.ndarray:
    """F (p, p): row 0 constant, rows 2k-1 and 2k cos and sin of frequency k, each of unit norm."""
    x = np.arange(p)
    rows = [np.ones(p)]
    for k in range(1, n_freqs(p) + 1):
        rows += [np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)]
    if p % 2 == 0:  # the Nyquist term (-1)^x, for an even modulus: F stays a full orthonormal basis
        rows.append(np.cos(np.pi * x))
    basis = np.stack(rows)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def directions(p: int, operation: str) -> np.ndarray:
    """(p * p, 2 * n_freqs): unit vectors of cos(w_k (a +- b)) then sin(w_k (a +- b)) for every k (the sign
    is the operation's: data.tasks.Operation.fourier_sign)."""
    f = fourier_basis(p)
    cos, sin = [], []
    sign = OPERATIONS[operation].fourier_sign
    for k in range(1, n_freqs(p) + 1):
        c, s = f[2 * k - 1], f[2 * k]
        cos.append((np.outer(c, c) - sign * np.outer(s, s)).ravel() / math.sqrt(2))
        sin.append((np.outer(s, c) + sign * np.outer(c, s)).ravel() / math.sqrt(2))
    return np.stack(cos + sin, axis=1)


def freq_energy(energy: Tensor, k: int) -> Tensor:
    """(k, n): the energy (p, p, n) of each neuron's 2D Fourier terms (i, j), i, j in {0, 2f-1, 2f}, for f = 1..k."""
    n = energy.shape[-1]
    pairs = energy[1 : 2 * k + 1, 1 : 2 * k + 1].reshape(k, 2, k, 2, n).sum((1, 3))  # (f, f', n)
    diagonal = pairs.reshape(k * k, n)[:: k + 1]  # f = f'
    row, col = (e.reshape(k, 2, n).sum(1) for e in (energy[0, 1 : 2 * k + 1], energy[1 : 2 * k + 1, 0]))
    return diagonal + row + col


def key_freq_mask(neurons: Tensor, basis: Tensor) -> Tensor:
    """(n_freqs,) 1.0 for the key frequencies, from the neurons' activations (p * p, n)."""
    p, n = basis.shape[0], neurons.shape[1]
    centred = (neurons - neurons.mean(axis=0, keepdim=True)).reshape(p, p, n)  # (a, b, n)
    over_b = basis.reshape(1, p, p) @ centred  # (a, j, n): one matmul per a, no transposed copy
    energy = (basis @ over_b.reshape(p, p * n)).square().reshape(p, p, n)  # (i, j, n)
    share = freq_energy(energy, n_freqs(p))  # the total is the same for every k, so the argmax needs no division
    total = energy.sum((0, 1))
    alive = total > DEAD * total.max()
    best = share.argmax(axis=0).one_hot(n_freqs(p)).cast(dtypes.float32) * alive.reshape(n, 1)
    return (best.sum(axis=0) > 0).cast(dtypes.float32)


def key_logits(logits: Tensor, dirs: Tensor, mask: Tensor) -> Tensor:
    """The part of the logits (p * p, classes) along the directions of the frequencies in `mask`."""
    coef = dirs.T @ logits  # (2 * n_freqs, classes)
    return dirs @ (coef * mask.repeat(2).reshape(-1, 1))


def restricted_loss(logits: Tensor, labels: Tensor, kept: Tensor, dtype: str = "float64") -> Tensor:
    """Cross entropy over all pairs of the key part, plus the mean per class of the rest."""
    restricted = kept + (logits - kept).mean(axis=0, keepdim=True)
    return cross_entropy(restricted, labels, dtype)


def excluded_loss(logits: Tensor, labels: Tensor, kept: Tensor, train: Tensor, dtype: str = "float64") -> Tensor:
    """Cross entropy over the train pairs (weight 1 in `train`) with the key part removed."""
    return cross_entropy(logits - kept, labels, dtype, weight=train)


def gini(values: Tensor) -> Tensor:
    """Gini coefficient of non-negative values: 0 when all are equal, (N-1)/N when one holds all."""
    n = values.shape[0]
    diff = (values.reshape(n, 1) - values.reshape(1, n)).abs().sum()
    return diff / (2 * n * values.sum())


def forward(model: GPT, x: Tensor) -> tuple[Tensor, Tensor]:
    """The last block's post-ReLU MLP activations (batch, mlp) and the logits (batch, p) at the last position,
    from one forward (the model's function, the last block at the last position only)."""
    last = model.blocks[-1]
    resid = last_residual(model, x)
    acts = last.hidden(resid)
    return acts, (resid + acts @ last.w_out + last.b_out) @ model.unembed


class Measures:
    """The constants of one job's measurements on the device, and the measurement itself."""

    def __init__(self, p: int, operation: str, train_pairs: np.ndarray, device: str, loss_dtype: str = "float64"):
        a, b = every_pair(p)
        train = np.zeros(p * p, dtype=np.float32)
        train[train_pairs[:, 0] * p + train_pairs[:, 1]] = 1
        consts = (encode(a, b, p), labels(a, b, p, operation), train, fourier_basis(p), directions(p, operation))
        self.x, self.y, self.train, self.basis, self.dirs = (
            Tensor(np.asarray(c, dtype=c.dtype if c.dtype == np.int32 else np.float32), device=device).realize()
            for c in consts
        )
        self.p, self.loss_dtype = p, loss_dtype

    def __call__(self, model: GPT) -> Tensor:
        """(3 + n_freqs,): store.layout.MEASURE_COLS (restricted loss, excluded loss, Fourier Gini), then the
        key-frequency mask."""
        acts, logits = forward(model, self.x)
        mask = key_freq_mask(acts, self.basis)
        kept = key_logits(logits, self.dirs, mask)
        emb_norms = (self.basis @ model.tok_emb[: self.p]).square().sum(axis=1).sqrt()
        losses = [restricted_loss(logits, self.y, kept, self.loss_dtype),
                  excluded_loss(logits, self.y, kept, self.train, self.loss_dtype)]  # fmt: skip
        return Tensor.cat(*[v.cast(dtypes.float32).reshape(1) for v in (*losses, gini(emb_norms))], mask)
