"""A job's examples as fixed-shape device tensors: padded full batches and the test set in eval chunks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor

# Full batches are padded to a multiple of this with examples of weight 0, so that kernels can split
# the batch axis into vector-sized pieces (nanda2023's 3830 = 2 x 5 x 383 has no factor 4): its step
# went from 3.8 to 4.3 steps/s with BEAM=2. The mean loss and accuracy count real examples only.
PAD_TO = 32
# The test set is evaluated in chunks of at most this many examples, so that an eval's activations
# do not grow with p^2 (modulus=3000 has 5.4 million test pairs). Every p <= 127 has one chunk.
EVAL_CHUNK = 16384


def pad(x: np.ndarray, y: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad examples (repeating the first) to a multiple of `multiple`; weights 1 real, 0 padding."""
    n_pad = (-len(y)) % multiple
    if n_pad == 0:
        return x, y, None
    w = np.r_[np.ones(len(y)), np.zeros(n_pad)].astype(np.float32)
    return np.concatenate([x, np.repeat(x[:1], n_pad, 0)]), np.concatenate([y, np.repeat(y[:1], n_pad)]), w


@dataclass
class Chunk:
    x: Tensor
    y: Tensor
    w: Tensor | None  # None: no padding in it
    n: int  # real examples in it


def chunk_sizes(n: int, chunk: int = EVAL_CHUNK) -> list[int]:
    """Real examples per chunk of a test set of `n`: one chunk up to `chunk`, else equal chunks of `chunk`."""
    return [n] if n <= chunk else [min(chunk, n - i) for i in range(0, n, chunk)]


def eval_chunks(x: np.ndarray, y: np.ndarray, device: str, chunk: int = EVAL_CHUNK) -> list[Chunk]:
    """The test set as chunks of one shape (the last padded), so one jitted eval serves them all."""
    sizes, out, at = chunk_sizes(len(y), chunk), [], 0
    multiple = PAD_TO if len(sizes) == 1 else chunk
    for n in sizes:
        xs, ys, ws = pad(x[at : at + n], y[at : at + n], multiple)
        if len(sizes) > 1 and ws is None:
            ws = np.ones(len(ys), dtype=np.float32)  # every chunk carries weights: one shape of inputs
        out.append(Chunk(Tensor(xs, device=device), Tensor(ys, device=device),
                         None if ws is None else Tensor(ws, device=device), n))  # fmt: skip
        at += n
    return out


def combine(values: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One eval's values from its chunks': loss and accuracy weighted by real examples, the rest from the first."""
    if len(values) == 1:
        return values[0]
    w = np.asarray(sizes, dtype=np.float64) / sum(sizes)
    out = values[0].astype(np.float64).copy()
    out[:2] = sum(wi * v[:2].astype(np.float64) for wi, v in zip(w, values, strict=True))
    return out
