"""Subnormal floats read and written as 0 on the CPU, so that late training does not slow down 5x."""

from __future__ import annotations

import contextlib
import ctypes
import platform
import sys
from collections.abc import Iterator

# (word of fenv_t holding the control register, its flush-to-zero bits) on Linux (glibc)
_FENV_FLUSH = {"x86_64": (7, 0x8040), "aarch64": (0, 1 << 24)}  # MXCSR FTZ|DAZ; FPCR FZ


@contextlib.contextmanager
def flush_denormals(on: bool = True) -> Iterator[bool]:
    """Within the block, this thread's CPU arithmetic reads and writes subnormal floats as 0.

    Late in a grokking run, many gradients and Adam moments fall below float32's smallest normal
    number (1.2e-38); CPUs handle those in microcode, several times slower (docs/performance/cpu-runtime.md).
    tinygrad runs CPU kernels on the calling thread, so setting the flag here is
    enough. Yields whether the flag is set (False where the platform is not supported).
    """
    where = _FENV_FLUSH.get(platform.machine().lower()) if sys.platform == "linux" else None
    if not on or where is None:
        yield False
        return
    libc, env = ctypes.CDLL(None), (ctypes.c_uint32 * 8)()  # fenv_t is 32 bytes on x86_64, 8 on aarch64
    if libc.fegetenv(env) != 0:
        yield False
        return
    saved = (ctypes.c_uint32 * 8)(*env)
    env[where[0]] |= where[1]
    libc.fesetenv(env)
    try:
        yield True
    finally:
        libc.fesetenv(saved)
