"""A job's examples as fixed-shape device tensors: the test set in eval chunks, and one eval from its chunks'."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor

from grok_sweep.data.batches import EVAL_CHUNK, PAD_TO, chunk_sizes, pad
from grok_sweep.store.layout import TEST_ACC, TEST_LOSS


@dataclass
class Chunk:
    x: Tensor
    y: Tensor
    w: Tensor | None  # None: no padding in it
    n: int  # real examples in it


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


# the values of an eval row that are means over the test examples; the others are the same in every chunk
MEANS = [TEST_LOSS, TEST_ACC]


def combine(values: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One eval row from its chunks' (store.layout.eval_row): the means weighted by real examples, the rest from
    the first chunk."""
    if len(values) == 1:
        return values[0]
    w = np.asarray(sizes, dtype=np.float64) / sum(sizes)
    out = values[0].astype(np.float64).copy()
    out[MEANS] = sum(wi * v[MEANS].astype(np.float64) for wi, v in zip(w, values, strict=True))
    return out
