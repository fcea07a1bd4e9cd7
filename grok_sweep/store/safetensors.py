"""Our safetensors files, through the `safetensors` package's numpy API (no torch, no tinygrad device).

The package validates a file's header (its JSON, each tensor's byte range, the file's size) on every read, so a
truncated or garbled file is refused with its reason rather than read wrong. The files are the format's own, as
tinygrad's safe_save writes them (its safe_load reads ours, and ours read every file an earlier version wrote).
Saving goes through numpy, so a GPU job needs no CPU compiler: tinygrad's safe_save assigns through a CPU tensor,
which on a GPU machine compiles C with the host's compiler and fails where that is not clang.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load, save

EMPTY = "empty (0 bytes)"


def metadata(path: Path) -> dict[str, str]:
    """The file's `__metadata__` (string to string), without reading a tensor. Raises, with the reason in one line,
    unless the file's header parses and the file holds every byte it says."""
    with open(path, "rb") as f:  # Python's own errors first: a folder where the file should be, no permission
        if not f.read(1):
            raise ValueError(EMPTY)
    with safe_open(str(path), framework="np") as f:  # SafetensorError: header too small, incomplete metadata, ...
        return f.metadata() or {}


def check(path: Path) -> None:
    """Raise, with the reason in one line, unless the file is whole by its header (metadata's checks)."""
    metadata(path)


def read(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the file, by name, each a writable array of its own."""
    data = Path(path).read_bytes()
    if not data:
        raise ValueError(EMPTY)
    return {k: np.array(v) for k, v in load(data).items()}


def write(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """The arrays (any shape, 0-d included) and string metadata as one safetensors file at `path`. The package
    lays out the bytes; Python writes them, so a full disk is an OSError with its errno like any other write."""
    data = save({k: np.ascontiguousarray(a) if np.ndim(a) else np.asarray(a) for k, a in arrays.items()},
                metadata=metadata)  # fmt: skip
    Path(path).write_bytes(data)
