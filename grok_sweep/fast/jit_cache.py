"""A disk cache of captured TinyJits: a program whose JITs were captured before loads them instead.

tinygrad spends most of the first two calls of a new JIT in Python (scheduling, rewrites, linearizing), even when
its own cache already holds the compiled kernels (docs/performance/compile-cache.md). A captured TinyJit pickles:
its kernels with their machine code, and the buffers it touches (the ones it only computes into without their
contents). An entry is that pickle, keyed by what the caller says shapes the kernels (`key`), the shapes of the JIT
inputs, the device and its graph runner, the host CPU (its kernels are compiled for it), and the versions of
tinygrad, Python and grok_sweep's own source. On load, the caller's tensors (named by path) are copied into the
JITs' buffers and then point at them, so the JITs read and write the caller's state, exactly as if they had
captured it (tests/test_jit_cache.py: the same bits).

Where: $GROK_SWEEP_CACHE_DIR, else $XDG_CACHE_HOME/grok_sweep/jit, else ~/.cache/grok_sweep/jit.
An entry that does not unpickle, fails its checksum or does not fit the tensors is deleted and rebuilt,
never trusted.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import pickle
import platform
import weakref
from importlib.metadata import version
from pathlib import Path
from typing import Any

import tinygrad
from tinygrad import Device, Tensor
from tinygrad.device import Buffer
from tinygrad.engine.jit import _TinyJit, graph_class
from tinygrad.uop.ops import Ops, ParamArg, UOp, buffers

from grok_sweep.util.files import atomic_write

log = logging.getLogger(__name__)

MAGIC = b"grok_sweep jit cache 2\n"
PACKAGE = Path(__file__).resolve().parents[1]  # grok_sweep/: this module is grok_sweep/fast/jit_cache.py


def cache_dir() -> Path:
    if folder := os.environ.get("GROK_SWEEP_CACHE_DIR"):
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "grok_sweep" / "jit"


@functools.cache
def code_version() -> str:
    """A hash of grok_sweep's source, every .py file of every folder: any change to the package invalidates every
    entry."""
    h = hashlib.sha256()
    for f in sorted(PACKAGE.rglob("*.py")):
        h.update(f.relative_to(PACKAGE).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def cpu_identity() -> str:
    """The host CPU's model and instruction sets: tinygrad compiles CPU kernels for the host (-march=native), so
    an entry written on another CPU (a home folder shared by a cluster's nodes) may not run here."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: the processor's name is what the platform tells
        return f"{platform.machine()} {platform.processor()}"
    keys = {"model name", "flags", "Features", "CPU implementer", "CPU part"}  # x86 and ARM spellings
    kept = sorted({line for line in lines if line.split(":")[0].strip() in keys})
    return hashlib.sha256("\n".join(kept).encode()).hexdigest()[:16]


def entry_key(key: dict[str, Any], inputs: list[Tensor], device: str) -> str:
    """The entry's file name: a hash of `key` (what shapes the kernels, the caller's), the inputs, device, CPU and
    versions."""
    graph = graph_class(Device[device])  # a JIT captured with a graph runner replays through it
    what = {"cfg": key, "inputs": [(t.shape, str(t.dtype)) for t in inputs], "device": device,
            "graph": None if graph is None else f"{graph.__module__}.{graph.__qualname__}",
            "cpu": cpu_identity(), "tinygrad": (version("tinygrad"), tinygrad.__file__),
            "python": platform.python_version(),
            "code": code_version()}  # fmt: skip
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


def named_tensors(root: dict[str, Any]) -> dict[str, Tensor]:
    """Every Tensor reachable from `root` through dicts, lists and grok_sweep/tinygrad objects, by path."""
    out: dict[str, Tensor] = {}
    seen: set[int] = set()

    def walk(obj: Any, path: str) -> None:
        if id(obj) in seen or isinstance(obj, _TinyJit):
            return
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            out[path] = obj
            return
        if isinstance(obj, dict):
            items = list(obj.items())
        elif isinstance(obj, (list, tuple)):
            items = list(enumerate(obj))
        elif type(obj).__module__.split(".")[0] in ("grok_sweep", "tinygrad") and hasattr(obj, "__dict__"):
            items = list(vars(obj).items())
        else:
            return
        for k, v in items:
            walk(v, f"{path}.{k}" if path else str(k))

    walk(root, "")
    return out


def _is_device_buffer(u: UOp) -> bool:
    return u.op is Ops.BUFFER and isinstance(u.arg, ParamArg) and u.arg.device is not None


class _Pickler(pickle.Pickler):
    """Writes the buffers a step only computes into (activations, gradients: made during the capture,
    read by no later step before it writes them) without their contents, which would be most of the
    entry (nanda2023: 168 MB with them)."""

    def __init__(self, f: io.BytesIO, scratch: set[int]):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self.scratch = scratch

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Buffer) and obj._base is None and id(obj) in self.scratch:
            return Buffer, (obj.device, obj.size, obj.dtype, None, obj.options, None, obj.uop_refcount)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    """Gives every device buffer of the entry a fresh slot: slots are per-process counters, and a
    buffer UOp equal to one this process made would be merged with it by tinygrad's UOp cache."""

    def __init__(self, f: io.BytesIO):
        super().__init__(f)
        self.slots: dict[int, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        return self._uop if found is UOp else found

    def _uop(self, op: Ops, dtype: Any, src: tuple, arg: Any = None, *rest: Any) -> UOp:
        if op is Ops.BUFFER and isinstance(arg, ParamArg) and arg.device is not None:
            slot = self.slots.setdefault(arg.slot, next(UOp.unique_num))
            arg = dataclasses.replace(arg, slot=slot)
        return UOp(op, dtype, src, arg, *rest)


class JitCache:
    """One entry: `load` before the JITs' first calls, `save` once they have all been captured."""

    def __init__(self, key: dict[str, Any], inputs: list[Tensor], device: str):
        self.path = cache_dir() / f"{entry_key(key, inputs, device)}.jit"
        self.done = False  # loaded, saved, or not to be saved
        self.hit = False  # the JITs came from the entry
        self.existing: weakref.WeakSet[UOp] = weakref.WeakSet()

    def load(self, tensors: dict[str, Tensor]) -> list[_TinyJit] | None:
        """The cached JITs, in the order they were saved, with `tensors` moved into their buffers; or None."""
        try:
            blob = self.path.read_bytes()
        except OSError:
            return None
        try:
            entry = _read(blob)
            bound = {k: u for k, u in entry["bound"].items() if k in tensors}
            fits = all((u.shape, u.dtype) == (tensors[k].shape, tensors[k].dtype) for k, u in bound.items())
            if set(entry["bound"]) != set(bound) or not fits:
                raise ValueError("the entry's tensors are not the caller's")
            for k, u in bound.items():
                u.base.buffer.ensure_allocated().copy_from(tensors[k].realize().uop.base.buffer)
        except Exception as err:  # noqa: BLE001 - any failure means the entry is not to be trusted
            # said, not silent: a job that compiles although its shapes ran before should say why
            log.warning("compile cache: %s could not be loaded (%s: %s); compiling anew", self.path.name,
                        type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "")  # fmt: skip
            self.path.unlink(missing_ok=True)
            return None
        for k, u in bound.items():
            tensors[k].uop = u
        self.done = self.hit = True
        return entry["jits"]

    def note_existing(self) -> None:
        """Remember the buffers alive before the first capture: each one a JIT reads must be named."""
        self.existing = weakref.WeakSet(u for u in list(buffers.keys()) if _is_device_buffer(u))

    def save(self, jits: list[_TinyJit], tensors: dict[str, Tensor]) -> bool:
        """Write the entry if the JITs read no buffer from before the capture that `tensors` lacks."""
        self.done = True
        named = {t.uop.base for t in tensors.values()}
        used = {u for jit in jits for u in jit.captured._linear.toposort() if _is_device_buffer(u)}
        if any(u in self.existing and u not in named for u in used):
            return False
        bound = {k: t.uop for k, t in tensors.items() if t.uop.base in used}
        kept = {id(b.base) for u in used if (u in named or u in self.existing) and (b := buffers.get(u)) is not None}
        scratch = {id(b.base) for u in used if (b := buffers.get(u)) is not None} - kept
        out = io.BytesIO()
        try:
            _Pickler(out, scratch).dump({"jits": jits, "bound": bound})
            payload = out.getvalue()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda tmp: tmp.write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload))
        except Exception:  # noqa: BLE001 - a JIT that does not pickle, or a cache that cannot be written,
            return False  # only costs the next job of these shapes its compile; this job trains on
        return True


def _read(blob: bytes) -> dict[str, Any]:
    head, digest, payload = blob[: len(MAGIC)], blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
    if head != MAGIC or hashlib.sha256(payload).digest() != digest:
        raise ValueError("not a grok_sweep jit cache entry, or a damaged one")
    return _Unpickler(io.BytesIO(payload)).load()
