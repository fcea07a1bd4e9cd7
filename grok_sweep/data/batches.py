"""How a job's examples are batched: full batches padded to a multiple of PAD_TO, the test set in chunks.

Shapes only (NumPy); train/inputs.py puts the batches on the device, run/resources.py sizes them.
"""

from __future__ import annotations

import numpy as np

# Full batches are padded to a multiple of this with examples of weight 0, so that kernels can split
# the batch axis into vector-sized pieces (nanda2023's 3830 = 2 x 5 x 383 has no factor 4). The mean
# loss and accuracy count real examples only.
PAD_TO = 32
# The test set is evaluated in chunks of at most this many examples, so that an eval's activations
# do not grow with p^2 (modulus=3000 has 5.4 million test pairs). Every p <= 127 has one chunk.
EVAL_CHUNK = 16384


def padded(n: int, multiple: int = PAD_TO) -> int:
    """`n` examples padded up to a multiple of `multiple`."""
    return n + (-n) % multiple


def pad(x: np.ndarray, y: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad examples (repeating the first) to a multiple of `multiple`; weights 1 real, 0 padding."""
    n_pad = padded(len(y), multiple) - len(y)
    if n_pad == 0:
        return x, y, None
    w = np.r_[np.ones(len(y)), np.zeros(n_pad)].astype(np.float32)
    return np.concatenate([x, np.repeat(x[:1], n_pad, 0)]), np.concatenate([y, np.repeat(y[:1], n_pad)]), w


def chunk_sizes(n: int, chunk: int = EVAL_CHUNK) -> list[int]:
    """Real examples per chunk of a test set of `n`: one chunk up to `chunk`, else equal chunks of `chunk`."""
    return [n] if n <= chunk else [min(chunk, n - i) for i in range(0, n, chunk)]


def eval_batch(n_test: int) -> int:
    """The examples in one eval chunk of a test set of `n_test`, padding included."""
    return min(padded(n_test), EVAL_CHUNK)
