"""A graph runner for tinygrad's CPU device: a jitted step replays its kernels in one tight loop.

tinygrad 0.14 gives CUDA and Metal a graph (TinyJit hands it a whole batch of kernels at once), but not the CPU:
there, each replayed kernel goes through the generic launch path, whose Python takes longer than many of the
kernels themselves. The default config's train step is ~90 such kernels, so launches cost as much as the arithmetic
(docs/performance/cpu-runtime.md). CPUGraph resolves every kernel's function pointer, buffer addresses and thread
ids once, at capture, and a replay only patches the addresses of the JIT's inputs. Same kernels, same order, same
thread: the numbers do not change.
"""

from __future__ import annotations

import ctypes
import time

from tinygrad import Device
from tinygrad.device import Compiled
from tinygrad.engine.jit import GraphRunner
from tinygrad.engine.realize import get_call_arg_uops
from tinygrad.renderer.nir import LVPRenderer
from tinygrad.uop.ops import Ops, UOp


def _addr(buf) -> ctypes.c_uint64:
    return ctypes.c_uint64(buf.ensure_allocated().get_buf(buf.device).va_addr)


class CPUGraph(GraphRunner):
    def __init__(self, linear: UOp, input_uops: tuple[UOp, ...] = ()):
        super().__init__(linear, input_uops)
        self.launches: list[tuple[object, list[ctypes.c_uint64]]] = []
        self.patches: list[tuple[list[ctypes.c_uint64], int, int]] = []  # (launch args, arg index, input slot)
        for (_, prg, bufs, _), rt, replace in zip(self.calls, self.runtimes, self.uop_replace, strict=True):
            info = prg.arg
            slot_of = dict(replace)  # call arg position -> JIT input slot
            core = info.runtimevars.get("core_id")
            for tid in range(int(info.global_size[0])):
                args = [_addr(bufs[i]) for i in info.globals] + [ctypes.c_uint64(0) for _ in info.vars]
                if core is not None:
                    args[len(info.globals) + core] = ctypes.c_uint64(tid)
                self.launches.append((rt.fxn, args))
                self.patches += [(args, k, slot_of[i]) for k, i in enumerate(info.globals) if i in slot_of]

    def __call__(self, input_uops: tuple[UOp, ...], var_vals: dict[str, int], wait: bool = False) -> float | None:
        for args, k, slot in self.patches:
            args[k] = _addr(input_uops[slot].buffer)
        st = time.perf_counter()
        for fxn, args in self.launches:
            fxn(*args)
        return time.perf_counter() - st if wait else None

    @staticmethod
    def supports_uop(batch_devs: list[Compiled], new_call: UOp) -> bool:
        """Kernels with fixed shapes whose buffers are the JIT's inputs themselves or its own buffers."""
        if not GraphRunner.supports_uop(batch_devs, new_call):
            return False
        info = new_call.src[0].arg
        fixed = all(v.expr == "core_id" for v in info.vars) and all(isinstance(s, int) for s in info.global_size)
        # a view of an input (SHRINK/MSELECT of a PARAM) would be resolved once, at capture
        args = get_call_arg_uops(new_call)
        views = any(b.op is not Ops.PARAM and any(u.op is Ops.PARAM for u in b.toposort()) for b in args)
        return fixed and not views


def install(device: str = "CPU") -> None:
    """Let TinyJit batch `device`'s kernels into CPUGraph (before the first capture); a no-op if it has a graph."""
    dev = Device[device]
    if dev.graph is None and not isinstance(dev.renderer, LVPRenderer):  # LVP programs take a packed argument block
        dev.graph = CPUGraph
