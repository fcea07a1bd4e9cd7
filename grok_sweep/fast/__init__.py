"""grok_sweep's speed code, behind this one interface: the model and the trainer import only these names.

Each name is a plain tinygrad expression computed faster, and gives the same bits as that expression (the
contract, and how to add a kernel: fast/README.md; the tests that say so: tests/test_fast.py and the tests of
each kernel). The speed code knows nothing of the GPT, the trainer or the config.

- matmul(x, w) == x @ w and relu_matmul(x, w) == x.relu() @ w, with both gradients: hand-scheduled kernels
  (matmuls.py; C with 8/16-float vectors on the CPU, cpu/kernels.py);
- pick_rows_grouped(onehot, table, members) == onehot @ table, whose table gradient sums each token's examples
  through make_groups' lists instead of reducing over batch x vocabulary (lookups.py, cpu/lookup.py);
- head_rows, mixed_pre, lin_sum: a folded one-block model's weighted sums of table rows, each in one fixed
  rounding order (fold.py, cpu/folded.py);
- prepare_device(device): a jitted step on tinygrad's CPU device replays its kernels without per-launch Python
  (cpu/graph.py): the same kernels in the same order;
- flush_denormals(on): within the block, subnormal floats are read and written as 0 (cpu/denormals.py): the one
  name that changes numbers, and only those below float32's smallest normal (1.2e-38);
- JitCache, named_tensors: captured JITs kept on disk and loaded with the caller's tensors (jit_cache.py).
"""

from grok_sweep.fast.cpu import graph as _graph
from grok_sweep.fast.cpu.denormals import flush_denormals
from grok_sweep.fast.fold import head_rows, lin_sum, mixed_pre
from grok_sweep.fast.jit_cache import JitCache, named_tensors
from grok_sweep.fast.lookups import make_groups, pick_rows_grouped
from grok_sweep.fast.matmuls import matmul, relu_matmul


def prepare_device(device: str) -> None:
    """Before a JIT's first capture on `device`: on tinygrad's CPU device, let it batch its kernels into the CPU
    graph runner; elsewhere nothing (CUDA and Metal have tinygrad's own graphs)."""
    if device.split(":")[0] == "CPU":
        _graph.install(device)


__all__ = ["JitCache", "flush_denormals", "head_rows", "lin_sum", "make_groups", "matmul", "mixed_pre",
           "named_tensors", "pick_rows_grouped", "prepare_device", "relu_matmul"]  # fmt: skip
