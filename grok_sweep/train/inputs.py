"""A job's examples as fixed-shape device tensors: the test set in eval chunks, and one eval from its chunks'."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tinygrad import Tensor

from grok_sweep.data.batches import EVAL_CHUNK, PAD_TO, chunk_sizes, pad, padded
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


def stack_examples(parts: list[tuple[np.ndarray, np.ndarray]], multiple: int) -> tuple[np.ndarray, ...]:
    """A pack's members' (x, y) stacked as (K, n, ...), each padded to the largest (repeating its first example),
    padded up to a multiple of `multiple`; and the weights, 1 real, 0 padding."""
    n = padded(max(len(y) for _, y in parts), multiple)
    xs, ys, ws = [], [], []
    for x, y in parts:
        extra = n - len(y)
        xs.append(np.concatenate([x, np.repeat(x[:1], extra, 0)]))
        ys.append(np.concatenate([y, np.repeat(y[:1], extra)]))
        ws.append(np.r_[np.ones(len(y)), np.zeros(extra)].astype(np.float32))
    return np.stack(xs), np.stack(ys), np.stack(ws)


def stacked_chunks(parts: list[tuple[np.ndarray, np.ndarray]], device: str, chunk: int = EVAL_CHUNK
                   ) -> tuple[list[Chunk], list[list[int]]]:  # fmt: skip
    """A pack's members' test sets stacked (K, n, ...) in chunks of one shape (as eval_chunks), each chunk with its
    weights; and each member's real examples per chunk."""
    x, y, w = stack_examples(parts, PAD_TO)
    size = min(x.shape[1], chunk)
    extra = -x.shape[1] % size  # whole chunks: more padding of weight 0
    x, y = (np.concatenate([a, np.repeat(a[:, :1], extra, 1)], 1) for a in (x, y))
    w = np.concatenate([w, np.zeros((len(w), extra), np.float32)], 1)
    starts = range(0, x.shape[1], size)
    chunks = [Chunk(*(Tensor(np.ascontiguousarray(a[:, i : i + size]), device=device) for a in (x, y, w)), size)
              for i in starts]  # fmt: skip
    return chunks, [[max(0, min(size, len(yk) - i)) for i in starts] for _, yk in parts]


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
