"""The safetensors format, read and written with numpy alone.

A file is an 8-byte little-endian header length, the header's JSON (each tensor's dtype, shape and byte range,
and `__metadata__`: string to string), spaces to an 8-byte boundary, then the tensors' bytes. The bytes written
here are tinygrad's safe_save's (a test says so), but no tinygrad device is needed: safe_save assigns through a
CPU tensor, which on a GPU machine compiles C with the host's compiler and fails where that is not clang.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

DTYPES = {"BOOL": np.bool_, "I8": np.int8, "U8": np.uint8, "I16": np.int16, "U16": np.uint16, "I32": np.int32,
          "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "F16": np.float16, "F32": np.float32,
          "F64": np.float64}  # fmt: skip
_NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def _head(f: BinaryIO) -> dict[str, Any]:
    (size,) = struct.unpack("<Q", f.read(8))
    return json.loads(f.read(size))


def header(path: Path) -> dict[str, Any]:
    """The file's JSON header, without reading a tensor."""
    with open(path, "rb") as f:
        return _head(f)


def expected_size(path: Path) -> int:
    """The bytes the file must hold by its header (8 + the header's length + the tensors' data)."""
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        head = json.loads(f.read(size))
    return 8 + size + max((v["data_offsets"][1] for k, v in head.items() if k != "__metadata__"), default=0)


def read(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the file, by name."""
    with open(path, "rb") as f:
        head, data = _head(f), f.read()
    return {
        k: np.frombuffer(data, DTYPES[v["dtype"]], int(np.prod(v["shape"])), v["data_offsets"][0])
        .reshape(v["shape"])
        .copy()
        for k, v in head.items()
        if k != "__metadata__"
    }


def write(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """The arrays (little-endian, C order) and string metadata as one safetensors file at `path`."""
    head: dict[str, Any] = {"__metadata__": metadata} if metadata else {}
    offset, blobs = 0, []
    for k, a in arrays.items():
        a = np.asarray(a)  # not ascontiguousarray: it makes a 0-d array 1-d
        if a.dtype not in _NAMES:
            raise ValueError(f"safetensors: no dtype name for {a.dtype} (tensor {k})")
        blobs.append(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
        head[k] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(head, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode())
        for b in blobs:
            f.write(b)
